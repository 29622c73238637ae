//! Runs a scenario under the simulator ([`crate::sim`]): a cluster, clients recording a
//! history, a fault schedule drawn from one seed; then heals everything, reads every key
//! back, and checks the invariants — the
//! history is linearizable (so no acknowledged write was lost) and every node ends with the
//! same catalog. A failure prints the command that replays it.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{ChaosCluster, Rng};
use crate::history::{History, Op};
use crate::linearizability;
use crate::workload;

/// What a run did, for the log.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub operations: usize,
    pub unknown: usize,
    pub keys: usize,
}

/// The seed: `TESSERA_CHAOS_SEED` if set, otherwise `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("TESSERA_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// `count` new seeds (or `var`'s number of them, if set), drawn from the time: each run of
/// a sweep tries other ones.
pub fn new_seeds(var: &str, count: u64) -> Vec<u64> {
    let n: u64 = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(count);
    let first = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut seeds = crate::cluster::Rng::new(first);
    (0..n).map(|_| seeds.next_u64() % 1_000_000_000).collect()
}

/// How long faults run: `TESSERA_CHAOS_SECONDS` if set, otherwise `default` (CI keeps it short).
pub fn seconds(default: u64) -> Duration {
    Duration::from_secs(std::env::var("TESSERA_CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default))
}

/// A scenario's seed and fault window, and the command that replays it, printed first.
pub fn announce(name: &str, default_seed: u64) -> (u64, Duration, String) {
    let seed = seed(default_seed);
    let window = seconds(4);
    let replay = format!(
        "TESSERA_CHAOS_SEED={seed} TESSERA_CHAOS_SECONDS={} cargo test -p tessera-chaos {name}",
        window.as_secs()
    );
    eprintln!("chaos {name}: seed {seed}, {} s of faults (replay: {replay})", window.as_secs());
    (seed, window, replay)
}

/// Runs `faults` against a cluster of `voters` while three clients work, then checks; all
/// of it under the simulator ([`crate::sim`]), seeded with the scenario's seed.
pub fn run(
    name: &str,
    voters: u64,
    default_seed: u64,
    faults: impl AsyncFnOnce(&ChaosCluster, Rng, Duration),
) -> Report {
    let (seed, duration, replay) = announce(name, default_seed);
    crate::sim::run(seed, run_seed(name, voters, seed, duration, &replay, faults))
}

async fn run_seed(
    name: &str,
    voters: u64,
    seed: u64,
    duration: Duration,
    replay: &str,
    faults: impl AsyncFnOnce(&ChaosCluster, Rng, Duration),
) -> Report {
    let cluster = ChaosCluster::start(name, voters, seed).await;
    let history = Arc::new(History::default());
    let keys: Vec<String> = (0..6).map(|i| format!("k{i}")).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|c| {
            tokio::spawn(workload::client(c, keys.clone(), cluster.nodes.clone(), history.clone(), seed, stop.clone()))
        })
        .collect();

    faults(&cluster, Rng::new(seed), duration).await;

    // Heal, bring every node back, let the clients see the calm, then stop them.
    cluster.heal_all(replay).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    for c in clients {
        let _ = c.await;
    }
    // Read every key back: an acknowledged write the cluster lost shows up here.
    let mut rng = Rng::new(seed);
    for key in &keys {
        let before = history.events().len();
        for _ in 0..50 {
            let leader = cluster.leader();
            workload::one(99, key, Op::Read, &cluster.nodes, leader, &history, &mut rng).await;
            if history.events().len() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(history.events().len() > before, "could not read {key} back ({replay})");
    }
    let events = history.events();
    let keys_checked = match linearizability::check(&events) {
        Ok(n) => n,
        Err(v) => panic!("{v}\nreplay: {replay}"),
    };
    assert!(cluster.converged(Duration::from_secs(10)).await, "nodes ended with different catalogs ({replay})");
    let report = Report {
        seed,
        operations: events.len(),
        unknown: events.iter().filter(|e| e.returned_us.is_none()).count(),
        keys: keys_checked,
    };
    eprintln!("chaos {name}: {report:?}: linearizable, converged");
    cluster.stop().await;
    report
}
