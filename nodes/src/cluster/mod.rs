//! The node's membership of the catalog cluster: its identity (certificates and tokens),
//! the QUIC transport between members, and the service that starts, initialises or joins a
//! cluster and submits writes from any member.

pub mod identity;
pub mod quic;
pub mod service;

pub use service::{ClusterAddrs, ClusterError, ClusterService};

use std::net::SocketAddr;
use std::time::Duration;

use tessera_raft::RaftTimeouts;

use crate::NodeConfig;

/// Starts this node's catalog member as its configuration says: from its data folder, by
/// joining (`--join`), or, on an empty folder, as a new one-node cluster whose tokens are
/// written to `DATA_DIR/cluster/init-tokens` (readable by the owner only).
pub async fn start_member(config: &NodeConfig, http: SocketAddr) -> Result<ClusterService, ClusterError> {
    let addrs =
        ClusterAddrs { bind: config.cluster, advertise: config.cluster_advertise.clone(), http: http.to_string() };
    let election = Duration::from_millis(config.raft_election_ms.max(3 * config.raft_heartbeat_ms).max(10));
    let timeouts = RaftTimeouts {
        heartbeat: Duration::from_millis(config.raft_heartbeat_ms.max(1)),
        election_min: election,
        election_max: election * 2,
        snapshot_every: config.catalog_snapshot_every.max(1),
    };
    let data = &config.data_dir;
    if identity::NodeIdentity::load(&service::identity_dir(data))?.is_some() {
        if config.join.is_some() {
            tracing::warn!(data_dir = %data.display(), "--join ignored: this folder already belongs to a cluster");
        }
        return ClusterService::start(data, &addrs, &timeouts).await;
    }
    if let Some(member) = &config.join {
        let token = identity::JoinToken::parse(config.token.as_deref().unwrap_or_default())?;
        let member: SocketAddr = tokio::net::lookup_host(member)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ClusterError::JoinRefused(format!("cannot resolve {member}")))?;
        return ClusterService::join(data, &addrs, member, &token, config.learner, &timeouts).await;
    }
    let (service, join, admin) = ClusterService::init(data, &addrs, &timeouts).await?;
    let path = service::identity_dir(data).join("init-tokens");
    write_private(&path, &format!("join-token: {join}\nadmin-token: {admin}\n"))
        .map_err(|e| ClusterError::Remote(format!("{}: {e}", path.display())))?;
    tracing::info!(tokens = %path.display(), "new one-node cluster; its join and admin tokens are in this file");
    Ok(service)
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
