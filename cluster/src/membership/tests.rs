//! A catalog cluster over real QUIC with mutual TLS on loopback, on real disk: init, join
//! with a token, forwarded writes, refused strangers, leader loss, restart from the data
//! folder.

use std::path::PathBuf;
use std::time::Duration;

use tessera_raft::network::RaftRpc;
use tessera_raft::{Command, RaftTimeouts};

use super::protocols::Raft;
use super::*;
use crate::identity::{ClusterCa, JoinToken};
use crate::transport::{Failure, QuicTransport};

fn timeouts() -> RaftTimeouts {
    RaftTimeouts {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(200),
        election_max: Duration::from_millis(400),
        snapshot_every: 5000,
    }
}

fn addrs() -> ClusterAddrs {
    ClusterAddrs {
        bind: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        http: "127.0.0.1:8080".into(),
        host: Default::default(),
    }
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tessera-cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Scratch(p)
    }
    fn node(&self, n: u64) -> PathBuf {
        self.0.join(format!("n{n}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn put(name: &str) -> Command {
    Command::PutStream { name: name.into(), ladder: None, token_sha256: None, create_only: true }
}

async fn converged(nodes: &[&ClusterService], streams: usize) {
    for _ in 0..200 {
        let views: Vec<_> = nodes.iter().map(|n| n.catalog.read_local(|c| c.streams.len()).value).collect();
        if views.iter().all(|v| *v == streams) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("did not converge on {streams} streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_forms_over_quic_with_tokens_and_survives_its_leader() {
    let dir = Scratch::new("form");
    let t = timeouts();
    let (a, join, admin) = ClusterService::init(&dir.node(1), &addrs(), &t).await.unwrap();
    assert_eq!(admin.len(), 64);
    let member: std::net::SocketAddr = a.advertise.parse().unwrap();
    assert!(
        matches!(ClusterService::init(&dir.node(1), &addrs(), &t).await, Err(ClusterError::AlreadyMember(_, 1))),
        "a folder initialises once"
    );

    // Strangers are refused: a wrong secret, and a token naming another CA.
    let wrong_secret = JoinToken { secret: "00".repeat(32), ca_sha256: join.ca_sha256.clone() };
    let r = ClusterService::join(&dir.node(9), &addrs(), member, &wrong_secret, false, &t).await;
    assert!(matches!(r, Err(ClusterError::JoinRefused(_))), "{:?}", r.err());
    let wrong_ca = JoinToken { secret: join.secret.clone(), ca_sha256: ClusterCa::create().unwrap().fingerprint() };
    let r = ClusterService::join(&dir.node(9), &addrs(), member, &wrong_ca, false, &t).await;
    assert!(matches!(r, Err(ClusterError::JoinRefused(_))), "the joiner refuses a node of another cluster");

    let b = ClusterService::join(&dir.node(2), &addrs(), member, &join, false, &t).await.unwrap();
    let c = ClusterService::join(&dir.node(3), &addrs(), member, &join, false, &t).await.unwrap();
    assert_eq!((b.identity.id, c.identity.id), (2, 3));
    let voters: Vec<u64> = a.catalog.raft.metrics().borrow().membership_config.voter_ids().collect();
    assert_eq!(voters, [1, 2, 3]);

    // Writes from any member reach the leader.
    c.propose(put("from-c")).await.unwrap();
    b.propose(put("from-b")).await.unwrap();
    converged(&[&a, &b, &c], 2).await;

    // A node with a certificate from another CA cannot speak Raft to the cluster.
    let stranger = ClusterCa::create().unwrap().issue(1).unwrap();
    let t2 = QuicTransport::bind("127.0.0.1:0".parse().unwrap(), &stranger).unwrap();
    let vote = openraft::raft::VoteRequest { vote: openraft::Vote::new(99, 1), last_log_id: None };
    let r = t2.call::<Raft>(Some(1), &a.advertise, &RaftRpc::Vote(vote)).await;
    assert!(matches!(r, Err(CallError { failure: Failure::Unreachable(_), .. })), "{r:?}");
    t2.close();

    // The leader goes away; the others go on.
    let leader = a.catalog.status().leader.unwrap();
    let mut all = vec![a, b, c];
    let gone = all.remove(all.iter().position(|n| n.identity.id == leader).unwrap());
    let gone_addr = gone.advertise.clone();
    gone.shutdown().await;
    drop(gone);
    let mut done = false;
    for _ in 0..50 {
        if all[0].propose(put("after")).await.is_ok() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "writes resume after the leader is lost");
    converged(&[&all[0], &all[1]], 3).await;

    // The lost node comes back from its folder, on its address, and catches up.
    let bind = gone_addr.parse().unwrap();
    let mut back = None;
    for _ in 0..50 {
        // Its old socket is released once the last task holding it has ended.
        match ClusterService::start(
            &dir.node(leader),
            &ClusterAddrs { bind, advertise: None, http: "x".into(), host: Default::default() },
            &t,
        )
        .await
        {
            Ok(s) => {
                back = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let back = back.expect("restarts from its folder");
    converged(&[&back, &all[0], &all[1]], 3).await;
    for n in [&back, &all[0], &all[1]] {
        n.shutdown().await;
    }
}
