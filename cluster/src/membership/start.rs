//! Starting a node's member as its configuration says: from its data folder, by joining,
//! or as a new one-node cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_raft::RaftTimeouts;

use super::{identity_dir, ClusterAddrs, ClusterError, ClusterService};
use crate::identity::{JoinToken, NodeIdentity};

/// What a node's member starts from.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub data_dir: PathBuf,
    pub addrs: ClusterAddrs,
    /// A member to join through (`host:port`), for a folder that belongs to no cluster yet.
    pub join: Option<String>,
    /// The join token (`SECRET.CA_SHA256`).
    pub token: Option<String>,
    /// Join as a learner (replicates the catalog, never votes).
    pub learner: bool,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub snapshot_every: u64,
}

impl MemberConfig {
    fn timeouts(&self) -> RaftTimeouts {
        let election = Duration::from_millis(self.election_ms.max(3 * self.heartbeat_ms).max(10));
        RaftTimeouts {
            heartbeat: Duration::from_millis(self.heartbeat_ms.max(1)),
            election_min: election,
            election_max: election * 2,
            snapshot_every: self.snapshot_every.max(1),
        }
    }
}

/// Starts this node's member: from its data folder, by joining (`join`), or, on an empty
/// folder, as a new one-node cluster whose tokens are written to
/// `DATA_DIR/cluster/init-tokens` (readable by the owner only).
pub async fn start_member(config: &MemberConfig) -> Result<ClusterService, ClusterError> {
    let timeouts = config.timeouts();
    let data = &config.data_dir;
    if NodeIdentity::load(&identity_dir(data))?.is_some() {
        if config.join.is_some() {
            tracing::warn!(data_dir = %data.display(), "--join ignored: this folder already belongs to a cluster");
        }
        return ClusterService::start(data, &config.addrs, &timeouts).await;
    }
    if let Some(member) = &config.join {
        let token = JoinToken::parse(config.token.as_deref().unwrap_or_default())?;
        let member: SocketAddr = tokio::net::lookup_host(member)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ClusterError::Resolve(member.clone()))?;
        return ClusterService::join(data, &config.addrs, member, &token, config.learner, &timeouts).await;
    }
    let (service, join, admin) = ClusterService::init(data, &config.addrs, &timeouts).await?;
    let path = identity_dir(data).join("init-tokens");
    write_private(&path, &format!("join-token: {join}\nadmin-token: {admin}\n"))
        .map_err(|source| ClusterError::Io { path: path.clone(), source })?;
    tracing::info!(tokens = %path.display(), "new one-node cluster; its join and admin tokens are in this file");
    Ok(service)
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
