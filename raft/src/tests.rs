//! In-memory clusters on real disk stores: election, replication, leader loss, restart
//! from disk, snapshot install, partitions, membership changes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::{Command, NodeRecord, Outcome};
use crate::memory::MemoryNetwork;
use crate::{CatalogError, CatalogNode, NodeId, RaftTimeouts};

fn timeouts() -> RaftTimeouts {
    RaftTimeouts {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(150),
        election_max: Duration::from_millis(300),
        snapshot_every: 5000,
    }
}

/// A scratch folder removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tessera-raft-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Scratch(p)
    }
    fn node(&self, id: NodeId) -> PathBuf {
        self.0.join(format!("node-{id}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn addr(id: NodeId) -> String {
    format!("node-{id}")
}

/// Starts node `id` on its folder. A node of the same folder shut down just before may still
/// hold the store's file lock for a moment: its log writer thread ends once it has finished
/// its last batch, after the Raft tasks that feed it.
async fn start(net: &Arc<MemoryNetwork>, dir: &Scratch, id: NodeId, t: &RaftTimeouts) -> CatalogNode {
    let mut tries = 0;
    let n = loop {
        match CatalogNode::start(id, &dir.node(id), net.transport(id), t).await {
            Ok(n) => break n,
            Err(e) if e.to_string().contains("already open") && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("node {id} starts: {e}"),
        }
    };
    net.register(id, n.raft.clone());
    n
}

/// A cluster of `n` voters, node 1 first leader.
async fn cluster(net: &Arc<MemoryNetwork>, dir: &Scratch, n: u64, t: &RaftTimeouts) -> Vec<CatalogNode> {
    let mut nodes = Vec::new();
    for id in 1..=n {
        nodes.push(start(net, dir, id, t).await);
    }
    nodes[0].initialize(&addr(1)).await.unwrap();
    wait_leader(&nodes[..1], None).await;
    for id in 2..=n {
        nodes[0].add_learner(id, &addr(id)).await.unwrap();
    }
    nodes[0].change_voters((1..=n).collect(), false).await.unwrap();
    nodes
}

/// Waits until one of `nodes` (other than `not`) is leader and all agree; returns its index.
async fn wait_leader(nodes: &[CatalogNode], not: Option<NodeId>) -> usize {
    for _ in 0..200 {
        let leaders: Vec<Option<NodeId>> = nodes.iter().map(|n| n.status().leader).collect();
        if let Some(Some(l)) = leaders.first() {
            if Some(*l) != not && leaders.iter().all(|x| *x == Some(*l)) {
                if let Some(i) = nodes.iter().position(|n| n.id == *l) {
                    return i;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no leader agreed: {:?}", nodes.iter().map(|n| n.status()).collect::<Vec<_>>());
}

fn put(name: &str) -> Command {
    Command::PutStream { name: name.into(), ladder: None, token_sha256: None, create_only: true }
}

/// Waits until every node has applied the same catalog with `streams` streams.
async fn converged(nodes: &[CatalogNode], streams: usize) {
    for _ in 0..200 {
        let views: Vec<_> = nodes.iter().map(|n| n.read_local(|c| c.clone()).value).collect();
        if views.iter().all(|v| v.streams.len() == streams && *v == views[0]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nodes did not converge on {streams} streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_survive_the_loss_of_their_leader() {
    let (net, dir, t) = (MemoryNetwork::new(1), Scratch::new("leader-loss"), timeouts());
    let nodes = cluster(&net, &dir, 3, &t).await;
    let l = wait_leader(&nodes, None).await;
    for i in 0..10 {
        assert!(matches!(nodes[l].propose(put(&format!("s{i}"))).await, Ok(Outcome::Stream(_))));
    }
    converged(&nodes, 10).await;
    // A follower sends writers and linearizable readers to the leader.
    let f = (l + 1) % 3;
    assert_eq!(nodes[f].propose(put("x")).await, Err(CatalogError::NotLeader(Some((nodes[l].id, addr(nodes[l].id))))));
    assert!(matches!(nodes[f].read(|c| c.streams.len()).await, Err(CatalogError::NotLeader(Some(_)))));
    assert_eq!(nodes[l].read(|c| c.streams.len()).await, Ok(10));
    // A rejected command is rejected, not half-applied, and reported as such.
    assert!(matches!(nodes[l].propose(put("s1")).await, Err(CatalogError::Rejected(_))));

    // The leader dies: the others elect one of themselves and go on.
    let dead = nodes[l].id;
    net.unregister(dead);
    nodes[l].shutdown().await;
    let rest: Vec<CatalogNode> = nodes.iter().filter(|n| n.id != dead).cloned().collect();
    let l2 = wait_leader(&rest, Some(dead)).await;
    assert!(rest[l2].propose(put("after")).await.is_ok());
    assert_eq!(rest[l2].read(|c| c.streams.contains_key("s9") && c.streams.contains_key("after")).await, Ok(true));
    converged(&rest, 11).await;
    for n in &rest {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restarts_from_disk() {
    let (net, dir, t) = (MemoryNetwork::new(2), Scratch::new("restart"), timeouts());
    let nodes = cluster(&net, &dir, 3, &t).await;
    let l = wait_leader(&nodes, None).await;
    nodes[l]
        .propose(Command::PutNode {
            node: NodeRecord { id: 1, cluster_addr: addr(1), http_addr: "h1".into(), joined_ms: 0, region: None },
        })
        .await
        .unwrap();
    for i in 0..5 {
        nodes[l].propose(put(&format!("s{i}"))).await.unwrap();
    }
    nodes[l].propose(Command::AcquireOrigin { stream: "s3".into(), node: 1 }).await.unwrap();
    converged(&nodes, 5).await;
    for n in &nodes {
        net.unregister(n.id);
        n.shutdown().await;
    }
    drop(nodes);
    let net = MemoryNetwork::new(3);
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&net, &dir, id, &t).await);
    }
    let l = wait_leader(&nodes, None).await;
    let origin = nodes[l].read(|c| c.streams["s3"].origin).await.unwrap();
    assert_eq!(origin.map(|o| (o.node, o.epoch)), Some((1, 1)), "the catalog came back from disk");
    // The restarted cluster may still be settling its leader: ask whoever leads now.
    let mut written = false;
    for _ in 0..50 {
        let l = wait_leader(&nodes, None).await;
        if nodes[l].propose(put("again")).await.is_ok() {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(written);
    converged(&nodes, 6).await;
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_catches_up_from_a_snapshot_and_the_cluster_grows_and_shrinks() {
    let (net, dir) = (MemoryNetwork::new(4), Scratch::new("grow"));
    let t = RaftTimeouts { snapshot_every: 20, ..timeouts() };
    let mut nodes = cluster(&net, &dir, 3, &t).await;
    let l = wait_leader(&nodes, None).await;
    for i in 0..120 {
        nodes[l].propose(put(&format!("s{i}"))).await.unwrap();
    }
    converged(&nodes, 120).await;
    // The log has been compacted behind a snapshot: a newcomer cannot replay it from index 1.
    let st = nodes[l].status();
    assert!(st.snapshot.is_some_and(|s| s >= 100), "a snapshot was built: {st:?}");
    for id in 4..=5 {
        nodes.push(start(&net, &dir, id, &t).await);
        nodes[l].add_learner(id, &addr(id)).await.unwrap();
    }
    converged(&nodes, 120).await;
    assert!(nodes[3].status().snapshot.is_some(), "node 4 installed a snapshot");
    // Five voters, then back to three (the old leader leaves), writes served throughout.
    nodes[l].change_voters((1..=5).collect(), false).await.unwrap();
    nodes[l].propose(put("five")).await.unwrap();
    let leaving = nodes[l].id;
    let keep: BTreeSet<NodeId> = (1..=5).filter(|id| *id != leaving && *id != 5).collect();
    nodes[l].remove_nodes([leaving, 5].into()).await.unwrap();
    let rest: Vec<CatalogNode> = nodes.iter().filter(|n| keep.contains(&n.id)).cloned().collect();
    let l2 = wait_leader(&rest, None).await;
    rest[l2].propose(put("three")).await.unwrap();
    converged(&rest, 122).await;
    let members: BTreeSet<NodeId> = rest[l2].status().members.iter().map(|m| m.id).collect();
    assert_eq!(members, keep);
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_cannot_commit_and_rejoins_as_a_follower() {
    let (net, dir, t) = (MemoryNetwork::new(5), Scratch::new("partition"), timeouts());
    let nodes = cluster(&net, &dir, 3, &t).await;
    let l = wait_leader(&nodes, None).await;
    nodes[l].propose(put("before")).await.unwrap();
    let old = nodes[l].id;
    let others: Vec<NodeId> = nodes.iter().map(|n| n.id).filter(|id| *id != old).collect();
    net.partition(&[old], &others);
    // The isolated leader cannot get a quorum: its write never commits.
    let stuck = tokio::time::timeout(Duration::from_secs(2), nodes[l].propose(put("lost"))).await;
    assert!(!matches!(stuck, Ok(Ok(_))), "a minority never commits");
    let majority: Vec<CatalogNode> = nodes.iter().filter(|n| n.id != old).cloned().collect();
    let l2 = wait_leader(&majority, Some(old)).await;
    majority[l2].propose(put("during")).await.unwrap();
    net.heal();
    let l3 = wait_leader(&nodes, None).await;
    assert_ne!(nodes[l3].id, old, "the old leader came back as a follower");
    converged(&nodes, 2).await;
    let names: Vec<String> = nodes[l3].read(|c| c.streams.keys().cloned().collect()).await.unwrap();
    assert_eq!(names, ["before", "during"], "the minority's write is gone, the majority's kept");
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_slower_than_its_heartbeat_still_commits_and_confirms_reads() {
    let (net, dir, t) = (MemoryNetwork::new(5), Scratch::new("slow"), timeouts());
    let nodes = cluster(&net, &dir, 3, &t).await;
    let l = wait_leader(&nodes, None).await;
    // Every exchange now takes longer than a heartbeat (two hops of 40 ms against 50 ms), as
    // it does between nodes whose cores are starved, but less than an election timeout.
    net.degrade(Duration::from_millis(40), 0.0);
    for i in 0..5 {
        let written = tokio::time::timeout(Duration::from_secs(5), nodes[l].propose(put(&format!("slow{i}")))).await;
        assert!(matches!(written, Ok(Ok(Outcome::Stream(_)))), "write {i} through a slow network: {written:?}");
    }
    let read = tokio::time::timeout(Duration::from_secs(5), nodes[l].read(|c| c.streams.len())).await;
    assert_eq!(read.ok(), Some(Ok(5)), "the leader confirms a read with a slow quorum");
    assert_eq!(wait_leader(&nodes, None).await, l, "slowness alone elects no one");
    net.heal();
    converged(&nodes, 5).await;
    for n in &nodes {
        n.shutdown().await;
    }
}
