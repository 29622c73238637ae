//! VOD transcode jobs under faults: a catalog cluster whose every node runs a worker with
//! the job protocol the node runs (`ClaimJob`, `RenewJob` with the checkpoint after every
//! segment, `FinishJob`), its writes forwarded to the leader only while the link to it is
//! up. The work itself is simulated: each segment takes a few tens of milliseconds and is
//! written to a shared output store under the worker's epoch, as a real worker writes
//! `seg-K.eEPOCH.m4s`. [`check`] holds the catalog's final job records and the writes
//! against the invariants: every job done, every segment read exactly once, from the
//! epoch the catalog names for it.

pub mod check;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_raft::{AssetRecord, AssetState, CatalogNode, Command, JobRecord, NodeId, Outcome, SourceRecord};

use crate::cluster::{ChaosCluster, Nodes, Rng};
use crate::sim::now_ms;

/// A job's lease in these runs: short, so a lapse shows within the scenario.
pub const LEASE_MS: i64 = 400;

/// One segment written to the shared output store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub job: String,
    pub segment: u32,
    pub epoch: u64,
    pub node: NodeId,
    pub true_ms: i64,
}

/// A cluster transcoding one asset.
pub struct JobsWorld {
    pub cluster: ChaosCluster,
    pub segments: u32,
    writes: Arc<Mutex<Vec<Write>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Clone)]
struct Context {
    nodes: Nodes,
    net: Arc<tessera_raft::memory::MemoryNetwork>,
    writes: Arc<Mutex<Vec<Write>>>,
    stop: Arc<AtomicBool>,
    seed: u64,
}

impl Context {
    fn node(&self, id: NodeId) -> Option<CatalogNode> {
        self.nodes.read().expect("nodes").get(&id).cloned().flatten()
    }

    /// Proposes through the leader as node `id` sees it, if `id` can reach it; `None`
    /// when it cannot (the worker does not know whether it still holds its lease).
    async fn propose(&self, id: NodeId, command: Command) -> Option<Outcome> {
        crate::cluster::propose_as(&self.nodes, &self.net, id, command).await
    }
}

impl JobsWorld {
    /// Starts `voters` nodes, an asset with one job per rendition of `segments` segments,
    /// and a worker on every node.
    pub async fn start(name: &str, voters: u64, seed: u64, renditions: &[&str], segments: u32) -> Self {
        let mut world = JobsWorld {
            cluster: ChaosCluster::start(name, voters, seed).await,
            segments,
            writes: Arc::default(),
            stop: Arc::default(),
            tasks: Vec::new(),
        };
        world.cluster.record_nodes().await;
        let source = SourceRecord {
            node: 1,
            size: 1,
            sha256: "00".repeat(32),
            container: "mp4".into(),
            duration_ms: 60_000,
            video: None,
            audio: None,
        };
        let asset = AssetRecord {
            id: "film".into(),
            title: "Film".into(),
            source,
            state: AssetState::Uploaded,
            keep_source: true,
            created_ms: 0,
        };
        world.admin(Command::AddAsset { asset }).await;
        let jobs = renditions.iter().map(|r| (r.to_string(), format!("{r}:1000"))).collect();
        world.admin(Command::AddJobs { asset: "film".into(), jobs, segments_total: segments }).await;
        let cx = world.context(seed);
        for id in world.cluster.ids() {
            world.tasks.push(tokio::spawn(worker(cx.clone(), id)));
        }
        world
    }

    fn context(&self, seed: u64) -> Context {
        Context {
            nodes: self.cluster.nodes.clone(),
            net: self.cluster.net.clone(),
            writes: self.writes.clone(),
            stop: self.stop.clone(),
            seed,
        }
    }

    /// Proposes an admin write through whichever node leads; panics if the cluster never
    /// takes it.
    pub async fn admin(&self, command: Command) {
        match self.cluster.admin(command.clone()).await {
            Some(Outcome::Rejected(r)) => panic!("the cluster refused {command:?}: {r:?}"),
            Some(_) => {}
            None => panic!("the cluster never took {command:?}"),
        }
    }

    /// The jobs as a running node has applied them.
    pub fn jobs(&self) -> Vec<JobRecord> {
        let id = self.cluster.leader().or_else(|| self.cluster.ids().first().copied());
        id.and_then(|id| self.cluster.node(id))
            .map(|n| n.peek(|c| c.jobs.values().cloned().collect()))
            .unwrap_or_default()
    }

    /// Waits until some job is leased; its holder.
    pub async fn a_holder(&self, within: Duration) -> Option<NodeId> {
        let deadline = now_ms() + within.as_millis() as i64;
        while now_ms() < deadline {
            if let Some(l) =
                self.jobs().iter().find_map(|j| j.lease.filter(|_| j.state == tessera_raft::JobState::Leased))
            {
                return Some(l.node);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Heals, restarts every node, waits until every job is done (or `within`), stops the
    /// workers; the jobs every node converged on and every write.
    pub async fn finish(mut self, within: Duration) -> (Vec<JobRecord>, Vec<Write>, ChaosCluster) {
        self.cluster.net.heal();
        for id in self.cluster.ids() {
            self.cluster.restart(id).await;
        }
        let deadline = now_ms() + within.as_millis() as i64;
        while now_ms() < deadline {
            let jobs = self.jobs();
            if !jobs.is_empty() && jobs.iter().all(|j| j.state == tessera_raft::JobState::Done) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop.store(true, Ordering::Release);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        assert!(self.cluster.converged(Duration::from_secs(10)).await, "nodes ended with different catalogs");
        let jobs = self.jobs();
        let writes = std::mem::take(&mut *self.writes.lock().expect("writes"));
        (jobs, writes, self.cluster)
    }
}

/// One node's worker: claims what its node sees claimable, works segment by segment,
/// renewing with its checkpoint after each, and finishes; stops when its node is killed or
/// its lease is refused (fenced).
async fn worker(cx: Context, id: NodeId) {
    let mut rng = Rng::new(cx.seed ^ (id * 7919));
    while !cx.stop.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(10 + rng.below(20))).await;
        let Some(node) = cx.node(id) else { continue };
        let now = now_ms();
        let Some(job) = node.peek(|c| c.jobs.values().find(|j| j.claimable(now)).cloned()) else { continue };
        let claim = Command::ClaimJob {
            asset: job.asset.clone(),
            rendition: job.rendition.clone(),
            node: id,
            lease_ms: LEASE_MS,
        };
        let Some(Outcome::JobLease(lease)) = cx.propose(id, claim).await else { continue };
        let key = tessera_raft::job_key(&job.asset, &job.rendition);
        let mut finished = true;
        for k in job.segments_done..job.segments_total {
            tokio::time::sleep(Duration::from_millis(15 + rng.below(25))).await;
            if cx.node(id).is_none() || cx.stop.load(Ordering::Acquire) {
                finished = false; // killed: the work in memory is lost
                break;
            }
            let write = Write { job: key.clone(), segment: k, epoch: lease.epoch, node: id, true_ms: now_ms() };
            cx.writes.lock().expect("writes").push(write);
            let renew = Command::RenewJob {
                asset: job.asset.clone(),
                rendition: job.rendition.clone(),
                node: id,
                epoch: lease.epoch,
                lease_ms: LEASE_MS,
                segments_done: k + 1,
            };
            if let Some(Outcome::Rejected(_)) = cx.propose(id, renew).await {
                finished = false; // fenced off
                break;
            }
        }
        if finished {
            let done = Command::FinishJob {
                asset: job.asset.clone(),
                rendition: job.rendition.clone(),
                node: id,
                epoch: lease.epoch,
            };
            let _ = cx.propose(id, done).await;
        }
    }
}
