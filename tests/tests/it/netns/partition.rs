//! The catalog across hosts under the kernel's faults: a minority cut off, a leader whose
//! packets stop leaving, random loss, a node killed and restarted. Writes acknowledged
//! anywhere are never lost; linearizable reads through any node see every one of them; a
//! node cut off says so in its local reads (no leader) instead of passing old data off as
//! current; once healed, every node holds exactly what was acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use super::Network;
use crate::cluster::{create_stream, eventually, form_these, membership, stream_names, Proc};

/// Writes `names` through `via`; the ones acknowledged.
async fn write_through(via: &Proc, admin: &str, names: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut acknowledged = BTreeSet::new();
    for name in names {
        let written = tokio::time::timeout(Duration::from_secs(10), create_stream(via, admin, &name)).await;
        if matches!(written, Ok(Ok(_))) {
            acknowledged.insert(name);
        }
    }
    acknowledged
}

/// Whether `node`'s local copy admits it follows no leader.
async fn admits_no_leader(node: &Proc, admin: &str) -> Option<()> {
    let v = node.api(admin).get("/api/v1/streams?consistency=local").await.ok()?;
    v["leader"].is_null().then_some(())
}

/// Fault rounds: `TESSERA_NETNS_ROUNDS` (1 in CI; `scripts/netns.sh ROUNDS` runs more,
/// each round cutting off, slowing and killing another node).
fn rounds() -> usize {
    std::env::var("TESSERA_NETNS_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1)
}

/// Restarts killed node `v` from its folder, joining through another member.
fn restart(nodes: &mut [Proc], v: usize, join: &str) {
    let o = (v + 1) % nodes.len();
    let (low, high) = nodes.split_at_mut(v.max(o));
    if v < o {
        low[v].join(&high[0], join, &[]);
    } else {
        high[0].join(&low[o], join, &[]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_cuts_loss_and_kill_between_hosts() {
    let net = Network::new(3);
    let procs =
        net.hosts.iter().enumerate().map(|(i, h)| Proc::in_namespace(&format!("part{i}"), &h.netns, h.ip)).collect();
    let (mut nodes, join, admin) = form_these(procs, |_| Vec::new()).await;
    let hosts: Vec<_> = net.hosts.iter().collect();
    let mut acknowledged = write_through(&nodes[1], &admin, (0..5).map(|i| format!("before-{i}"))).await;
    assert_eq!(acknowledged.len(), 5, "a healthy cluster takes every write");

    let rounds = rounds();
    for round in 0..rounds {
        let lonely = (2 + round) % 3;
        let other = (lonely + 1) % 3;
        eprintln!("round {} of {rounds}: node {} cut off, then killed", round + 1, lonely + 1);
        // A minority of one cut off both ways: the majority goes on (writes through a
        // follower are forwarded), the minority says it has no leader.
        let rest: Vec<&super::Host> = (0..3).filter(|i| *i != lonely).map(|i| hosts[i]).collect();
        hosts[lonely].cut(&rest);
        acknowledged
            .extend(write_through(&nodes[other], &admin, (0..5).map(|i| format!("r{round}-majority-{i}"))).await);
        eventually(Duration::from_secs(20), "the cut-off node to admit it has no leader", || {
            admits_no_leader(&nodes[lonely], &admin)
        })
        .await;
        assert!(stream_names(&nodes[lonely], &admin, false).await.is_none(), "no linearizable read from a minority");
        hosts[lonely].heal();

        // The leader's packets stop leaving (one way): the others elect another.
        let (leader, ..) = eventually(Duration::from_secs(20), "a leader", || membership(&nodes[other], &admin)).await;
        let l = leader as usize - 1;
        let others: Vec<&super::Host> = (0..3).filter(|i| *i != l).map(|i| hosts[i]).collect();
        hosts[l].cut_outgoing(&others);
        let via = &nodes[(l + 1) % 3];
        eventually(Duration::from_secs(30), "a new leader among the others", || async {
            membership(via, &admin).await.filter(|(new, ..)| *new != leader).map(|_| ())
        })
        .await;
        acknowledged.extend(write_through(via, &admin, (0..5).map(|i| format!("r{round}-one-way-{i}"))).await);
        hosts[l].heal();

        // Random loss of a fifth of every packet between every pair, on links of 2 Mbit/s.
        for (i, h) in hosts.iter().enumerate() {
            let peers: Vec<&super::Host> = hosts.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect();
            h.lose(&peers, 20);
            h.limit(2_000);
        }
        acknowledged.extend(write_through(&nodes[other], &admin, (0..5).map(|i| format!("r{round}-lossy-{i}"))).await);
        hosts.iter().for_each(|h| h.heal());

        // kill -9 and a restart from disk.
        nodes[lonely].kill();
        acknowledged.extend(write_through(&nodes[other], &admin, (0..5).map(|i| format!("r{round}-killed-{i}"))).await);
        restart(&mut nodes, lonely, &join);
    }

    // Every write acknowledged is there, on every node, and nothing else.
    assert!(acknowledged.len() >= 5 + 10 * rounds, "most writes under faults were taken: {acknowledged:?}");
    for node in &nodes {
        let names = eventually(Duration::from_secs(30), "a linearizable read through every node", || {
            stream_names(node, &admin, false)
        })
        .await;
        assert!(acknowledged.is_subset(&names), "acknowledged writes lost: {:?}", acknowledged.difference(&names));
        let local = eventually(Duration::from_secs(30), "every node's copy to converge", || async {
            stream_names(node, &admin, true).await.filter(|l| *l == names)
        })
        .await;
        assert_eq!(local, names);
    }
}
