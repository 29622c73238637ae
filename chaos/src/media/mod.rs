//! Fault injection for live media between nodes: the relay core (the origin's
//! [`Journal`], relays' copies, followers' [`Mirror`]s, the relay tree's placement) driven
//! by a deterministic simulation of a cluster: subscriptions over links that are cut,
//! slowed and healed, relay nodes killed and restarted with empty memory. Every fault comes
//! from one seed, so a failure replays exactly.
//!
//! The driver here does what a node's does (`tessera_live::relay`): each follower
//! subscribes to its parent in the tree with the position it holds; a relay that falls
//! silent is passed over for the next node up; after a while a follower tries its parent
//! again if the parent relays the stream. Time is ticks; a part is published every tick.

pub mod check;

use std::collections::BTreeMap;

use bytes::Bytes;
use tessera_relay::{upstreams, FeedEvent, FeedItem, Journal, Mirror, MirrorStep};

use crate::cluster::Rng;

pub type NodeId = u64;
pub const ORIGIN: NodeId = 1;
const ORIGIN_JOURNAL: u64 = 0x7e55e7a;
const STREAM: &str = "chaos";
pub const RENDITIONS: [&str; 2] = ["src", "low"];
/// Parts per segment.
const PARTS: u64 = 5;
/// Ticks without a frame before a relay is passed over.
const SILENCE: u64 = 8;
/// Ticks before a follower that moved up tries its parent again.
const BACK_TO_PARENT: u64 = 60;

/// Parts (number, bytes) in the order applied, and whether their segment ended.
pub type SegmentHeld = (Vec<(u64, Bytes)>, bool);

/// What a follower's store holds, per (rendition, segment).
#[derive(Debug, Default, Clone)]
pub struct Held {
    pub segments: BTreeMap<(String, u64), SegmentHeld>,
    /// Per rendition, the number of the newest part applied.
    last_part: BTreeMap<String, u64>,
    /// Violations seen while applying (a part twice, or out of order).
    pub faults: Vec<String>,
}

/// One follower node.
pub struct Follower {
    pub alive: bool,
    pub mirror: Mirror,
    /// Its copy of the origin's journal, which it serves to the nodes below it.
    pub copy: Journal,
    pub held: Held,
    /// How far up its chain it follows from (0: its parent).
    rise: usize,
    back_at: Option<u64>,
}

/// A subscription: `from` sends `to` what its journal holds after `sent`.
struct Subscription {
    from: NodeId,
    sent: Option<(u64, u64)>,
    heard_at: u64,
    /// Tells this subscription's frames from an earlier one's to the same node.
    generation: u64,
}

/// A frame on its way.
struct Frame {
    at: u64,
    from: NodeId,
    to: NodeId,
    generation: u64,
    journal: u64,
    items: Vec<FeedItem>,
}

pub struct MediaSim {
    pub rng: Rng,
    pub tick: u64,
    pub fanout: usize,
    pub origin: Journal,
    /// What the origin published: per (rendition, segment), its parts.
    pub published: BTreeMap<(String, u64), Vec<(u64, Bytes)>>,
    pub followers: BTreeMap<NodeId, Follower>,
    subs: BTreeMap<NodeId, Subscription>,
    /// Links (from, to) that are cut, and extra ticks of delay per link.
    pub cut: BTreeMap<(NodeId, NodeId), bool>,
    pub delay: BTreeMap<(NodeId, NodeId), u64>,
    frames: Vec<Frame>,
    /// Per link, when its newest frame arrives.
    link_clock: BTreeMap<(NodeId, NodeId), u64>,
    part_number: u64,
    restarts: u64,
    keep: usize,
    generation: u64,
}

impl MediaSim {
    /// An origin and `followers` other nodes; the origin keeps `keep` segments.
    pub fn new(seed: u64, followers: u64, fanout: usize, keep: usize) -> MediaSim {
        let mut origin = Journal::new(ORIGIN_JOURNAL, keep);
        origin.record(FeedEvent::Session { session: 1, base: 0, expects_ladder: false });
        for r in RENDITIONS {
            origin.record(FeedEvent::Init {
                rendition: r.into(),
                tracks: vec![],
                data: Bytes::from(format!("init {r}")),
            });
        }
        let followers = (2..2 + followers).map(|id| (id, Follower::fresh(id, keep))).collect();
        MediaSim {
            rng: Rng::new(seed),
            tick: 0,
            fanout,
            origin,
            published: BTreeMap::new(),
            followers,
            subs: BTreeMap::new(),
            cut: BTreeMap::new(),
            delay: BTreeMap::new(),
            frames: Vec::new(),
            link_clock: BTreeMap::new(),
            part_number: 0,
            restarts: 0,
            keep,
            generation: 0,
        }
    }

    pub fn members(&self) -> Vec<NodeId> {
        std::iter::once(ORIGIN).chain(self.followers.keys().copied()).collect()
    }

    /// The node `id` receives the stream from now, if subscribed.
    pub fn upstream_of(&self, id: NodeId) -> Option<NodeId> {
        self.subs.get(&id).map(|s| s.from)
    }

    fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.get(&(from, to)).copied().unwrap_or(false) && self.alive(from) && self.alive(to)
    }

    fn alive(&self, id: NodeId) -> bool {
        id == ORIGIN || self.followers.get(&id).is_some_and(|f| f.alive)
    }

    /// Kills a follower: its subscriptions end and its memory is gone.
    /// One tick of random one-way cuts: now and then a link goes down, and now and then
    /// every cut heals.
    pub fn cut_links_at_random(&mut self) {
        let members = self.members();
        if self.rng.below(40) == 0 {
            let from = members[self.rng.below(members.len() as u64) as usize];
            let to = members[self.rng.below(members.len() as u64) as usize];
            if from != to {
                self.cut.insert((from, to), true);
            }
        }
        if self.rng.below(60) == 0 {
            self.cut.clear();
        }
    }

    pub fn kill(&mut self, id: NodeId) {
        if let Some(f) = self.followers.get_mut(&id) {
            f.alive = false;
        }
        self.subs.remove(&id);
    }

    /// Starts a killed follower again, empty (a new process).
    pub fn restart(&mut self, id: NodeId) {
        self.restarts += 1;
        if self.followers.get(&id).is_some_and(|f| !f.alive) {
            self.followers.insert(id, Follower::fresh(id ^ (self.restarts << 32), self.keep));
        }
    }

    /// One tick: the origin publishes a part per rendition, subscriptions send, frames
    /// arrive, followers (re)subscribe.
    pub fn step(&mut self, publish: bool) {
        self.tick += 1;
        if publish {
            self.publish();
        }
        self.send();
        self.deliver();
        self.subscribe();
    }

    fn publish(&mut self) {
        let segment = self.part_number / PARTS;
        for r in RENDITIONS {
            let data = Bytes::from(format!("{r}:{}:{}", segment, self.part_number));
            self.origin.record(FeedEvent::Part {
                rendition: r.into(),
                number: self.part_number,
                segment,
                starts_segment: false,
                data: data.clone(),
                duration: 0.2,
                independent: self.part_number.is_multiple_of(PARTS),
                program_time_ms: self.part_number as i64 * 200,
                part_target: 0.2,
                published_us: 0,
            });
            self.published.entry((r.to_string(), segment)).or_default().push((self.part_number, data));
        }
        self.part_number += 1;
        if self.part_number.is_multiple_of(PARTS) {
            for r in RENDITIONS {
                self.origin.record(FeedEvent::SegmentEnd { rendition: r.into(), segment });
            }
        }
    }

    fn journal(&self, id: NodeId) -> &Journal {
        if id == ORIGIN {
            &self.origin
        } else {
            &self.followers[&id].copy
        }
    }

    fn send(&mut self) {
        let ids: Vec<NodeId> = self.subs.keys().copied().collect();
        for to in ids {
            let from = self.subs[&to].from;
            if !self.link_up(from, to) {
                continue;
            }
            let journal = self.journal(from);
            if !journal.is_copy() && journal.last_seq() == 0 {
                continue; // a relay with nothing yet offers nothing
            }
            let sent = self.subs[&to].sent;
            let (id, catchup, sent_all) = (journal.id(), journal.since(sent), journal.sent_all(sent));
            // Nothing new still sends a heartbeat (an empty frame), as a node does.
            // A subscription is one ordered stream: a frame never overtakes the one before.
            let delay = 1 + self.delay.get(&(from, to)).copied().unwrap_or(0);
            let at = (self.tick + delay).max(self.link_clock.get(&(from, to)).copied().unwrap_or(0));
            self.link_clock.insert((from, to), at);
            let generation = self.subs[&to].generation;
            self.frames.push(Frame { at, from, to, generation, journal: id, items: catchup.items });
            self.subs.get_mut(&to).expect("listed").sent = Some(sent_all);
        }
    }

    fn deliver(&mut self) {
        let (due, later): (Vec<Frame>, Vec<Frame>) =
            std::mem::take(&mut self.frames).into_iter().partition(|f| f.at <= self.tick);
        self.frames = later;
        for frame in due {
            // A frame of a subscription that has ended (the follower moved on) is dropped
            // with the stream it travelled on.
            if self.subs.get(&frame.to).is_none_or(|s| s.generation != frame.generation) {
                continue;
            }
            // A link cut under a frame breaks its stream (it is never lost from the middle
            // of one): the follower subscribes again from what it holds.
            if !self.link_up(frame.from, frame.to) {
                self.subs.remove(&frame.to);
                continue;
            }
            self.subs.get_mut(&frame.to).expect("checked").heard_at = self.tick;
            let f = self.followers.get_mut(&frame.to).expect("a follower");
            for item in &frame.items {
                f.copy.copy(frame.journal, item.clone());
            }
            for item in frame.items {
                if std::env::var_os("TESSERA_CHAOS_TRACE").is_some() {
                    if let FeedEvent::Reset { kept_from } = item.event {
                        eprintln!(
                            "tick {}: node {} from {} reset kept_from {kept_from}, held {:?}",
                            self.tick,
                            frame.to,
                            frame.from,
                            f.mirror.position()
                        );
                    }
                }
                match f.mirror.accept(frame.journal, item) {
                    MirrorStep::Apply(event) => f.held.apply(event),
                    MirrorStep::Restart | MirrorStep::Skip => {}
                }
            }
        }
    }

    fn subscribe(&mut self) {
        let members = self.members();
        let ids: Vec<NodeId> = self.followers.keys().copied().collect();
        for id in ids {
            if !self.alive(id) {
                continue;
            }
            let chain = upstreams(STREAM, ORIGIN, &members, id, self.fanout);
            let parent = chain[0];
            let parent_relays = parent != ORIGIN
                && self.alive(parent)
                && self.subs.get(&parent).is_some_and(|s| self.tick - s.heard_at <= SILENCE);
            let current = self.subs.get(&id).map(|s| (s.from, s.heard_at));
            let tick = self.tick;
            let f = self.followers.get_mut(&id).expect("listed");
            let go = match current {
                None => true,
                // Silent (a dead or cut-off upstream): resubscribe, further up unless it
                // was the origin itself.
                Some((from, heard)) if tick - heard > SILENCE => {
                    if from != ORIGIN {
                        f.rise += 1;
                    }
                    true
                }
                Some(_) if f.rise > 0 && f.back_at.is_some_and(|at| tick >= at) => {
                    if parent_relays {
                        f.rise = 0;
                    } else {
                        f.back_at = Some(tick + BACK_TO_PARENT);
                    }
                    parent_relays
                }
                Some(_) => false,
            };
            if !go {
                continue;
            }
            f.rise = f.rise.min(chain.len() - 1);
            f.back_at = (f.rise > 0).then_some(tick + BACK_TO_PARENT);
            let target = chain[f.rise];
            let sent = f.mirror.position();
            self.generation += 1;
            let generation = self.generation;
            self.subs.insert(id, Subscription { from: target, sent, heard_at: tick, generation });
        }
    }
}

impl Follower {
    fn fresh(journal_id: u64, keep: usize) -> Follower {
        Follower {
            alive: true,
            mirror: Mirror::new(),
            copy: Journal::new(journal_id | 1, keep),
            held: Held::default(),
            rise: 0,
            back_at: None,
        }
    }
}

impl Held {
    fn apply(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Part { rendition, number, segment, data, .. } => {
                if let Some(last) = self.last_part.insert(rendition.clone(), number).filter(|l| number <= *l) {
                    self.faults.push(format!("{rendition} part {number} applied after part {last}"));
                    self.last_part.insert(rendition.clone(), last);
                }
                let (parts, ended) = self.segments.entry((rendition.clone(), segment)).or_default();
                if *ended {
                    self.faults.push(format!("{rendition} part {number} after segment {segment} ended"));
                }
                parts.push((number, data));
            }
            FeedEvent::SegmentEnd { rendition, segment } => {
                self.segments.entry((rendition, segment)).or_default().1 = true;
            }
            _ => {}
        }
    }
}
