//! Clients that hammer the catalog while faults are injected, recording every operation in
//! a [`History`]: create, delete and read of a few stream names, each sent to the node the
//! client believes leads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_raft::{CatalogError, CatalogNode, Command, NodeId, Outcome, Rejection};

use crate::cluster::{Nodes, Rng};
use crate::history::{History, Op, Ret};
use tessera_raft::StreamRejection;

/// How long a client waits for an answer before calling the outcome unknown.
const PATIENCE: Duration = Duration::from_millis(1500);

fn pick(nodes: &Nodes, prefer: Option<NodeId>, rng: &mut Rng) -> Option<CatalogNode> {
    let nodes = nodes.read().expect("nodes");
    if let Some(n) = prefer.and_then(|p| nodes.get(&p).cloned().flatten()) {
        return Some(n);
    }
    let up: Vec<&CatalogNode> = nodes.values().flatten().collect();
    (!up.is_empty()).then(|| up[rng.below(up.len() as u64) as usize].clone())
}

/// Runs one client until `stop` is set. An operation under way is always finished and
/// recorded: dropping it could let a write take effect unrecorded.
pub async fn client(
    id: usize,
    keys: Vec<String>,
    nodes: Nodes,
    history: Arc<History>,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::new(seed ^ ((id as u64 + 1) * 0x1000_0001));
    let mut target: Option<NodeId> = None;
    while !stop.load(Ordering::Acquire) {
        let key = keys[rng.below(keys.len() as u64) as usize].clone();
        let op = match rng.below(10) {
            0..=3 => Op::Read,
            4..=6 => Op::Create,
            _ => Op::Delete,
        };
        target = one(id, &key, op, &nodes, target, &history, &mut rng).await;
        tokio::time::sleep(Duration::from_millis(5 + rng.below(20))).await;
    }
}

/// Does one operation; returns the node to try next.
pub async fn one(
    id: usize,
    key: &str,
    op: Op,
    nodes: &Nodes,
    target: Option<NodeId>,
    history: &History,
    rng: &mut Rng,
) -> Option<NodeId> {
    let node = pick(nodes, target, rng)?;
    // Refused before it was proposed (the node did not lead when asked): no effect.
    let status = node.status();
    let was_leader = status.state == "leader";
    let (nid, term) = (node.id, status.term);
    let invoked = history.now_us();
    let result = match op {
        Op::Read => tokio::time::timeout(PATIENCE, node.read(|c| c.streams.contains_key(key)))
            .await
            .map(|r| r.map(Ret::Present)),
        Op::Create => {
            let cmd = Command::PutStream { name: key.into(), ladder: None, token_sha256: None, create_only: true };
            tokio::time::timeout(PATIENCE, node.propose(cmd))
                .await
                .map(|r| write_ret(r, Rejection::Stream(StreamRejection::StreamExists(key.into()))))
        }
        Op::Delete => {
            let cmd = Command::DeleteStream { name: key.into() };
            tokio::time::timeout(PATIENCE, node.propose(cmd))
                .await
                .map(|r| write_ret(r, Rejection::Stream(StreamRejection::NoSuchStream(key.into()))))
        }
    };
    match result {
        Ok(Ok(ret)) => {
            history.record(id, nid, term, key, op, ret, invoked);
            Some(node.id)
        }
        Ok(Err(CatalogError::NotLeader(leader))) => {
            if op != Op::Read && was_leader {
                // It led when asked and lost the lead meanwhile: the entry may still commit.
                history.record(id, nid, term, key, op, Ret::Unknown, invoked);
            }
            leader.map(|(l, _)| l)
        }
        Ok(Err(_)) | Err(_) => {
            if op != Op::Read {
                history.record(id, nid, term, key, op, Ret::Unknown, invoked);
            }
            None
        }
    }
}

fn write_ret(r: Result<Outcome, CatalogError>, refusal: Rejection) -> Result<Ret, CatalogError> {
    match r {
        Ok(_) => Ok(Ret::Done),
        Err(CatalogError::Rejected(why)) if why == refusal => Ok(Ret::Refused),
        Err(e) => Err(e),
    }
}
