//! Which node makes a ladder: a pure choice over what each candidate said of itself.
//!
//! A node has room for a ladder when what it uses, the larger of what it promised to
//! ladders and what it measures itself using, plus what the ladder would cost there stays
//! under [`CROWDED`] of its transcoding capacity. What a ladder costs a node is the
//! estimate, or what each ladder it makes costs it on average as measured (its whole
//! process included: an origin also ingests and packages), whichever is more, so that an
//! estimate that is too low is corrected by what nodes see. Pinned streams choose among
//! their pinned nodes only. Otherwise: the preferred nodes first (in the order given),
//! then the origin, then whoever has the most headroom, among nodes with room; nodes to
//! avoid (that just lost this ladder) only when nobody else has room. When no node has
//! room the ladder still goes where the headroom is largest (the governor then trims
//! rungs there) rather than nowhere; a node with no capacity, or draining, is never chosen.
//!
//! A node that finds itself crowded (above [`CROWDED`] for a while) asks the owner of one
//! of its ladders to move it; such a move goes only to a node with room to spare, one that
//! stays under [`SPARE`] with the ladder, so that the ladder does not bounce back.

use serde::{Deserialize, Serialize};
use tessera_raft::{NodeId, PlacementRule};

/// The share of its capacity above which a node is crowded: it takes no more ladders, and
/// sheds one when it stays there.
pub const CROWDED: f64 = 0.9;
/// The share of its capacity a node may reach by taking a ladder moved off a crowded one.
pub const SPARE: f64 = 0.75;

/// What a node says of its transcoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub node: NodeId,
    /// Cores it gives to ladders.
    pub capacity: f64,
    /// Cores promised to the ladders it makes.
    pub reserved: f64,
    /// Cores the node's process and its codec workers used over the last second.
    pub busy: f64,
    pub draining: bool,
    /// The ladders it makes now.
    pub ladders: Vec<HostedLadder>,
}

/// A ladder a node makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostedLadder {
    pub stream: String,
    /// The placement epoch it was started under (0 for an unplaced local worker).
    pub epoch: u64,
    /// The node whose stream it is.
    pub owner: NodeId,
    pub cost: f64,
    /// The node asks the ladder's owner to move it elsewhere (the node is crowded).
    #[serde(default)]
    pub shed: bool,
}

impl NodeLoad {
    pub fn headroom(&self) -> f64 {
        self.capacity - self.reserved.max(self.busy)
    }

    /// What a ladder estimated at `estimate` cores would cost this node: at least what each
    /// of the ladders it makes costs it now, as measured.
    pub fn cost_of(&self, estimate: f64) -> f64 {
        if self.ladders.is_empty() {
            estimate
        } else {
            estimate.max(self.busy / self.ladders.len() as f64)
        }
    }

    /// What it would use with one more ladder estimated at `estimate` cores.
    fn with(&self, estimate: f64) -> f64 {
        self.reserved.max(self.busy) + self.cost_of(estimate)
    }

    /// It may take a ladder estimated at `estimate` and stay uncrowded.
    pub fn has_room(&self, estimate: f64) -> bool {
        self.with(estimate) <= self.capacity * CROWDED
    }

    /// It may take a ladder moved off a crowded node and stay well under crowded.
    pub fn has_spare(&self, estimate: f64) -> bool {
        self.eligible() && self.with(estimate) <= self.capacity * SPARE
    }

    fn eligible(&self) -> bool {
        self.capacity > 0.0 && !self.draining
    }
}

/// What is being placed.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub origin: NodeId,
    pub cost: f64,
    pub rule: &'a PlacementRule,
    pub avoid: &'a [NodeId],
    /// The ladder moves off this crowded node: only nodes with room to spare qualify.
    pub relieve: Option<NodeId>,
}

/// The candidates in the order to try them; empty when no node may make the ladder.
pub fn rank(request: &Request<'_>, loads: &[NodeLoad]) -> Vec<NodeId> {
    let pinned = |n: &NodeLoad| request.rule.pin.is_empty() || request.rule.pin.contains(&n.node);
    let relief = |n: &NodeLoad| match request.relieve {
        Some(crowded) => n.node != crowded && n.has_spare(request.cost),
        None => true,
    };
    let mut candidates: Vec<&NodeLoad> = loads.iter().filter(|n| n.eligible() && pinned(n) && relief(n)).collect();
    // (has room, not avoided, preferred rank, is origin, headroom)
    let key = |n: &NodeLoad| {
        let room = n.has_room(request.cost);
        let avoided = request.avoid.contains(&n.node);
        let preferred = request.rule.prefer.iter().position(|p| *p == n.node).unwrap_or(usize::MAX);
        (!room, avoided, preferred, n.node != request.origin)
    };
    candidates
        .sort_by(|a, b| key(a).cmp(&key(b)).then(b.headroom().total_cmp(&a.headroom())).then(a.node.cmp(&b.node)));
    candidates.into_iter().map(|n| n.node).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(node: NodeId, capacity: f64, reserved: f64) -> NodeLoad {
        NodeLoad { node, capacity, reserved, busy: 0.0, draining: false, ladders: vec![] }
    }

    fn req<'a>(rule: &'a PlacementRule, avoid: &'a [NodeId]) -> Request<'a> {
        Request { origin: 1, cost: 0.76, rule, avoid, relieve: None }
    }

    #[test]
    fn a_ladder_stays_on_its_origin_while_it_has_room() {
        let rule = PlacementRule::default();
        let loads = [load(1, 2.0, 0.5), load(2, 2.0, 0.0), load(3, 2.0, 0.0)];
        assert_eq!(rank(&req(&rule, &[]), &loads)[0], 1);
    }

    #[test]
    fn a_full_origin_sends_its_ladder_where_the_most_room_is() {
        let rule = PlacementRule::default();
        let loads = [load(1, 2.0, 1.6), load(2, 2.0, 1.0), load(3, 2.0, 0.2)];
        assert_eq!(rank(&req(&rule, &[]), &loads), vec![3, 2, 1]);
        let mut busy = load(3, 2.0, 0.2);
        busy.busy = 1.9;
        assert_eq!(rank(&req(&rule, &[]), &[load(1, 2.0, 1.6), load(2, 2.0, 1.0), busy])[0], 2, "measured load counts");
        // The origin makes three ladders estimated at 0.1 and measured at 0.53 cores: a fourth
        // would not fit, though the estimate says it would.
        let mut origin = load(1, 2.0, 0.3);
        origin.busy = 1.6;
        origin.ladders = (0..3)
            .map(|i| HostedLadder { stream: format!("s{i}"), epoch: 1, owner: 1, cost: 0.1, shed: false })
            .collect();
        assert!((origin.cost_of(0.1) - 1.6 / 3.0).abs() < 1e-9);
        let small = Request { cost: 0.1, ..req(&rule, &[]) };
        assert_eq!(rank(&small, &[origin.clone(), load(2, 2.0, 0.0)])[0], 2, "measured cost per ladder counts");
        origin.busy = 0.6;
        assert_eq!(rank(&small, &[origin, load(2, 2.0, 0.0)])[0], 1, "with room, the origin keeps it");
    }

    #[test]
    fn nodes_without_capacity_or_draining_are_never_chosen() {
        let rule = PlacementRule::default();
        let mut draining = load(3, 8.0, 0.0);
        draining.draining = true;
        let loads = [load(1, 0.0, 0.0), load(2, 1.0, 0.9), draining];
        assert_eq!(rank(&req(&rule, &[]), &loads), vec![2], "no room anywhere: still the best there is");
        assert!(rank(&req(&rule, &[]), &[load(1, 0.0, 0.0)]).is_empty());
    }

    #[test]
    fn pins_and_preferences_decide_before_room() {
        let pin = PlacementRule { pin: vec![3], prefer: vec![] };
        let loads = [load(1, 2.0, 0.0), load(2, 2.0, 0.0), load(3, 2.0, 1.9)];
        assert_eq!(rank(&req(&pin, &[]), &loads), vec![3]);
        let prefer = PlacementRule { pin: vec![], prefer: vec![2] };
        assert_eq!(rank(&req(&prefer, &[]), &loads)[0], 2);
        assert_eq!(
            rank(&req(&prefer, &[]), &[load(1, 2.0, 0.0), load(2, 2.0, 1.9)])[0],
            1,
            "a preferred node without room waits"
        );
    }

    #[test]
    fn a_node_that_lost_the_ladder_is_passed_over_while_others_have_room() {
        let rule = PlacementRule::default();
        let loads = [load(1, 0.0, 0.0), load(2, 2.0, 0.0), load(3, 2.0, 1.0)];
        assert_eq!(rank(&req(&rule, &[2]), &loads), vec![3, 2]);
    }

    #[test]
    fn a_crowded_node_takes_no_ladder_and_sheds_only_to_room_to_spare() {
        let rule = PlacementRule::default();
        // 1.2 + 0.76 would be 98% of 2 cores: crowded.
        let loads = [load(1, 2.0, 1.2), load(2, 2.0, 0.9)];
        assert_eq!(rank(&req(&rule, &[]), &loads)[0], 2);
        // Moving off node 1: node 2 would reach 83%, over what a move may fill; node 3 is free.
        let relieve = Request { relieve: Some(1), ..req(&rule, &[]) };
        assert!(rank(&relieve, &loads).is_empty(), "nowhere to spare: the ladder stays");
        let loads = [load(1, 2.0, 1.9), load(2, 2.0, 0.9), load(3, 2.0, 0.5)];
        assert_eq!(rank(&relieve, &loads), vec![3]);
    }
}
