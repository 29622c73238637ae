//! Where a stream's ladder is made, and which nodes take no new work.
//!
//! A live stream's transcoded rungs are made by one node's codec worker, chosen by the
//! stream's origin: its *placement*. Like the origin lease it carries an epoch that only
//! grows, so a node that was once placed and has since been replaced (killed, cut off,
//! drained) is fenced: only the current origin places, only the current placement may
//! feed the stream, and a new origin starts without one. A node that is *draining* takes no
//! new publishers, placements or VOD jobs; what it runs moves off it.

use serde::{Deserialize, Serialize};

use super::{Catalog, Command, NodeId, NodeRejection, Outcome, Rejection, StreamRejection};

/// The node that makes a stream's ladder, under which epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LadderPlacement {
    pub node: NodeId,
    pub epoch: u64,
    /// The origin epoch the placement was made under.
    pub origin_epoch: u64,
    pub since_ms: i64,
    /// How many times the ladder moved under this origin.
    pub moves: u32,
    /// The placement this one takes over from, (node, epoch), while the handover lasts:
    /// its worker finishes the segments before the boundary where this one starts.
    pub from: Option<(NodeId, u64)>,
}

/// Which nodes may make a stream's ladder: only `pin` when it names any; otherwise
/// `prefer` first, then the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlacementRule {
    #[serde(default)]
    pub pin: Vec<NodeId>,
    #[serde(default)]
    pub prefer: Vec<NodeId>,
}

impl PlacementRule {
    pub fn is_empty(&self) -> bool {
        self.pin.is_empty() && self.prefer.is_empty()
    }
}

/// Why a placement command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PlacementRejection {
    #[error(
        "stream {stream:?}: origin epoch {origin_epoch} is not current; only the current origin places its ladder"
    )]
    NotOrigin { stream: String, origin_epoch: u64 },
    #[error("node {0} is draining: it takes no new work")]
    Draining(NodeId),
    #[error("stream {stream:?}: node {node} is outside the stream's pinned nodes")]
    NotPinned { stream: String, node: NodeId },
    #[error("stream {stream:?}: placement epoch {epoch} is not current")]
    StalePlacement { stream: String, epoch: u64 },
}

impl Catalog {
    pub(super) fn apply_placement(&mut self, now: i64, command: &Command) -> Result<Outcome, Rejection> {
        match command {
            Command::PlaceLadder { stream, origin_epoch, node } => {
                self.place_ladder(now, stream, *origin_epoch, *node, None)
            }
            Command::HandOverLadder { stream, origin_epoch, node, from_epoch } => {
                self.place_ladder(now, stream, *origin_epoch, *node, Some(*from_epoch))
            }
            Command::EndHandover { stream, epoch } => {
                let s = self.streams.get_mut(stream).ok_or_else(|| StreamRejection::NoSuchStream(stream.clone()))?;
                match s.placement.as_mut() {
                    Some(p) if p.from.is_some_and(|(_, e)| e == *epoch) => {
                        p.from = None;
                        Ok(Outcome::Done)
                    }
                    _ => Err(PlacementRejection::StalePlacement { stream: stream.clone(), epoch: *epoch }.into()),
                }
            }
            Command::ClearPlacement { stream, epoch } => {
                let s = self.streams.get_mut(stream).ok_or_else(|| StreamRejection::NoSuchStream(stream.clone()))?;
                match s.placement {
                    Some(p) if p.epoch == *epoch => {
                        s.placement = None;
                        Ok(Outcome::Done)
                    }
                    _ => Err(PlacementRejection::StalePlacement { stream: stream.clone(), epoch: *epoch }.into()),
                }
            }
            Command::SetPlacementRule { stream, rule } => {
                for n in rule.pin.iter().chain(&rule.prefer) {
                    if !self.nodes.contains_key(n) {
                        return Err(NodeRejection::NoSuchNode(*n).into());
                    }
                }
                let s = self.streams.get_mut(stream).ok_or_else(|| StreamRejection::NoSuchStream(stream.clone()))?;
                s.placement_rule = rule.clone();
                s.updated_ms = now;
                Ok(Outcome::Stream(s.clone()))
            }
            Command::SetDraining { node, draining } => {
                if !self.nodes.contains_key(node) {
                    return Err(NodeRejection::NoSuchNode(*node).into());
                }
                if *draining {
                    self.draining.insert(*node);
                } else {
                    self.draining.remove(node);
                }
                Ok(Outcome::Done)
            }
            _ => unreachable!("not a placement command"),
        }
    }

    /// A new placement of `stream`'s ladder on `node`, taking over from placement
    /// `from_epoch` (which must be current) when given.
    fn place_ladder(
        &mut self,
        now: i64,
        stream: &str,
        origin_epoch: u64,
        node: NodeId,
        from_epoch: Option<u64>,
    ) -> Result<Outcome, Rejection> {
        if !self.nodes.contains_key(&node) {
            return Err(NodeRejection::NoSuchNode(node).into());
        }
        if self.draining.contains(&node) {
            return Err(PlacementRejection::Draining(node).into());
        }
        let s = self.streams.get_mut(stream).ok_or_else(|| StreamRejection::NoSuchStream(stream.to_string()))?;
        if s.origin.is_none_or(|o| o.epoch != origin_epoch) {
            return Err(PlacementRejection::NotOrigin { stream: stream.to_string(), origin_epoch }.into());
        }
        if !s.placement_rule.pin.is_empty() && !s.placement_rule.pin.contains(&node) {
            return Err(PlacementRejection::NotPinned { stream: stream.to_string(), node }.into());
        }
        let from = match from_epoch {
            None => None,
            Some(epoch) => match s.placement {
                Some(p) if p.epoch == epoch => Some((p.node, p.epoch)),
                _ => return Err(PlacementRejection::StalePlacement { stream: stream.to_string(), epoch }.into()),
            },
        };
        let moves = s.placement.filter(|p| p.origin_epoch == origin_epoch).map_or(0, |p| p.moves + 1);
        s.last_placement_epoch += 1;
        let placement =
            LadderPlacement { node, epoch: s.last_placement_epoch, origin_epoch, since_ms: now, moves, from };
        s.placement = Some(placement);
        Ok(Outcome::Placement(placement))
    }

    /// Whether `node` may feed `stream`'s ladder under placement `epoch`: it holds the
    /// current placement, or the one the current placement is taking over from.
    pub fn may_encode(&self, stream: &str, node: NodeId, epoch: u64) -> bool {
        self.streams
            .get(stream)
            .and_then(|s| s.placement)
            .is_some_and(|p| (p.node == node && p.epoch == epoch) || p.from == Some((node, epoch)))
    }

    /// Whether `node` is draining.
    pub fn is_draining(&self, node: NodeId) -> bool {
        self.draining.contains(&node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NodeRecord, Proposal};

    fn apply(c: &mut Catalog, at_ms: i64, command: Command) -> Outcome {
        c.apply(&Proposal { at_ms, command })
    }

    fn cluster() -> Catalog {
        let mut c = Catalog::default();
        for id in 1..=3 {
            let node = NodeRecord {
                id,
                cluster_addr: format!("n{id}:7000"),
                http_addr: format!("n{id}:8080"),
                joined_ms: 0,
                region: None,
            };
            apply(&mut c, 0, Command::PutNode { node });
        }
        let put = Command::PutStream { name: "cam".into(), ladder: None, token_sha256: None, create_only: true };
        apply(&mut c, 0, put);
        c
    }

    fn origin(c: &mut Catalog, node: NodeId) -> u64 {
        match apply(c, 1, Command::AcquireOrigin { stream: "cam".into(), node }) {
            Outcome::Origin(l) => l.epoch,
            other => panic!("{other:?}"),
        }
    }

    fn place(c: &mut Catalog, origin_epoch: u64, node: NodeId) -> Outcome {
        apply(c, 5, Command::PlaceLadder { stream: "cam".into(), origin_epoch, node })
    }

    #[test]
    fn only_the_current_origin_places_and_every_move_fences_the_one_before() {
        let mut c = cluster();
        let o1 = origin(&mut c, 1);
        let Outcome::Placement(first) = place(&mut c, o1, 2) else { panic!() };
        assert_eq!((first.node, first.moves), (2, 0));
        assert!(c.may_encode("cam", 2, first.epoch));
        let Outcome::Placement(second) = place(&mut c, o1, 3) else { panic!() };
        assert!(second.epoch > first.epoch);
        assert_eq!(second.moves, 1);
        assert!(!c.may_encode("cam", 2, first.epoch), "the placement moved: node 2 is fenced");
        assert!(c.may_encode("cam", 3, second.epoch));

        // A new origin: the old placement lapses, and the old origin can no longer place.
        let o2 = origin(&mut c, 3);
        assert!(c.streams["cam"].placement.is_none());
        assert!(!c.may_encode("cam", 3, second.epoch));
        assert!(matches!(
            place(&mut c, o1, 2),
            Outcome::Rejected(Rejection::Placement(PlacementRejection::NotOrigin { .. }))
        ));
        let Outcome::Placement(third) = place(&mut c, o2, 2) else { panic!() };
        assert!(third.epoch > second.epoch, "epochs never come back");
        assert_eq!(third.moves, 0, "moves count under the current origin");

        // Clearing a stale placement changes nothing.
        let stale = apply(&mut c, 9, Command::ClearPlacement { stream: "cam".into(), epoch: second.epoch });
        assert!(matches!(stale, Outcome::Rejected(_)));
        assert_eq!(
            apply(&mut c, 9, Command::ClearPlacement { stream: "cam".into(), epoch: third.epoch }),
            Outcome::Done
        );
        assert!(c.streams["cam"].placement.is_none());
    }

    #[test]
    fn draining_nodes_and_pins_limit_where_a_ladder_goes() {
        let mut c = cluster();
        let o = origin(&mut c, 1);
        assert_eq!(apply(&mut c, 2, Command::SetDraining { node: 2, draining: true }), Outcome::Done);
        assert!(c.is_draining(2));
        assert!(matches!(
            place(&mut c, o, 2),
            Outcome::Rejected(Rejection::Placement(PlacementRejection::Draining(2)))
        ));
        apply(&mut c, 3, Command::SetDraining { node: 2, draining: false });
        assert!(matches!(place(&mut c, o, 2), Outcome::Placement(_)));

        let rule = PlacementRule { pin: vec![3], prefer: vec![] };
        assert!(matches!(
            apply(&mut c, 4, Command::SetPlacementRule { stream: "cam".into(), rule }),
            Outcome::Stream(_)
        ));
        assert!(matches!(
            place(&mut c, o, 1),
            Outcome::Rejected(Rejection::Placement(PlacementRejection::NotPinned { node: 1, .. }))
        ));
        assert!(matches!(place(&mut c, o, 3), Outcome::Placement(_)));
        let unknown = PlacementRule { pin: vec![], prefer: vec![9] };
        assert!(matches!(
            apply(&mut c, 4, Command::SetPlacementRule { stream: "cam".into(), rule: unknown }),
            Outcome::Rejected(Rejection::Node(NodeRejection::NoSuchNode(9)))
        ));
    }

    #[test]
    fn a_handover_keeps_the_old_placement_valid_until_it_ends() {
        let mut c = cluster();
        let o = origin(&mut c, 1);
        let Outcome::Placement(first) = place(&mut c, o, 2) else { panic!() };
        let hand_over =
            |from_epoch| Command::HandOverLadder { stream: "cam".into(), origin_epoch: o, node: 3, from_epoch };
        assert!(matches!(
            apply(&mut c, 6, hand_over(first.epoch + 7)),
            Outcome::Rejected(Rejection::Placement(PlacementRejection::StalePlacement { .. }))
        ));
        let Outcome::Placement(second) = apply(&mut c, 6, hand_over(first.epoch)) else { panic!() };
        assert_eq!((second.node, second.moves, second.from), (3, 1, Some((2, first.epoch))));
        assert!(c.may_encode("cam", 3, second.epoch));
        assert!(c.may_encode("cam", 2, first.epoch), "the old worker finishes its segments");
        let end = |epoch| Command::EndHandover { stream: "cam".into(), epoch };
        assert!(matches!(apply(&mut c, 7, end(second.epoch)), Outcome::Rejected(_)), "only the old epoch ends it");
        assert_eq!(apply(&mut c, 7, end(first.epoch)), Outcome::Done);
        assert!(!c.may_encode("cam", 2, first.epoch), "then it is fenced");
        assert!(c.may_encode("cam", 3, second.epoch));

        // A plain placement (after a failure) fences everything before it at once.
        let Outcome::Placement(third) = apply(&mut c, 8, hand_over(second.epoch)) else { panic!() };
        let Outcome::Placement(fourth) = place(&mut c, o, 2) else { panic!() };
        assert!(!c.may_encode("cam", 3, third.epoch) && !c.may_encode("cam", 3, second.epoch));
        assert!(c.may_encode("cam", 2, fourth.epoch));
    }

    #[test]
    fn a_removed_node_loses_its_placements_and_its_drain() {
        let mut c = cluster();
        let o = origin(&mut c, 1);
        place(&mut c, o, 2);
        apply(&mut c, 2, Command::SetDraining { node: 2, draining: true });
        assert_eq!(apply(&mut c, 3, Command::RemoveNode { id: 2 }), Outcome::Done);
        assert!(c.streams["cam"].placement.is_none());
        assert!(!c.is_draining(2));
    }
}
