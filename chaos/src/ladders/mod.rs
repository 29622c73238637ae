//! Live ladders under faults: a stream's origin (node 1, which makes no ladders) has its
//! ladder made by a codec worker on another node, placed through the catalog of a real
//! Raft cluster (`PlaceLadder` after a loss, `HandOverLadder` and `EndHandover` to move off
//! a draining node) while encoder nodes are killed, cut off and drained.
//!
//! The origin takes the workers' output through the encoder's own cores: the
//! [`WorkerRoster`] (whose output the rungs take, a successor's held while the old worker
//! finishes) and the [`GapLedger`] (what each rung will never have). The workers and the
//! link are simulated: a worker encodes the segments it is fed, a few parts each, paced like
//! the source with a latency of its own (up to more than a part); it stops when its node
//! dies, when it has not heard its owner for [`WORKER_SILENCE_MS`] (longer than the origin
//! waits: a worker slow to notice, as a paused process is, so that after a cut heals a
//! stale worker may still speak), or when its node's catalog no longer lets it encode (the
//! host's fence). Its output waits while the network does not link the two nodes and
//! crosses once it does again, as a QUIC stream's does. [`check`] holds what was published
//! against the invariants.

pub mod check;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_raft::{CatalogNode, Command, NodeId, Outcome};
use tessera_transcode::{Admit, GapLedger, Role, WorkerRoster};
use tokio::sync::mpsc;

use crate::cluster::{ChaosCluster, Nodes, Rng};
use crate::sim::now_ms;

/// A segment of the leader lasts this long.
pub const SEGMENT_MS: i64 = 150;
/// Parts per segment.
pub const PARTS: u32 = 3;
/// Rungs of the ladder.
pub const RUNGS: usize = 2;
/// A link silent this long is taken as gone by the origin.
pub const SILENCE_MS: i64 = 300;
/// A worker stops after this long without its owner.
pub const WORKER_SILENCE_MS: i64 = 3 * SILENCE_MS;
/// The stream's origin.
pub const ORIGIN: NodeId = 1;
const STREAM: &str = "cam";

/// A part the origin took into a rung.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub rung: usize,
    pub segment: u64,
    pub part: u32,
    pub generation: u64,
    pub node: NodeId,
    pub epoch: u64,
}

/// Everything the origin did to its rungs.
#[derive(Debug, Default)]
pub struct LadderLog {
    pub published: Vec<Published>,
    /// (rung, segment) listed as a gap.
    pub gaps: Vec<(usize, u64)>,
    /// (rung, segment) closed as media: a rung's segmenter closes a segment when the next
    /// one's first frame comes; an interruption abandons the segment it was making.
    pub closed: Vec<(usize, u64)>,
    /// Parts that came for another segment than the one their rung was making (after it
    /// closed, or going back): a rung's segments would be cut wrong.
    pub misplaced: Vec<Published>,
    /// The leader's completed segments, the newest last.
    pub completed: u64,
    /// Placements made (epoch, node, was a hand-over).
    pub placements: Vec<(u64, NodeId, bool)>,
}

#[derive(Debug)]
enum Feed {
    Segment(u64),
    Stop,
}

#[derive(Debug, Clone, Copy)]
struct Part {
    rung: usize,
    segment: u64,
    part: u32,
}

#[derive(Debug)]
enum Inbox {
    Output { generation: u64, part: Part },
    Exited { generation: u64 },
    Placed { generation: u64, node: NodeId, epoch: u64, handover: bool },
    NotPlaced { generation: u64, handover: bool },
}

/// The origin's side of one worker.
struct Link {
    node: NodeId,
    epoch: u64,
    feed: mpsc::UnboundedSender<Feed>,
    /// When the link was last up.
    heard_ms: i64,
}

#[derive(Clone)]
struct Context {
    nodes: Nodes,
    net: Arc<tessera_raft::memory::MemoryNetwork>,
    stop: Arc<AtomicBool>,
}

impl Context {
    fn node(&self, id: NodeId) -> Option<CatalogNode> {
        self.nodes.read().expect("nodes").get(&id).cloned().flatten()
    }

    /// Whether `a` and `b` both run and reach each other.
    fn up(&self, a: NodeId, b: NodeId) -> bool {
        self.node(a).is_some() && self.node(b).is_some() && self.net.linked(a, b)
    }

    /// Proposes through the leader as `id` sees it, if `id` reaches it.
    async fn propose(&self, id: NodeId, command: Command) -> Option<Outcome> {
        crate::cluster::propose_as(&self.nodes, &self.net, id, command).await
    }
}

/// A cluster whose origin makes a ladder on its other nodes.
pub struct LadderWorld {
    pub cluster: ChaosCluster,
    log: Arc<Mutex<LadderLog>>,
    stop: Arc<AtomicBool>,
    origin: Option<tokio::task::JoinHandle<()>>,
}

impl LadderWorld {
    /// Starts `voters` nodes, the stream with its origin on node 1, and the origin's encoder.
    pub async fn start(name: &str, voters: u64, seed: u64) -> Self {
        let cluster = ChaosCluster::start(name, voters, seed).await;
        let mut world = LadderWorld { cluster, log: Arc::default(), stop: Arc::default(), origin: None };
        world.cluster.record_nodes().await;
        let put = Command::PutStream { name: STREAM.into(), ladder: None, token_sha256: None, create_only: true };
        world.admin(put).await;
        let Some(Outcome::Origin(lease)) =
            world.admin(Command::AcquireOrigin { stream: STREAM.into(), node: ORIGIN }).await
        else {
            panic!("node {ORIGIN} did not become the origin");
        };
        let cx =
            Context { nodes: world.cluster.nodes.clone(), net: world.cluster.net.clone(), stop: world.stop.clone() };
        world.origin = Some(tokio::spawn(origin(cx, lease.epoch, world.log.clone(), seed)));
        world
    }

    /// Proposes an admin write through whichever node leads, retrying for a while.
    pub async fn admin(&self, command: Command) -> Option<Outcome> {
        self.cluster.admin(command).await
    }

    /// The node making the ladder now, as the leader's catalog says.
    pub fn placed(&self) -> Option<NodeId> {
        let leader = self.cluster.leader().and_then(|l| self.cluster.node(l))?;
        leader.peek(|c| c.streams.get(STREAM).and_then(|s| s.placement).map(|p| p.node))
    }

    /// Heals, restarts every node, undrains them, lets the ladder run `settle`, stops it;
    /// what the origin published, and the first segment opened after the faults.
    pub async fn finish(mut self, settle: Duration) -> (LadderLog, u64, ChaosCluster) {
        self.cluster.net.heal();
        for id in self.cluster.ids() {
            self.cluster.restart(id).await;
            self.admin(Command::SetDraining { node: id, draining: false }).await;
        }
        let healed = self.log.lock().expect("log").completed + 2;
        tokio::time::sleep(settle).await;
        self.stop.store(true, Ordering::Release);
        if let Some(o) = self.origin.take() {
            let _ = o.await;
        }
        let log = std::mem::take(&mut *self.log.lock().expect("log"));
        (log, healed, self.cluster)
    }
}

/// The origin's encoder: the leader's schedule, the links to its workers, their placement.
struct Origin {
    cx: Context,
    origin_epoch: u64,
    log: Arc<Mutex<LadderLog>>,
    inbox: mpsc::UnboundedSender<Inbox>,
    roster: WorkerRoster<Part>,
    ledger: GapLedger,
    links: BTreeMap<u64, Link>,
    /// Where each generation ever started ran: (node, placement epoch).
    started: BTreeMap<u64, (NodeId, u64)>,
    last_generation: u64,
    /// A placement being made for the current worker (not a hand-over).
    placing: bool,
    feeding: bool,
    /// Nodes that lost a worker lately, and until when they are passed over.
    avoid: BTreeMap<NodeId, i64>,
    /// The segment each rung's segmenter is making.
    open: [Option<u64>; RUNGS],
    rng: Rng,
}

async fn origin(cx: Context, origin_epoch: u64, log: Arc<Mutex<LadderLog>>, seed: u64) {
    let (inbox, mut rx) = mpsc::unbounded_channel();
    let mut o = Origin {
        cx,
        origin_epoch,
        log,
        inbox,
        roster: WorkerRoster::new(1024),
        ledger: GapLedger::new(RUNGS),
        links: BTreeMap::new(),
        started: BTreeMap::new(),
        last_generation: 0,
        placing: false,
        feeding: false,
        avoid: BTreeMap::new(),
        open: [None; RUNGS],
        rng: Rng::new(seed ^ 0x1add3),
    };
    let start = now_ms();
    let mut open: Option<u64> = None;
    o.place(false);
    while !o.cx.stop.load(Ordering::Acquire) {
        tokio::select! {
            Some(msg) = rx.recv() => o.receive(msg),
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        let now = now_ms();
        let segment = ((now - start) / SEGMENT_MS) as u64;
        if open != Some(segment) {
            if let Some(done) = open {
                let gaps = o.ledger.leader_completed(done, SEGMENT_MS as f64 / 1000.0);
                o.listed(gaps);
                o.log.lock().expect("log").completed = done;
            }
            open = Some(segment);
            o.opened(segment);
        }
        o.watch(now);
    }
}

impl Origin {
    fn opened(&mut self, segment: u64) {
        if let Some(old) = self.roster.take_over(segment, self.feeding) {
            if let Some(l) = self.links.get(&old) {
                let _ = l.feed.send(Feed::Stop);
            }
            if self.roster.role(old) == Role::Stale {
                self.links.remove(&old);
            }
        }
        self.feeding = self.roster.current().is_some();
        self.ledger.leader_opened(segment, self.feeding, |_| true);
        if let Some(l) = self.roster.current().and_then(|g| self.links.get(&g)) {
            if self.cx.up(ORIGIN, l.node) {
                let _ = l.feed.send(Feed::Segment(segment));
            }
        }
    }

    fn listed(&mut self, gaps: Vec<tessera_transcode::Gap>) {
        self.log.lock().expect("log").gaps.extend(gaps.iter().map(|g| (g.rung, g.segment)));
    }

    fn receive(&mut self, msg: Inbox) {
        match msg {
            Inbox::Output { generation, part } => match self.roster.admit(generation, part) {
                Admit::Now(part) => self.publish(generation, part),
                Admit::Held | Admit::Refused => {}
                Admit::Overflow => self.lost_current(),
            },
            Inbox::Exited { generation } => {
                if matches!(self.roster.role(generation), Role::Retiring { .. }) {
                    let epoch = self.links.remove(&generation).map(|l| l.epoch);
                    for part in self.roster.retired() {
                        let current = self.roster.current().expect("a successor took over");
                        self.publish(current, part);
                    }
                    if let Some(epoch) = epoch {
                        let cx = self.cx.clone();
                        tokio::spawn(async move {
                            cx.propose(ORIGIN, Command::EndHandover { stream: STREAM.into(), epoch }).await
                        });
                    }
                }
            }
            Inbox::Placed { generation, node, epoch, handover } => self.placed(generation, node, epoch, handover),
            Inbox::NotPlaced { generation, handover } => {
                if handover {
                    self.roster.successor_gone();
                } else if generation == self.last_generation {
                    self.placing = false;
                }
            }
        }
    }

    fn publish(&mut self, generation: u64, part: Part) {
        let (node, epoch) = self.started[&generation];
        let published = Published { rung: part.rung, segment: part.segment, part: part.part, generation, node, epoch };
        let mut log = self.log.lock().expect("log");
        let open = self.open[part.rung];
        if part.part == 0 && open.is_none_or(|s| s < part.segment) {
            let gaps = self.ledger.rung_started(part.rung, part.segment);
            log.gaps.extend(gaps.iter().map(|g| (g.rung, g.segment)));
            if let Some(done) = self.open[part.rung].replace(part.segment) {
                log.closed.push((part.rung, done));
            }
        } else if open != Some(part.segment) {
            log.misplaced.push(published.clone());
        }
        log.published.push(published);
    }

    /// Links silent too long are gone; a worker on a draining node moves.
    fn watch(&mut self, now: i64) {
        for l in self.links.values_mut() {
            if self.cx.up(ORIGIN, l.node) {
                l.heard_ms = now;
            }
        }
        let silent: Vec<u64> =
            self.links.iter().filter(|(_, l)| now - l.heard_ms > SILENCE_MS).map(|(g, _)| *g).collect();
        for g in silent {
            let node = self.links.remove(&g).map(|l| l.node);
            match self.roster.role(g) {
                Role::Current | Role::Retiring { .. } => {
                    self.avoid.extend(node.map(|n| (n, now + 3_000)));
                    self.lost_current();
                }
                Role::Successor => self.roster.successor_gone(),
                Role::Stale => {}
            }
        }
        if self.roster.current().is_none() && !self.placing {
            self.place(false);
        }
        let draining = self
            .roster
            .current()
            .and_then(|g| self.links.get(&g))
            .is_some_and(|l| self.cx.node(ORIGIN).is_some_and(|n| n.peek(|c| c.is_draining(l.node))));
        if draining && !self.roster.moving() {
            self.place(true);
        }
    }

    fn lost_current(&mut self) {
        self.roster.lost();
        self.open = [None; RUNGS];
        self.feeding = false;
        let gaps = self.ledger.interrupt();
        self.listed(gaps);
        for l in self.links.values() {
            let _ = l.feed.send(Feed::Stop);
        }
        self.links.clear();
    }

    /// Places a new worker (a successor when `handover`) on a node that makes ladders.
    fn place(&mut self, handover: bool) {
        let now = now_ms();
        self.avoid.retain(|_, until| *until > now);
        let catalog = self.cx.node(ORIGIN);
        let Some(catalog) = catalog else { return };
        let current = self.roster.current().and_then(|g| self.links.get(&g)).map(|l| (l.node, l.epoch));
        let candidates: Vec<NodeId> = catalog
            .peek(|c| c.nodes.keys().copied().filter(|n| *n != ORIGIN && !c.is_draining(*n)).collect::<Vec<_>>());
        let fresh: Vec<NodeId> = candidates
            .iter()
            .copied()
            .filter(|n| !self.avoid.contains_key(n) && Some(*n) != current.map(|c| c.0))
            .collect();
        let pool = if fresh.is_empty() { candidates } else { fresh };
        let Some(node) = pool.get(self.rng.below(pool.len() as u64) as usize).copied() else { return };
        self.last_generation += 1;
        let generation = self.last_generation;
        let command = match (handover, current) {
            (true, Some((_, from_epoch))) => {
                self.roster.successor(generation);
                Command::HandOverLadder { stream: STREAM.into(), origin_epoch: self.origin_epoch, node, from_epoch }
            }
            (true, None) => return,
            (false, _) => {
                self.placing = true;
                Command::PlaceLadder { stream: STREAM.into(), origin_epoch: self.origin_epoch, node }
            }
        };
        let (cx, inbox) = (self.cx.clone(), self.inbox.clone());
        tokio::spawn(async move {
            let answer = match cx.propose(ORIGIN, command).await {
                Some(Outcome::Placement(p)) => Inbox::Placed { generation, node, epoch: p.epoch, handover },
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Inbox::NotPlaced { generation, handover }
                }
            };
            let _ = inbox.send(answer);
        });
    }

    fn placed(&mut self, generation: u64, node: NodeId, epoch: u64, handover: bool) {
        self.log.lock().expect("log").placements.push((epoch, node, handover));
        let wanted = if handover {
            self.roster.role(generation) == Role::Successor
        } else {
            self.placing && generation == self.last_generation
        };
        if !wanted || !self.cx.up(ORIGIN, node) {
            // The spawn does not reach the node: as if refused.
            if handover {
                self.roster.successor_gone();
            } else {
                self.placing = false;
            }
            return;
        }
        let (feed, work) = mpsc::unbounded_channel();
        let seed = self.rng.next_u64();
        tokio::spawn(worker(self.cx.clone(), node, generation, epoch, work, self.inbox.clone(), seed));
        self.links.insert(generation, Link { node, epoch, feed, heard_ms: now_ms() });
        self.started.insert(generation, (node, epoch));
        if handover {
            self.roster.successor_ready();
        } else {
            self.placing = false;
            self.roster.started(generation);
        }
    }
}

/// A codec worker on `node`: encodes what it is fed, part by part, while it may.
async fn worker(
    cx: Context,
    node: NodeId,
    generation: u64,
    epoch: u64,
    mut feed: mpsc::UnboundedReceiver<Feed>,
    out: mpsc::UnboundedSender<Inbox>,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let latency = 5 + rng.below(120) as i64;
    let started = now_ms();
    let mut heard = started;
    let mut queue: Vec<(u64, i64)> = Vec::new(); // segment, when fed
    let mut next_part = 0u32;
    let mut stopping = false;
    let mut backlog: Vec<Inbox> = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = now_ms();
        while let Ok(f) = feed.try_recv() {
            match f {
                Feed::Segment(s) => queue.push((s, now)),
                Feed::Stop => stopping = true,
            }
        }
        if cx.node(node).is_none() || cx.stop.load(Ordering::Acquire) {
            return; // killed: nothing more, not even a goodbye
        }
        if cx.up(node, ORIGIN) {
            heard = now;
            for msg in backlog.drain(..) {
                let _ = out.send(msg);
            }
        } else if now - heard > WORKER_SILENCE_MS {
            return; // the owner is gone
        }
        let fenced =
            now - started > 200 && cx.node(node).is_some_and(|n| !n.peek(|c| c.may_encode(STREAM, node, epoch)));
        if fenced {
            return;
        }
        let Some(&(segment, fed)) = queue.first() else {
            if stopping && backlog.is_empty() {
                let _ = out.send(Inbox::Exited { generation });
                return;
            }
            continue;
        };
        // Part k of a segment is out once the source has reached its end, and a little more.
        let due = fed + (next_part as i64 + 1) * SEGMENT_MS / PARTS as i64 + latency + rng.below(15) as i64;
        if now < due {
            continue;
        }
        for rung in 0..RUNGS {
            let output = Inbox::Output { generation, part: Part { rung, segment, part: next_part } };
            if cx.up(node, ORIGIN) && backlog.is_empty() {
                let _ = out.send(output);
            } else {
                backlog.push(output);
            }
        }
        next_part += 1;
        if next_part == PARTS {
            next_part = 0;
            queue.remove(0);
        }
    }
}
