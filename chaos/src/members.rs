//! Whole cluster members under the simulator: each a `ClusterService` (the code a node runs
//! to initialise, join, forward and read) on a [`Host::Simulated`] whose datagrams cross a
//! [`UdpNet`], whose clock is virtual and whose log is written inline. Member `i` binds
//! `10.0.0.i:7000`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tessera_cluster::host::{Host, SimulatedHost};
use tessera_cluster::{ClusterAddrs, ClusterService};
use tessera_raft::store::LogWrites;
use tessera_raft::{Clock, Environment, RaftTimeouts};

use crate::udp::UdpNet;

/// Member `id`'s cluster address.
pub fn addr(id: usize) -> SocketAddr {
    format!("10.0.0.{id}:7000").parse().expect("address")
}

/// Election timeouts short enough for a scenario of seconds.
pub fn timeouts() -> RaftTimeouts {
    RaftTimeouts {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(150),
        election_max: Duration::from_millis(300),
        snapshot_every: 20,
    }
}

/// Starts `count` voting members in `dir` (member 1 initialises the cluster, the others
/// join it with its token), on `net`, seeded with `seed`. Call under [`crate::sim::run`].
pub async fn start(count: usize, seed: u64, dir: &Path, net: &UdpNet) -> Vec<ClusterService> {
    let host = Host::Simulated(SimulatedHost {
        network: Arc::new(net.clone()),
        seed,
        environment: Environment { clock: Clock::from_fn(crate::sim::now_ms), log_writes: LogWrites::Inline },
    });
    let addrs = |id: usize| ClusterAddrs {
        bind: addr(id),
        advertise: None,
        http: format!("10.0.0.{id}:80"),
        host: host.clone(),
    };
    let (first, token, _admin) =
        ClusterService::init(&dir.join("1"), &addrs(1), &timeouts()).await.expect("member 1 initialises");
    let mut members = vec![first];
    for id in 2..=count {
        let joined = ClusterService::join(&dir.join(id.to_string()), &addrs(id), addr(1), &token, false, &timeouts())
            .await
            .unwrap_or_else(|e| panic!("member {id} joins, seed {seed}: {e}"));
        members.push(joined);
    }
    members
}
