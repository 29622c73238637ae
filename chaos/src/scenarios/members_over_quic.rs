//! Whole members under the simulator: three `ClusterService`s (the code a node runs to
//! initialise, join, forward writes and read linearizably) over their real QUIC transport
//! on the simulated datagram network. Node 1 initialises the cluster, 2 and 3 join it with
//! its token; writes go in through every member while the leader is cut off from the other
//! two and after the cut heals. Every acknowledged write is read back through every member,
//! and one seed replays the same history: every outcome at the same virtual instant.

use std::path::Path;
use std::time::Duration;

use tessera_raft::Command;

use crate::members::addr;
use crate::udp::UdpNet;

const WRITES: usize = 45;
/// Writes in this range are made while the first leader is cut off from the others.
const CUT: std::ops::Range<usize> = 15..30;

/// What the run saw: each write's end (virtual ms since the start) and outcome, then what
/// each member read back.
fn history(seed: u64, dir: &Path) -> Vec<(u64, String)> {
    crate::sim::run(seed, async {
        let start = tokio::time::Instant::now();
        let net = UdpNet::new(seed, Duration::from_millis(1));
        net.set_loss(5_000);
        let members = crate::members::start(3, seed, dir, &net).await;
        let mut seen = Vec::new();
        let mut acknowledged = Vec::new();
        let leader = members[0].wait_leader(Duration::from_secs(5)).await.expect("a leader") as usize;
        for n in 0..WRITES {
            if n == CUT.start {
                for other in (1..=3).filter(|o| *o != leader) {
                    net.partition(addr(leader).ip(), addr(other).ip());
                }
            }
            if n == CUT.end {
                net.heal();
            }
            let name = format!("s{n}");
            let via = &members[n % 3];
            let command =
                Command::PutStream { name: name.clone(), ladder: None, token_sha256: None, create_only: true };
            let outcome = match tokio::time::timeout(Duration::from_secs(8), via.propose(command)).await {
                Ok(Ok(_)) => {
                    acknowledged.push(name);
                    "ok".to_string()
                }
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "no answer".to_string(),
            };
            seen.push((start.elapsed().as_millis() as u64, format!("write {n} via {}: {outcome}", n % 3 + 1)));
        }
        for (i, member) in members.iter().enumerate() {
            let streams: Vec<String> = member
                .read(|c| c.streams.keys().cloned().collect())
                .await
                .unwrap_or_else(|e| panic!("a linearizable read through node {}, seed {seed}: {e}", i + 1));
            for name in &acknowledged {
                assert!(streams.contains(name), "node {} lost acknowledged {name}, seed {seed}: {streams:?}", i + 1);
            }
            seen.push((start.elapsed().as_millis() as u64, format!("node {} reads {streams:?}", i + 1)));
        }
        assert!(acknowledged.len() >= WRITES - CUT.len(), "too few writes went through, seed {seed}: {seen:?}");
        assert!(
            (CUT.start..CUT.end).any(|n| n % 3 + 1 != leader && seen[n].1.ends_with(": ok")),
            "the majority side never took a write while the leader was cut off, seed {seed}: {seen:?}"
        );
        for member in &members {
            member.shutdown().await;
        }
        seen
    })
}

#[test]
fn members_over_quic() {
    let (seed, _, _) = crate::scenario::announce("members_over_quic", 31);
    let dir = std::env::temp_dir().join(format!("tessera-chaos-members-{}-{seed}", std::process::id()));
    let run = |name: &str| {
        let run_dir = dir.join(name);
        let _ = std::fs::remove_dir_all(&run_dir);
        history(seed, &run_dir)
    };
    let first = run("first");
    let again = run("again");
    let diverged = first.iter().zip(&again).position(|(a, b)| a != b);
    assert_eq!(diverged, None, "seed {seed} replayed differently from event {diverged:?}: {first:?}\n{again:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
