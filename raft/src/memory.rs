//! An in-memory network of catalog nodes, with the faults a real one has: partitions (both
//! ways or one way), delay and loss, all under the caller's control and seeded, so a test or
//! a chaos scenario replays exactly.
//!
//! Like a real network, nothing is instant: each hop takes [`HOP`] (plus any delay the
//! caller adds), a message into a cut link fails after its hop (the sender backs off), and
//! a lost answer is never heard of: the sender waits [`LOST_REPLY`], longer than any Raft
//! timeout. So no retry loop can spin without time passing, which under a paused clock
//! would stop it for good.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::{BasicNode, Raft};

use crate::catalog::NodeId;
use crate::network::{dispatch, RaftReply, RaftRpc, Transport, TransportError};
use crate::TypeConfig;

/// How long one message takes from one node to another on a healthy link.
pub const HOP: Duration = Duration::from_micros(500);

/// How long a sender whose answer was lost waits before it gives up.
pub const LOST_REPLY: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Faults {
    /// (from, to): messages from `from` to `to` are lost.
    blocked: HashSet<(NodeId, NodeId)>,
    delay: Duration,
    /// Probability, per message, of losing it.
    loss: f64,
    rng: u64,
}

/// The nodes of an in-memory cluster and the faults between them.
#[derive(Default)]
pub struct MemoryNetwork {
    nodes: Mutex<HashMap<NodeId, Raft<TypeConfig>>>,
    faults: Mutex<Faults>,
}

impl MemoryNetwork {
    pub fn new(seed: u64) -> Arc<Self> {
        let net = MemoryNetwork::default();
        net.faults.lock().expect("faults").rng = seed | 1;
        Arc::new(net)
    }

    /// Makes a node reachable (again, after a restart).
    pub fn register(&self, id: NodeId, raft: Raft<TypeConfig>) {
        self.nodes.lock().expect("nodes").insert(id, raft);
    }

    /// Takes a node off the network (it crashed).
    pub fn unregister(&self, id: NodeId) {
        self.nodes.lock().expect("nodes").remove(&id);
    }

    /// The transport a node uses to reach the others.
    pub fn transport(self: &Arc<Self>, from: NodeId) -> MemoryTransport {
        MemoryTransport { from, net: self.clone() }
    }

    /// Cuts every link between the two sides, both ways.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        let mut f = self.faults.lock().expect("faults");
        for x in a {
            for y in b {
                f.blocked.insert((*x, *y));
                f.blocked.insert((*y, *x));
            }
        }
    }

    /// Loses messages from `from` to `to` only.
    pub fn block(&self, from: NodeId, to: NodeId) {
        self.faults.lock().expect("faults").blocked.insert((from, to));
    }

    /// Delays every message; loses each with probability `loss`.
    pub fn degrade(&self, delay: Duration, loss: f64) {
        let mut f = self.faults.lock().expect("faults");
        f.delay = delay;
        f.loss = loss;
    }

    /// Removes every fault.
    pub fn heal(&self) {
        let mut f = self.faults.lock().expect("faults");
        f.blocked.clear();
        f.delay = Duration::ZERO;
        f.loss = 0.0;
    }

    /// Whether neither direction between `a` and `b` is cut (loss aside).
    pub fn linked(&self, a: NodeId, b: NodeId) -> bool {
        let f = self.faults.lock().expect("faults");
        !f.blocked.contains(&(a, b)) && !f.blocked.contains(&(b, a))
    }

    /// Whether a message from `from` to `to` gets through now, and after what delay.
    fn route(&self, from: NodeId, to: NodeId) -> Option<Duration> {
        let mut f = self.faults.lock().expect("faults");
        if f.blocked.contains(&(from, to)) {
            return None;
        }
        if f.loss > 0.0 {
            // xorshift64: deterministic for a seed and an order of messages.
            f.rng ^= f.rng << 13;
            f.rng ^= f.rng >> 7;
            f.rng ^= f.rng << 17;
            if (f.rng % 1_000_000) as f64 / 1_000_000.0 < f.loss {
                return None;
            }
        }
        Some(HOP + f.delay)
    }
}

/// One node's way into a [`MemoryNetwork`].
#[derive(Clone)]
pub struct MemoryTransport {
    from: NodeId,
    net: Arc<MemoryNetwork>,
}

impl Transport for MemoryTransport {
    async fn call(&self, target: NodeId, _node: &BasicNode, rpc: RaftRpc) -> Result<RaftReply, TransportError> {
        let Some(delay) = self.net.route(self.from, target) else {
            tokio::time::sleep(HOP).await;
            return Err(TransportError::Unreachable(target, "partitioned".into()));
        };
        tokio::time::sleep(delay).await;
        let raft = self.net.nodes.lock().expect("nodes").get(&target).cloned();
        let raft = raft.ok_or_else(|| TransportError::Unreachable(target, "down".into()))?;
        let reply = dispatch(&raft, rpc).await;
        // The answer travels back: a one-way partition loses it.
        match self.net.route(target, self.from) {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                Ok(reply)
            }
            None => {
                tokio::time::sleep(LOST_REPLY).await;
                Err(TransportError::Broken(target, "reply lost".into()))
            }
        }
    }
}
