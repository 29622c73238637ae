//! A catalog cluster under fault injection: real Raft nodes on real disk stores, talking
//! over an in-memory network that can partition, delay and lose; nodes that can be killed
//! and restarted from disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tessera_raft::memory::MemoryNetwork;
use tessera_raft::store::LogWrites;
use tessera_raft::{CatalogNode, Clock, Command, Environment, NodeId, NodeRecord, Outcome, RaftTimeouts};

/// A small deterministic random source (xorshift64*), so a seed replays a scenario.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The running nodes, shared with the clients (a killed node is `None`).
pub type Nodes = Arc<RwLock<BTreeMap<NodeId, Option<CatalogNode>>>>;

/// Proposes as node `id` would: through the leader as `id` sees it, only if the network
/// links them; `None` when it cannot tell whether the write took (as a client of `id`
/// would not know).
pub async fn propose_as(nodes: &Nodes, net: &MemoryNetwork, id: NodeId, command: Command) -> Option<Outcome> {
    let node = |id: NodeId| nodes.read().expect("nodes").get(&id).cloned().flatten();
    let leader = node(id)?.status().leader.filter(|l| *l == id || net.linked(id, *l))?;
    match tokio::time::timeout(Duration::from_millis(300), node(leader)?.propose(command)).await {
        Ok(Ok(o)) => Some(o),
        Ok(Err(tessera_raft::CatalogError::Rejected(r))) => Some(Outcome::Rejected(r)),
        _ => None,
    }
}

pub struct ChaosCluster {
    pub net: Arc<MemoryNetwork>,
    pub nodes: Nodes,
    dir: PathBuf,
    timeouts: RaftTimeouts,
}

fn addr(id: NodeId) -> String {
    format!("node-{id}")
}

impl ChaosCluster {
    /// Starts `voters` voting nodes (node 1 initialises the cluster) in a fresh folder.
    pub async fn start(name: &str, voters: u64, seed: u64) -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-chaos-{name}-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let timeouts = RaftTimeouts {
            heartbeat: Duration::from_millis(50),
            election_min: Duration::from_millis(150),
            election_max: Duration::from_millis(300),
            snapshot_every: 200,
        };
        let c = ChaosCluster { net: MemoryNetwork::new(seed), nodes: Arc::default(), dir, timeouts };
        for id in 1..=voters {
            c.boot(id).await;
        }
        let first = c.node(1).expect("node 1 runs");
        first.initialize(&addr(1)).await.expect("initialize");
        c.wait_leader(Duration::from_secs(5)).await.expect("node 1 leads");
        for id in 2..=voters {
            first.add_learner(id, &addr(id)).await.expect("add learner");
        }
        first.change_voters((1..=voters).collect(), false).await.expect("voters");
        c
    }

    async fn boot(&self, id: NodeId) -> CatalogNode {
        // Under the simulator, time is virtual and the log is written inline (see `sim`).
        let env = Environment {
            clock: Clock::from_fn(crate::sim::now_ms),
            log_writes: if crate::sim::active() { LogWrites::Inline } else { LogWrites::GroupCommit },
        };
        let dir = self.dir.join(format!("node-{id}"));
        let n =
            CatalogNode::start_in(id, &dir, self.net.transport(id), &self.timeouts, env).await.expect("node starts");
        self.net.register(id, n.raft.clone());
        self.nodes.write().expect("nodes").insert(id, Some(n.clone()));
        n
    }

    pub fn node(&self, id: NodeId) -> Option<CatalogNode> {
        self.nodes.read().expect("nodes").get(&id).cloned().flatten()
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.read().expect("nodes").keys().copied().collect()
    }

    /// The leader most running nodes agree on.
    pub fn leader(&self) -> Option<NodeId> {
        let nodes = self.nodes.read().expect("nodes");
        let mut votes: BTreeMap<NodeId, usize> = BTreeMap::new();
        for n in nodes.values().flatten() {
            if let Some(l) = n.status().leader {
                *votes.entry(l).or_default() += 1;
            }
        }
        votes.into_iter().max_by_key(|(_, v)| *v).map(|(l, _)| l)
    }

    /// Waits until a running node is leader and knows it.
    pub async fn wait_leader(&self, within: Duration) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(l) = self.leader() {
                if self.node(l).is_some_and(|n| n.status().state == "leader") {
                    return Some(l);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Kills a node: it drops off the network and stops. What it acknowledged is on disk.
    pub async fn kill(&self, id: NodeId) {
        self.net.unregister(id);
        let n = self.nodes.write().expect("nodes").insert(id, None).flatten();
        if let Some(n) = n {
            n.shutdown().await;
        }
    }

    /// Restarts a killed node from its folder.
    pub async fn restart(&self, id: NodeId) {
        if self.node(id).is_none() {
            self.boot(id).await;
        }
    }

    /// Adds a new node as a learner through the leader.
    pub async fn add(&self, id: NodeId) -> Result<(), tessera_raft::CatalogError> {
        self.boot(id).await;
        let l = self.wait_leader(Duration::from_secs(5)).await.and_then(|l| self.node(l));
        match l {
            Some(l) => l.add_learner(id, &addr(id)).await,
            None => Err(tessera_raft::CatalogError::Unavailable("no leader".into())),
        }
    }

    /// Heals the network and brings every node back; panics (naming `replay`) if no
    /// leader emerges within 10 s.
    pub async fn heal_all(&self, replay: &str) {
        self.net.heal();
        for id in self.ids() {
            self.restart(id).await;
        }
        assert!(self.wait_leader(Duration::from_secs(10)).await.is_some(), "no leader after healing ({replay})");
    }

    /// Whether every running node has applied the same catalog.
    pub async fn converged(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            let views: Vec<_> = {
                let nodes = self.nodes.read().expect("nodes");
                nodes.values().flatten().map(|n| n.read_local(|c| c.clone()).value).collect()
            };
            if views.windows(2).all(|w| w[0] == w[1]) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Proposes an admin write through whichever node leads, retrying for a while when no
    /// leader answers; its outcome (a rejection is one), or `None` if nobody took it.
    pub async fn admin(&self, command: Command) -> Option<Outcome> {
        for _ in 0..100 {
            if let Some(n) = self.leader().and_then(|l| self.node(l)) {
                match tokio::time::timeout(Duration::from_secs(2), n.propose(command.clone())).await {
                    Ok(Ok(o)) => return Some(o),
                    Ok(Err(tessera_raft::CatalogError::Rejected(r))) => return Some(Outcome::Rejected(r)),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Records every node in the catalog, as a node does when it starts.
    pub async fn record_nodes(&self) {
        for id in self.ids() {
            let node = NodeRecord { id, cluster_addr: addr(id), http_addr: String::new(), joined_ms: 0, region: None };
            self.admin(Command::PutNode { node }).await;
        }
    }

    /// Stops every node and removes the folder.
    pub async fn stop(self) {
        let nodes: Vec<CatalogNode> = self.nodes.read().expect("nodes").values().flatten().cloned().collect();
        for n in nodes {
            n.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
