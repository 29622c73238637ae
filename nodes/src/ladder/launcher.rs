//! Placing a stream's ladder: the origin's encoder asks for a codec worker, and gets one on
//! the node the policy ranks first that takes it, under a placement the catalog committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tessera_actors::encoder::launch::QueueError;
use tessera_actors::encoder::process::WorkerProcess;
use tessera_actors::{
    LaunchError, LaunchRequest, Launching, WorkerEvent, WorkerEvents, WorkerLauncher, WorkerLink, WorkerPlace,
};
use tessera_cluster::remote::{self, Down, RemoteEvent, RemoteRef};
use tessera_cluster::ClusterService;
use tessera_raft::{CatalogError, Command, NodeId, Outcome, PlacementRejection, Rejection};
use tessera_transcode::wire::ToWorker;

use super::host::{LadderHost, Reservation, Start};
use super::policy::{self, NodeLoad};
use super::protocols::{CodecWorker, LadderLoad, WorkerArgs};

/// How long a node has to say what its load is before it is left out.
const LOAD_PATIENCE: Duration = Duration::from_millis(500);
/// Nodes tried per launch, in the policy's order.
const TRIES: usize = 3;
/// How often a link looks whether its worker's node drains.
const DRAIN_LOOK: Duration = Duration::from_millis(250);
/// How often the encoder is told again while its worker's node drains.
const DISPLACED_AGAIN: Duration = Duration::from_secs(2);
/// How often a link asks its worker's node whether it sheds the ladder.
const SHED_LOOK: Duration = Duration::from_secs(1);

/// Codec workers wherever the stream's ladder is placed.
pub struct PlacedWorkers {
    host: Arc<LadderHost>,
    cluster: ClusterService,
    /// The placement epoch of each running session's ladder.
    placed: Arc<Mutex<HashMap<(String, u64), u64>>>,
}

impl PlacedWorkers {
    pub fn new(host: Arc<LadderHost>, cluster: ClusterService) -> Self {
        PlacedWorkers { host, cluster, placed: Arc::default() }
    }
}

impl WorkerLauncher for PlacedWorkers {
    fn launch(&self, request: LaunchRequest, events: WorkerEvents) -> Launching {
        let (host, cluster, placed) = (self.host.clone(), self.cluster.clone(), self.placed.clone());
        Box::pin(async move {
            let current = placed.lock().expect("placements").get(&(request.stream.clone(), request.session)).copied();
            let from_epoch = current.filter(|_| request.handover);
            let link = place(&host, &cluster, &request, from_epoch, events).await?;
            if let Some(epoch) = link.1 {
                placed.lock().expect("placements").insert((request.stream.clone(), request.session), epoch);
            }
            Ok(link.0)
        })
    }

    fn finished(&self, stream: &str, session: u64) {
        let Some(epoch) = self.placed.lock().expect("placements").remove(&(stream.to_string(), session)) else {
            return;
        };
        let (cluster, stream) = (self.cluster.clone(), stream.to_string());
        tokio::spawn(async move {
            match cluster.propose(Command::ClearPlacement { stream: stream.clone(), epoch }).await {
                Ok(_) | Err(tessera_cluster::ClusterError::Catalog(CatalogError::Rejected(_))) => {}
                Err(e) => tracing::warn!(%stream, epoch, error = %e, "could not clear the ladder's placement"),
            }
        });
    }
}

/// What every candidate says of itself; those that do not answer in time, and those in
/// `skip` (that just lost a worker: likely dead), are left out.
pub(super) async fn loads(host: &LadderHost, cluster: &ClusterService, skip: &[NodeId]) -> Vec<NodeLoad> {
    let peers = cluster.peers().into_iter().filter(|(id, _)| !skip.contains(id));
    let asks = peers.map(|(id, addr)| {
        let transport = cluster.transport.clone();
        async move {
            match tokio::time::timeout(LOAD_PATIENCE, transport.call::<LadderLoad>(Some(id), &addr, &())).await {
                Ok(Ok(load)) => Some(load),
                Ok(Err(e)) => {
                    tracing::debug!(node = id, error = %e, "no load from a node");
                    None
                }
                Err(_) => None,
            }
        }
    });
    let mut all: Vec<NodeLoad> = futures::future::join_all(asks).await.into_iter().flatten().collect();
    all.push(host.load());
    all
}

/// Places the ladder and starts its worker: the link, and the placement epoch it holds.
/// With `from_epoch`, the new placement takes over from that one.
async fn place(
    host: &Arc<LadderHost>,
    cluster: &ClusterService,
    request: &LaunchRequest,
    from_epoch: Option<u64>,
    events: WorkerEvents,
) -> Result<(Box<dyn WorkerLink>, Option<u64>), LaunchError> {
    let me = host.node();
    let stream = request.stream.clone();
    let (origin_epoch, rule) = cluster
        .catalog
        .peek(|c| {
            let s = c.streams.get(&stream)?;
            Some((s.origin.filter(|o| o.node == me)?.epoch, s.placement_rule.clone()))
        })
        .ok_or_else(|| LaunchError(format!("node {me} is not the origin of {stream:?}")))?;
    // A move to relieve the node the ladder is on now goes only where there is room to spare.
    let relieve = if request.relieve {
        let current = cluster.catalog.peek(|c| c.streams.get(&stream).and_then(|s| s.placement).map(|p| p.node));
        Some(current.ok_or_else(|| LaunchError(format!("{stream:?} has no placement to move")))?)
    } else {
        None
    };
    let mut loads = loads(host, cluster, &request.avoid).await;
    if loads.iter().all(|l| l.capacity <= 0.0 || l.draining) && !request.avoid.is_empty() {
        // Nobody else can: ask the nodes that lost it too.
        loads = self::loads(host, cluster, &[]).await;
    }
    let ranked = policy::rank(
        &policy::Request { origin: me, cost: request.cost, rule: &rule, avoid: &request.avoid, relieve },
        &loads,
    );
    if ranked.is_empty() && relieve.is_some() {
        return Err(LaunchError(format!("no node other than {relieve:?} has room to spare for {stream:?}")));
    }
    if ranked.is_empty() {
        return Err(LaunchError(format!(
            "no node can make the ladder of {stream:?}: of {} that answered, none has transcoding capacity, is outside the draining set and the stream's pins",
            loads.len()
        )));
    }
    let mut last = String::new();
    for node in ranked.into_iter().take(TRIES) {
        let command = match from_epoch {
            Some(from_epoch) => Command::HandOverLadder { stream: stream.clone(), origin_epoch, node, from_epoch },
            None => Command::PlaceLadder { stream: stream.clone(), origin_epoch, node },
        };
        let placement = match cluster.propose(command).await {
            Ok(Outcome::Placement(p)) => p,
            Ok(other) => return Err(LaunchError(format!("unexpected answer to a placement: {other:?}"))),
            Err(tessera_cluster::ClusterError::Catalog(CatalogError::Rejected(Rejection::Placement(
                r @ PlacementRejection::NotOrigin { .. },
            )))) => return Err(LaunchError(r.to_string())),
            Err(e) => {
                last = format!("placing on node {node}: {e}");
                tracing::warn!(node, error = %e, "could not place the ladder");
                continue;
            }
        };
        metrics::counter!("tessera_ladder_placements_total").increment(1);
        if placement.moves > 0 {
            metrics::counter!("tessera_ladder_moves_total").increment(1);
        }
        let epoch = placement.epoch;
        let watch = PlacedLink::watch(host, cluster, request, node, epoch, events.clone());
        let started = if node == me {
            let start = Start { stream: &stream, epoch, owner: me, cost: request.cost };
            host.start_worker(start, events.clone(), None)
                .map(|(process, reservation)| {
                    Box::new(LocalLadder { process, _reservation: reservation, _placed: watch }) as Box<dyn WorkerLink>
                })
                .map_err(|e| format!("cannot start the codec worker: {e}"))
        } else {
            spawn_remote(cluster, node, &stream, epoch, request.cost, events.clone())
                .await
                .map(|remote| Box::new(RemoteLadder { remote, epoch, _placed: watch }) as Box<dyn WorkerLink>)
        };
        match started {
            Ok(link) => {
                tracing::info!(%stream, node, epoch, moves = placement.moves, cost = request.cost, "ladder placed");
                return Ok((link, Some(epoch)));
            }
            Err(why) => {
                tracing::warn!(%stream, node, epoch, reason = %why, "the chosen node did not start the ladder");
                last = why;
            }
        }
    }
    Err(LaunchError(format!("no node started the ladder of {stream:?}; last: {last}")))
}

async fn spawn_remote(
    cluster: &ClusterService,
    node: NodeId,
    stream: &str,
    epoch: u64,
    cost: f64,
    events: WorkerEvents,
) -> Result<RemoteRef<CodecWorker>, String> {
    let addr = cluster.addr_of(node).ok_or_else(|| format!("node {node} has no address"))?;
    let args = WorkerArgs { stream: stream.to_string(), epoch, cost };
    let deliver = move |event| match event {
        RemoteEvent::Message(msg, body) => events(WorkerEvent::Message(msg, body)),
        RemoteEvent::Down(Down::Stopped(why)) => events(WorkerEvent::Exited(format!("on node {node}: {why}"))),
        RemoteEvent::Down(Down::Lost(why)) => events(WorkerEvent::Lost(why)),
    };
    remote::spawn::<CodecWorker>(&cluster.transport, node, &addr, &args, &super::link_config(), deliver)
        .await
        .map_err(|e| e.to_string())
}

/// What a link to a placed worker keeps while it lives: a watch that tells its encoder
/// when the worker's node drains ([`WorkerEvent::Displaced`]) or sheds the ladder while
/// another node has room to spare ([`WorkerEvent::Crowded`]), again every
/// [`DISPLACED_AGAIN`] while it holds; and, when the link goes, the end of a handover from
/// its placement (its epoch is then fenced).
struct PlacedLink {
    _alive: Arc<()>,
    cluster: ClusterService,
    stream: String,
    epoch: u64,
}

impl PlacedLink {
    fn watch(
        host: &Arc<LadderHost>,
        cluster: &ClusterService,
        request: &LaunchRequest,
        node: NodeId,
        epoch: u64,
        events: WorkerEvents,
    ) -> PlacedLink {
        let token = Arc::new(());
        let alive = Arc::downgrade(&token);
        let (host, cluster2, stream, cost) = (host.clone(), cluster.clone(), request.stream.clone(), request.cost);
        tokio::spawn(async move {
            let mut look_at_load = tokio::time::Instant::now() + SHED_LOOK;
            while alive.strong_count() > 0 {
                let event = if cluster2.catalog.peek(|c| c.is_draining(node)) {
                    Some(WorkerEvent::Displaced(format!("node {node} is draining")))
                } else if tokio::time::Instant::now() >= look_at_load {
                    look_at_load = tokio::time::Instant::now() + SHED_LOOK;
                    let shed = sheds(&host, &cluster2, node, &stream, epoch).await
                        && has_spare(&host, &cluster2, node, &stream, cost).await;
                    shed.then(|| WorkerEvent::Crowded(format!("node {node} is crowded")))
                } else {
                    None
                };
                let Some(event) = event else {
                    tokio::time::sleep(DRAIN_LOOK).await;
                    continue;
                };
                if alive.strong_count() == 0 || !events(event) {
                    return;
                }
                tokio::time::sleep(DISPLACED_AGAIN).await;
            }
        });
        PlacedLink { _alive: token, cluster: cluster.clone(), stream: request.stream.clone(), epoch }
    }
}

/// Whether `node` asks to move the ladder of `stream` it makes under `epoch`.
async fn sheds(host: &LadderHost, cluster: &ClusterService, node: NodeId, stream: &str, epoch: u64) -> bool {
    let load = if node == host.node() {
        Some(host.load())
    } else {
        let Some(addr) = cluster.addr_of(node) else { return false };
        let ask = cluster.transport.call::<LadderLoad>(Some(node), &addr, &());
        tokio::time::timeout(LOAD_PATIENCE, ask).await.ok().and_then(Result::ok)
    };
    load.is_some_and(|l| l.ladders.iter().any(|h| h.stream == stream && h.epoch == epoch && h.shed))
}

/// Whether a node other than `crowded` may take the ladder of `stream` with room to spare.
async fn has_spare(host: &LadderHost, cluster: &ClusterService, crowded: NodeId, stream: &str, cost: f64) -> bool {
    let Some(rule) = cluster.catalog.peek(|c| c.streams.get(stream).map(|s| s.placement_rule.clone())) else {
        return false;
    };
    let loads = loads(host, cluster, &[crowded]).await;
    let request = policy::Request { origin: host.node(), cost, rule: &rule, avoid: &[], relieve: Some(crowded) };
    !policy::rank(&request, &loads).is_empty()
}

impl Drop for PlacedLink {
    fn drop(&mut self) {
        let (stream, epoch) = (self.stream.clone(), self.epoch);
        let handing_over = self.cluster.catalog.peek(|c| {
            c.streams.get(&stream).and_then(|s| s.placement).is_some_and(|p| p.from.is_some_and(|(_, e)| e == epoch))
        });
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if !handing_over {
            return;
        }
        let cluster = self.cluster.clone();
        runtime.spawn(async move {
            match cluster.propose(Command::EndHandover { stream: stream.clone(), epoch }).await {
                Ok(_) | Err(tessera_cluster::ClusterError::Catalog(CatalogError::Rejected(_))) => {}
                Err(e) => tracing::warn!(%stream, epoch, error = %e, "could not end the ladder's handover"),
            }
        });
    }
}

/// A worker process of this node, under a placement.
struct LocalLadder {
    process: Arc<Mutex<WorkerProcess>>,
    _reservation: Reservation,
    _placed: PlacedLink,
}

impl WorkerLink for LocalLadder {
    fn send(&self, msg: &ToWorker, body: Bytes) -> Result<(), QueueError> {
        self.process.lock().expect("worker").send(msg, &body)
    }

    fn kill(&mut self) {
        self.process.lock().expect("worker").kill()
    }

    fn place(&self) -> WorkerPlace {
        WorkerPlace::Local { pid: self.process.lock().expect("worker").pid }
    }
}

/// A worker on another node.
struct RemoteLadder {
    remote: RemoteRef<CodecWorker>,
    epoch: u64,
    _placed: PlacedLink,
}

impl WorkerLink for RemoteLadder {
    fn send(&self, msg: &ToWorker, body: Bytes) -> Result<(), QueueError> {
        self.remote.try_send(msg.clone(), body).map_err(|e| match e {
            remote::QueueError::Full => QueueError::Full,
            remote::QueueError::Closed => QueueError::Closed,
        })
    }

    fn kill(&mut self) {
        self.remote.stop("stopped by its encoder");
    }

    fn place(&self) -> WorkerPlace {
        WorkerPlace::Node { node: self.remote.node(), epoch: self.epoch }
    }
}
