//! Scheduled releases under faults: a catalog cluster whose nodes each run the release
//! clock on their own (possibly skewed) clock, and viewers polling every node's gate all
//! through the run.
//!
//! Each node's clock is the true clock ([`now_ms`], virtual under the simulator) plus its
//! skew; its voter proposes the clock votes the catalog says are due
//! ([`tessera_raft::Catalog::due_clock_votes`], the same core the node runs), forwarding to the leader only while the link to it is up. The viewers ask
//! every running node's gate ([`tessera_raft::Catalog::visibility`] on what that node has
//! applied, with its own clock) every few milliseconds and record what it said and when,
//! on the true clock. [`check`] then holds the record against the invariants.

pub mod check;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_raft::{CatalogNode, Command, NodeId, Outcome, ReleaseRecord, Visibility};

use crate::cluster::ChaosCluster;
use crate::sim::now_ms;

/// What one node's gate said about one content at one moment.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub true_ms: i64,
    pub node: NodeId,
    pub content: String,
    pub served: bool,
}

/// A cluster running releases, watched by viewers.
pub struct ReleaseWorld {
    pub cluster: ChaosCluster,
    /// Each node's clock skew, milliseconds (absent: 0).
    pub skews: BTreeMap<NodeId, i64>,
    /// Contents whose release every node has applied: watched from then on (before it, the
    /// content is not gated and may be served).
    armed: Arc<Mutex<HashSet<String>>>,
    sightings: Arc<Mutex<Vec<Sighting>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ReleaseWorld {
    /// Starts `voters` nodes with the given clock skews, and the viewers of every content
    /// it schedules.
    pub async fn start(name: &str, voters: u64, seed: u64, skews: &[(NodeId, i64)]) -> Self {
        let mut world = ReleaseWorld {
            cluster: ChaosCluster::start(name, voters, seed).await,
            skews: skews.iter().copied().collect(),
            armed: Arc::default(),
            sightings: Arc::default(),
            stop: Arc::default(),
            tasks: Vec::new(),
        };
        // Every node records itself in the catalog, as a node does when it starts: the
        // catalog's nodes are the electorate of clock votes.
        world.cluster.record_nodes().await;
        for id in world.cluster.ids() {
            world.tasks.push(tokio::spawn(voter(world.context(), id)));
        }
        world.tasks.push(tokio::spawn(viewers(world.context(), world.sightings.clone())));
        world
    }

    fn context(&self) -> Context {
        Context {
            nodes: self.cluster.nodes.clone(),
            net: self.cluster.net.clone(),
            skews: self.skews.clone(),
            armed: self.armed.clone(),
            stop: self.stop.clone(),
        }
    }

    /// Proposes an admin write through whichever node leads, retrying for a while; the
    /// release it made, if any.
    pub async fn admin(&self, command: Command) -> Option<ReleaseRecord> {
        match self.cluster.admin(command).await {
            Some(Outcome::Release(r)) => Some(r),
            _ => None,
        }
    }

    /// Schedules `content` at `at_ms` (true time); panics if the cluster will not.
    pub async fn schedule(&self, content: &str, at_ms: i64, end_ms: Option<i64>) -> ReleaseRecord {
        let command = Command::ScheduleRelease { content: content.into(), at_ms, end_ms, regions: vec![] };
        let r = self.admin(command).await.expect("the release is scheduled");
        for _ in 0..200 {
            let ids = self.cluster.ids();
            if ids.iter().all(|id| self.cluster.node(*id).is_some_and(|n| n.peek(|c| c.releases.contains_key(&r.id)))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.armed.lock().expect("armed").insert(content.to_string());
        r
    }

    /// Sleeps until the true clock reads `at_ms`.
    pub async fn until(&self, at_ms: i64) {
        let wait = at_ms - now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Heals the network, restarts every node, stops the viewers and voters, and returns
    /// what the viewers saw and the release records every node converged on.
    pub async fn finish(mut self, settle: Duration) -> (Vec<Sighting>, BTreeMap<u64, ReleaseRecord>, ChaosCluster) {
        self.cluster.net.heal();
        for id in self.cluster.ids() {
            self.cluster.restart(id).await;
        }
        // Voters of restarted nodes: the old tasks keep running (they look nodes up by id).
        tokio::time::sleep(settle).await;
        self.stop.store(true, Ordering::Release);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        assert!(self.cluster.converged(Duration::from_secs(10)).await, "nodes ended with different catalogs");
        let releases = self
            .cluster
            .ids()
            .into_iter()
            .find_map(|id| self.cluster.node(id))
            .map(|n| n.peek(|c| c.releases.clone()))
            .unwrap_or_default();
        let sightings = std::mem::take(&mut *self.sightings.lock().expect("sightings"));
        (sightings, releases, self.cluster)
    }
}

/// What the voters and viewers share.
#[derive(Clone)]
struct Context {
    nodes: crate::cluster::Nodes,
    net: Arc<tessera_raft::memory::MemoryNetwork>,
    skews: BTreeMap<NodeId, i64>,
    armed: Arc<Mutex<HashSet<String>>>,
    stop: Arc<AtomicBool>,
}

impl Context {
    fn node(&self, id: NodeId) -> Option<CatalogNode> {
        self.nodes.read().expect("nodes").get(&id).cloned().flatten()
    }

    fn clock(&self, id: NodeId) -> i64 {
        now_ms() + self.skews.get(&id).copied().unwrap_or(0)
    }
}

/// One node's release clock: proposes its due votes, through the leader while it can
/// reach it (a forwarded write, as a node does over QUIC).
async fn voter(cx: Context, id: NodeId) {
    let mut sent: HashSet<(u64, u64, tessera_raft::ReleasePhase)> = HashSet::new();
    let mut retry_at = 0i64;
    while !cx.stop.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let Some(node) = cx.node(id) else { continue };
        let due = node.peek(|c| c.due_clock_votes(id, cx.clock(id)));
        if now_ms() >= retry_at {
            sent.clear(); // votes not seen applied by now are sent again
            retry_at = now_ms() + 300;
        }
        for vote in due {
            let Command::ReleaseClock { id: r, revision, phase, .. } = &vote else { continue };
            if !sent.insert((*r, *revision, *phase)) {
                continue;
            }
            let Some(leader) = node.status().leader.filter(|l| *l == id || cx.net.linked(id, *l)) else { continue };
            if let Some(l) = cx.node(leader) {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(1), l.propose(vote)).await;
                });
            }
        }
    }
}

/// Viewers: every few milliseconds, every running node's gate for every content.
async fn viewers(cx: Context, sightings: Arc<Mutex<Vec<Sighting>>>) {
    while !cx.stop.load(Ordering::Acquire) {
        let ids: Vec<NodeId> = cx.nodes.read().expect("nodes").keys().copied().collect();
        for id in ids {
            let Some(node) = cx.node(id) else { continue };
            let armed: Vec<String> = cx.armed.lock().expect("armed").iter().cloned().collect();
            for content in &armed {
                // Taken before the gate is asked: a sighting is never dated later than it was.
                let t = now_ms();
                let served = node.peek(|c| c.visibility(content, None, cx.clock(id))) == Visibility::Public;
                let s = Sighting { true_ms: t, node: id, content: content.clone(), served };
                sightings.lock().expect("sightings").push(s);
            }
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}
