//! This node's share of making ladders: its capacity, the ladders it makes (its own
//! streams' and other nodes'), what it measures itself using, and the duty that keeps
//! them honest (fenced placements evict their workers; so does a drain, once the owners
//! have had time to move them without a gap). A node that stays crowded marks one ladder
//! to shed in the load it reports; the ladder's owner moves it if a node has room to spare.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_actors::encoder::process::WorkerProcess;
use tessera_actors::{WorkerCommand, WorkerEvent, WorkerEvents};
use tessera_cluster::remote::{Hosted, Outbox, QueueError};
use tessera_cluster::{ClusterService, Peer};
use tessera_raft::NodeId;
use tessera_transcode::wire::ToWorker;
use tokio::sync::watch;

use super::policy::{HostedLadder, NodeLoad};
use super::protocols::{CodecWorker, LadderLoad, WorkerArgs};

/// How often placements and draining are checked, and the load measured.
const DUTY_EVERY: Duration = Duration::from_millis(500);
/// A ladder placed moments ago may not be in this node's copy of the catalog yet.
const FENCE_GRACE: Duration = Duration::from_secs(2);
/// How long a draining node leaves its ladders' owners to move them (a successor takes
/// over at a boundary) before it stops what is left.
const DRAIN_GRACE: Duration = Duration::from_secs(15);
/// How long the node must stay crowded before it sheds a ladder.
const CROWDED_FOR: Duration = Duration::from_secs(1);
/// At most one ladder shed in this long: a move and its effect on the load take that.
const SHED_EVERY: Duration = Duration::from_secs(8);
/// A ladder started this recently is not shed (it may have just been moved here).
const SETTLE: Duration = Duration::from_secs(6);
/// How long a ladder stays marked to shed when its owner does not move it.
const SHED_FOR: Duration = Duration::from_secs(10);

/// This node's ladders.
pub struct LadderHost {
    me: NodeId,
    capacity: f64,
    command: WorkerCommand,
    cluster: ClusterService,
    state: Mutex<HostState>,
}

struct HostState {
    ladders: BTreeMap<u64, Ladder>,
    next: u64,
    /// Since when this node has been draining, as its duty saw it.
    draining_since: Option<Instant>,
    /// Since when the node has been crowded, and when it last marked a ladder to shed.
    crowded_since: Option<Instant>,
    last_shed: Option<Instant>,
    cpu: super::cpu::CpuMeter,
}

/// A ladder this node makes, and how to stop it.
struct Ladder {
    stream: String,
    epoch: u64,
    owner: NodeId,
    cost: f64,
    started: Instant,
    process: Arc<Mutex<WorkerProcess>>,
    /// Tells the owner why, when the owner is on another node.
    outbox: Option<Outbox<CodecWorker>>,
    /// Stopped already; its reservation goes with its handle.
    evicted: bool,
    /// Marked to be moved elsewhere since then.
    shed_since: Option<Instant>,
}

/// Gives the ladder's share back when the worker's handle goes.
pub(crate) struct Reservation {
    host: Arc<LadderHost>,
    id: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut st = self.host.state.lock().expect("ladder host");
        st.ladders.remove(&self.id);
        self.host.publish(&st);
    }
}

/// What a ladder is started with here.
pub(crate) struct Start<'a> {
    pub(crate) stream: &'a str,
    pub(crate) epoch: u64,
    pub(crate) owner: NodeId,
    pub(crate) cost: f64,
}

impl LadderHost {
    pub fn new(cluster: ClusterService, capacity: f64, command: WorkerCommand) -> Arc<Self> {
        Arc::new(LadderHost {
            me: cluster.identity.id,
            capacity,
            command,
            cluster,
            state: Mutex::new(HostState {
                ladders: BTreeMap::new(),
                next: 1,
                draining_since: None,
                crowded_since: None,
                last_shed: None,
                cpu: super::cpu::CpuMeter::new(),
            }),
        })
    }

    pub fn node(&self) -> NodeId {
        self.me
    }

    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Serves the codec-worker kind and the load protocol on this node's transport.
    pub fn serve(self: &Arc<Self>) {
        let host = self.clone();
        self.cluster.transport.serve::<LadderLoad, _, _>(move |_, ()| {
            let host = host.clone();
            async move { host.load() }
        });
        let host = self.clone();
        tessera_cluster::remote::host::<CodecWorker, _, _>(
            &self.cluster.transport,
            super::link_config(),
            move |peer, args, outbox| {
                let host = host.clone();
                async move { host.start_hosted(peer, args, outbox).await }
            },
        );
    }

    /// What this node says of its transcoding now.
    pub fn load(&self) -> NodeLoad {
        let st = self.state.lock().expect("ladder host");
        NodeLoad {
            node: self.me,
            capacity: self.capacity,
            reserved: st.ladders.values().map(|l| l.cost).sum(),
            busy: st.cpu.busy(),
            draining: self.draining(),
            ladders: st
                .ladders
                .values()
                .map(|l| HostedLadder {
                    stream: l.stream.clone(),
                    epoch: l.epoch,
                    owner: l.owner,
                    cost: l.cost,
                    shed: l.shed_since.is_some(),
                })
                .collect(),
        }
    }

    fn draining(&self) -> bool {
        self.cluster.catalog.peek(|c| c.is_draining(self.me))
    }

    /// Starts a codec worker process here for `start`, its events going to `events`.
    pub(crate) fn start_worker(
        self: &Arc<Self>,
        start: Start<'_>,
        events: WorkerEvents,
        outbox: Option<Outbox<CodecWorker>>,
    ) -> std::io::Result<(Arc<Mutex<WorkerProcess>>, Reservation)> {
        let process = Arc::new(Mutex::new(WorkerProcess::spawn(&self.command, start.stream, events)?));
        let mut st = self.state.lock().expect("ladder host");
        let id = st.next;
        st.next += 1;
        st.ladders.insert(
            id,
            Ladder {
                stream: start.stream.to_string(),
                epoch: start.epoch,
                owner: start.owner,
                cost: start.cost,
                started: Instant::now(),
                process: process.clone(),
                outbox,
                evicted: false,
                shed_since: None,
            },
        );
        self.publish(&st);
        Ok((process, Reservation { host: self.clone(), id }))
    }

    async fn start_hosted(
        self: Arc<Self>,
        peer: Peer,
        args: WorkerArgs,
        outbox: Outbox<CodecWorker>,
    ) -> Result<Box<dyn Hosted<CodecWorker>>, String> {
        if self.capacity <= 0.0 {
            return Err(format!("node {} makes no ladders (its transcoding capacity is 0)", self.me));
        }
        let (stream, epoch, me) = (args.stream.clone(), args.epoch, self.me);
        let current = self
            .cluster
            .read(move |c| (c.may_encode(&stream, me, epoch), c.is_draining(me)))
            .await
            .map_err(|e| format!("cannot confirm the placement: {e}"))?;
        match current {
            (_, true) => return Err(format!("node {me} is draining")),
            (false, _) => {
                return Err(format!("placement {epoch} of {:?} is not this node's, or not current", args.stream))
            }
            (true, false) => {}
        }
        let to_owner = outbox.clone();
        let events: WorkerEvents = Arc::new(move |event| forward(&to_owner, event));
        let start = Start { stream: &args.stream, epoch, owner: peer.id(), cost: args.cost };
        let (process, reservation) = self
            .start_worker(start, events, Some(outbox))
            .map_err(|e| format!("cannot start a codec worker on node {me}: {e}"))?;
        tracing::info!(stream = %args.stream, epoch, owner = peer.id(), cost = args.cost, "making a ladder for another node");
        Ok(Box::new(HostedWorker { stream: args.stream, process, _reservation: reservation }))
    }

    fn publish(&self, st: &HostState) {
        metrics::gauge!("tessera_ladders_made").set(st.ladders.len() as f64);
        metrics::gauge!("tessera_transcode_reserved_cores").set(st.ladders.values().map(|l| l.cost).sum::<f64>());
    }

    /// Every half second until `stop`: measure, then evict the workers of placements that
    /// moved and, once a drain's grace is over, every worker.
    pub async fn duty(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(DUTY_EVERY);
        loop {
            tokio::select! {
                _ = crate::server::until_true(&mut stop) => return,
                _ = every.tick() => self.check(Instant::now()),
            }
        }
    }

    fn check(&self, now: Instant) {
        let mut evict = Vec::new();
        {
            let mut st = self.state.lock().expect("ladder host");
            st.draining_since = match (self.draining(), st.draining_since) {
                (false, _) => None,
                (true, since) => Some(since.unwrap_or(now)),
            };
            let drained = st.draining_since.is_some_and(|since| now.duration_since(since) > DRAIN_GRACE);
            let mut pids: Vec<u32> = vec![std::process::id()];
            pids.extend(st.ladders.values().filter_map(|l| l.process.lock().expect("worker").pid));
            let busy = st.cpu.sample(now, &pids);
            metrics::gauge!("tessera_transcode_busy_cores").set(busy);
            if st.draining_since.is_none() {
                self.shed(&mut st, busy, now);
            }
            for (id, l) in st.ladders.iter().filter(|(_, l)| !l.evicted) {
                let fenced = l.epoch > 0
                    && now.duration_since(l.started) > FENCE_GRACE
                    && !self.cluster.catalog.peek(|c| c.may_encode(&l.stream, self.me, l.epoch));
                if drained {
                    evict.push((*id, format!("node draining for over {DRAIN_GRACE:?}, the ladder not moved")));
                } else if fenced {
                    evict.push((*id, format!("placement {} moved", l.epoch)));
                }
            }
            for (id, why) in &evict {
                if let Some(l) = st.ladders.get_mut(id) {
                    l.evicted = true;
                    tracing::info!(stream = %l.stream, epoch = l.epoch, owner = l.owner, reason = %why, "stopping a ladder's worker");
                    metrics::counter!("tessera_ladder_evictions_total").increment(1);
                    if let Some(o) = &l.outbox {
                        o.stop(why);
                    }
                    l.process.lock().expect("worker").kill();
                }
            }
        }
    }
}

impl LadderHost {
    /// Marks a ladder to shed when the node has been crowded long enough and none is.
    fn shed(&self, st: &mut HostState, busy: f64, now: Instant) {
        let crowded = self.capacity > 0.0 && busy >= self.capacity * super::policy::CROWDED;
        st.crowded_since = if crowded { Some(st.crowded_since.unwrap_or(now)) } else { None };
        for l in st.ladders.values_mut() {
            if l.shed_since.is_some_and(|t| now.duration_since(t) > SHED_FOR) {
                l.shed_since = None;
            }
        }
        let due = st.crowded_since.is_some_and(|t| now.duration_since(t) >= CROWDED_FOR)
            && st.last_shed.is_none_or(|t| now.duration_since(t) >= SHED_EVERY)
            && st.ladders.values().all(|l| l.shed_since.is_none());
        if !due {
            return;
        }
        // The ladder that came last, of those settled here: the one that crowded the node.
        let Some(l) = st
            .ladders
            .values_mut()
            .filter(|l| !l.evicted && now.duration_since(l.started) >= SETTLE)
            .max_by_key(|l| l.started)
        else {
            return;
        };
        l.shed_since = Some(now);
        st.last_shed = Some(now);
        tracing::info!(stream = %l.stream, epoch = l.epoch, owner = l.owner, busy, capacity = self.capacity, "node crowded: asking to move a ladder elsewhere");
        metrics::counter!("tessera_ladder_sheds_total").increment(1);
    }
}

/// A worker's event, on its way to an owner on another node. A full queue means the owner
/// cannot keep up: the worker stops, rather than lose packets in the middle of a segment.
fn forward(outbox: &Outbox<CodecWorker>, event: WorkerEvent) -> bool {
    match event {
        WorkerEvent::Message(msg, body) => match outbox.try_send(msg, body) {
            Ok(()) => true,
            Err(QueueError::Full) => {
                outbox.stop("the owner fell behind the worker's output");
                false
            }
            Err(QueueError::Closed) => false,
        },
        WorkerEvent::Garbled(why) => {
            outbox.stop(&format!("worker output unreadable: {why}"));
            false
        }
        WorkerEvent::Exited(how) | WorkerEvent::Lost(how) => {
            outbox.stop(&format!("worker {how}"));
            false
        }
        // Said by the owner's side of a link, never by a process.
        WorkerEvent::Displaced(_) | WorkerEvent::Crowded(_) => true,
    }
}

/// A codec worker this node runs for another node's stream.
struct HostedWorker {
    stream: String,
    process: Arc<Mutex<WorkerProcess>>,
    _reservation: Reservation,
}

impl Hosted<CodecWorker> for HostedWorker {
    fn deliver(&mut self, msg: ToWorker, body: Bytes) {
        let mut process = self.process.lock().expect("worker");
        if let Err(e) = process.send(&msg, &body) {
            tracing::warn!(stream = %self.stream, error = %e, "codec worker not taking input; stopping it");
            process.kill();
        }
    }

    fn owner_gone(&mut self, why: &str) {
        tracing::info!(stream = %self.stream, reason = why, "the owner of a ladder is gone; stopping its worker");
        self.process.lock().expect("worker").kill();
    }
}
