//! Starting a node's member as its configuration says: from its data folder, by joining,
//! or as a new one-node cluster.

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
    /// A folder written by `tessera cluster bootstrap`: a new cluster (an empty folder
    /// and no `join`) takes its CA and tokens.
    pub init_from: Option<PathBuf>,
    /// How long to keep trying a member that cannot be reached yet (nodes started together
    /// by an orchestrator come up in any order); a refusal is final at once.
    pub join_wait: Duration,
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
        return join_when_reachable(config, member, &token, &timeouts).await;
    }
    let bootstrap = match &config.init_from {
        Some(dir) => super::Bootstrap::read(dir)?,
        None => super::Bootstrap::create()?,
    };
    let (service, join, admin) = ClusterService::init_with(data, &config.addrs, &timeouts, bootstrap).await?;
    let path = identity_dir(data).join("init-tokens");
    write_private(&path, &format!("join-token: {join}\nadmin-token: {admin}\n"))
        .map_err(|source| ClusterError::Io { path: path.clone(), source })?;
    tracing::info!(tokens = %path.display(), "new one-node cluster; its join and admin tokens are in this file");
    Ok(service)
}

/// Joins through `member`, trying again for up to `join_wait` while its name does not
/// resolve or it does not answer: nothing of the cluster is changed until it does.
async fn join_when_reachable(
    config: &MemberConfig,
    member: &str,
    token: &JoinToken,
    timeouts: &RaftTimeouts,
) -> Result<ClusterService, ClusterError> {
    let deadline = tokio::time::Instant::now() + config.join_wait;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let tried = match tokio::net::lookup_host(member).await.ok().and_then(|mut a| a.next()) {
            Some(addr) => {
                ClusterService::join(&config.data_dir, &config.addrs, addr, token, config.learner, timeouts).await
            }
            None => Err(ClusterError::Resolve(member.to_string())),
        };
        let unreachable =
            matches!(&tried, Err(ClusterError::Resolve(_) | ClusterError::JoinRefused(super::JoinFailure::Call(_))));
        let pause = Duration::from_millis(500 * u64::from(attempt.min(10)));
        match tried {
            Err(e) if unreachable && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(member, attempt, error = %e, "cannot reach the member to join through yet; trying again");
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
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
