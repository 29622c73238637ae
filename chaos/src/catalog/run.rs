//! Runs a whole-catalog scenario: clients issuing every family of command and reading
//! through every node while a seeded fault schedule runs; then heals, reads every key back
//! through every node, and checks the history ([`super::check`]) and convergence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_raft::memory::MemoryNetwork;
use tessera_raft::{Catalog, CatalogError, CatalogNode, Command, NodeId, Outcome};

use super::check;
use super::model::{self, Answer, Call, CatalogEvent, LocalObservation};
use crate::cluster::{ChaosCluster, Nodes, Rng};
use crate::history::History;
use crate::scenario::announce;
use crate::sim::now_ms;

/// How long a read waits before it counts as not answered (a read without an answer
/// changes nothing and is left out).
const PATIENCE: Duration = Duration::from_millis(1000);

/// What the clients saw.
#[derive(Default)]
struct Record {
    events: Mutex<Vec<CatalogEvent>>,
    local: Mutex<Vec<LocalObservation>>,
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub writes: usize,
    pub reads: usize,
    pub local_reads: usize,
    pub unknown: usize,
    pub keys: usize,
    /// Everything the run observed: two runs of one seed observe the same.
    pub observed: Observed,
}

/// A run's history, its local reads and the catalog it ended with, in the order seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub events: Vec<CatalogEvent>,
    pub local: Vec<LocalObservation>,
    pub catalog: Catalog,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {}: {} writes ({} unanswered), {} reads, {} local reads, {} keys",
            self.seed, self.writes, self.unknown, self.reads, self.local_reads, self.keys
        )
    }
}

fn node(nodes: &Nodes, id: NodeId) -> Option<CatalogNode> {
    nodes.read().expect("nodes").get(&id).cloned().flatten()
}

/// What became of a write.
enum Sent {
    Answered(Box<Outcome>),
    /// Sent, and no answer came: it may take effect at any time, or never.
    NoAnswer,
    /// `via` knew no leader it could reach: nothing was sent.
    Unsent,
}

/// A write through node `via`: forwarded to the leader it sees, if the network links them.
async fn write_through(nodes: &Nodes, net: &MemoryNetwork, via: NodeId, command: Command) -> Sent {
    let Some(leader) = node(nodes, via).and_then(|n| n.status().leader).filter(|l| *l == via || net.linked(via, *l))
    else {
        return Sent::Unsent;
    };
    let Some(leader) = node(nodes, leader) else { return Sent::Unsent };
    // A node that does not lead refuses before appending anything; one that led when asked
    // and lost the lead meanwhile may still see the entry commit.
    if leader.status().state != "leader" {
        return Sent::Unsent;
    }
    match tokio::time::timeout(Duration::from_millis(300), leader.propose(command)).await {
        Ok(Ok(o)) => Sent::Answered(Box::new(o)),
        Ok(Err(CatalogError::Rejected(r))) => Sent::Answered(Box::new(Outcome::Rejected(r))),
        _ => Sent::NoAnswer,
    }
}

/// A linearizable read of `key` through node `via`: the read index from the leader it
/// sees (if the network links them), then `via`'s own copy once it has applied that far.
async fn read_through(nodes: &Nodes, net: &MemoryNetwork, via: NodeId, key: &str) -> Option<serde_json::Value> {
    let reader = node(nodes, via)?;
    let leader = reader.status().leader.filter(|l| *l == via || net.linked(via, *l))?;
    let index = tokio::time::timeout(PATIENCE, node(nodes, leader)?.read_index()).await.ok()?.ok()?;
    reader.read_at(index, PATIENCE, |c| model::project(c, key)).await.ok()
}

#[allow(clippy::too_many_arguments)]
async fn client(
    id: usize,
    nodes: Nodes,
    net: Arc<MemoryNetwork>,
    clock: Arc<History>,
    record: Arc<Record>,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::new(seed ^ ((id as u64 + 7) * 0x0100_0001));
    let keys = model::keys();
    while !stop.load(Ordering::Acquire) {
        let key = keys[rng.below(keys.len() as u64) as usize].clone();
        let ids: Vec<NodeId> =
            nodes.read().expect("nodes").iter().filter(|(_, n)| n.is_some()).map(|(i, _)| *i).collect();
        if ids.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let via = ids[rng.below(ids.len() as u64) as usize];
        let invoked_us = clock.now_us();
        let at_ms = now_ms();
        match rng.below(10) {
            0..=5 => {
                let command = model::command(&key, &mut rng);
                let answer = match write_through(&nodes, &net, via, command.clone()).await {
                    Sent::Answered(o) => Answer::Outcome(model::outcome(&o)),
                    Sent::NoAnswer => Answer::Unknown,
                    // Nothing was sent: nothing can have happened.
                    Sent::Unsent => continue,
                };
                let returned_us = (answer != Answer::Unknown).then(|| clock.now_us());
                let e = CatalogEvent {
                    client: id,
                    node: via,
                    key,
                    call: Call::Write(command),
                    answer,
                    at_ms,
                    invoked_us,
                    returned_us,
                };
                record.events.lock().expect("record").push(e);
            }
            6..=8 => {
                if let Some(value) = read_through(&nodes, &net, via, &key).await {
                    let returned_us = Some(clock.now_us());
                    let e = CatalogEvent {
                        client: id,
                        node: via,
                        key,
                        call: Call::Read,
                        answer: Answer::Value(value),
                        at_ms,
                        invoked_us,
                        returned_us,
                    };
                    record.events.lock().expect("record").push(e);
                }
            }
            _ => {
                if let Some(n) = node(&nodes, via) {
                    let r = n.read_local(|c| model::project(c, &key));
                    let o = LocalObservation { node: via, applied: r.applied, key, value: r.value };
                    record.local.lock().expect("record").push(o);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5 + rng.below(20))).await;
    }
}

/// Runs `faults` against `voters` nodes while four clients work, then checks; all of it
/// under the simulator, seeded with the scenario's seed.
pub fn run(
    name: &str,
    voters: u64,
    default_seed: u64,
    faults: impl AsyncFnOnce(&ChaosCluster, Rng, Duration),
) -> Report {
    let (seed, window, replay) = announce(name, default_seed);
    crate::sim::run(seed, run_seed(name, voters, seed, window, &replay, faults))
}

async fn run_seed(
    name: &str,
    voters: u64,
    seed: u64,
    window: Duration,
    replay: &str,
    faults: impl AsyncFnOnce(&ChaosCluster, Rng, Duration),
) -> Report {
    let cluster = ChaosCluster::start(name, voters, seed).await;
    cluster.record_nodes().await;
    let leader = cluster.wait_leader(Duration::from_secs(5)).await.expect("a leader");
    let initial: Catalog =
        cluster.node(leader).expect("the leader runs").read(|c| c.clone()).await.expect("the starting catalog");
    let clock = Arc::new(History::default());
    let record = Arc::new(Record::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (nodes, net, clock, record, stop) =
                (cluster.nodes.clone(), cluster.net.clone(), clock.clone(), record.clone(), stop.clone());
            tokio::spawn(client(c, nodes, net, clock, record, seed, stop))
        })
        .collect();

    faults(&cluster, Rng::new(seed), window).await;

    cluster.heal_all(replay).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    for c in clients {
        let _ = c.await;
    }
    // Every key read back through every node: a lost acknowledged write shows up here.
    for key in model::keys() {
        for via in cluster.ids() {
            let mut read = None;
            for _ in 0..50 {
                let invoked_us = clock.now_us();
                if let Some(value) = read_through(&cluster.nodes, &cluster.net, via, &key).await {
                    read = Some(CatalogEvent {
                        client: 99,
                        node: via,
                        key: key.clone(),
                        call: Call::Read,
                        answer: Answer::Value(value),
                        at_ms: 0,
                        invoked_us,
                        returned_us: Some(clock.now_us()),
                    });
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let read = read.unwrap_or_else(|| panic!("could not read {key} through node {via} ({replay})"));
            record.events.lock().expect("record").push(read);
        }
    }
    let events = record.events.lock().expect("record").clone();
    let local = record.local.lock().expect("record").clone();
    let keys = match check::check(&initial, &events, &local) {
        Ok(n) => n,
        Err(v) => panic!("{v}\nreplay: {replay}"),
    };
    assert!(cluster.converged(Duration::from_secs(10)).await, "nodes ended with different catalogs ({replay})");
    let writes = events.iter().filter(|e| matches!(e.call, Call::Write(_))).count();
    let catalog = cluster.node(cluster.leader().unwrap_or(1)).map(|n| n.peek(|c| c.clone())).unwrap_or_default();
    let report = Report {
        seed,
        writes,
        reads: events.len() - writes,
        local_reads: local.len(),
        unknown: events.iter().filter(|e| e.answer == Answer::Unknown).count(),
        keys,
        observed: Observed { events, local, catalog },
    };
    eprintln!("chaos {name}: {report}: linearizable through every node, local reads truthful, converged");
    cluster.stop().await;
    report
}
