//! One member of the catalog cluster: the openraft instance, its durable store, and the
//! operations a node needs — propose, read (linearizable or local), change membership,
//! report status.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Command, NodeId, Outcome, Proposal, Rejection};
use crate::network::{Network, Transport};
use crate::store::{self, LogWrites, StateMachineStore};
use crate::TypeConfig;

/// Raft timing. The defaults elect a new leader well under a second after the old one dies.
#[derive(Debug, Clone)]
pub struct RaftTimeouts {
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    /// Entries applied since the last snapshot before a new one is built (and the log
    /// compacted behind it).
    pub snapshot_every: u64,
}

impl Default for RaftTimeouts {
    fn default() -> Self {
        RaftTimeouts {
            heartbeat: Duration::from_millis(50),
            election_min: Duration::from_millis(200),
            election_max: Duration::from_millis(400),
            snapshot_every: 5000,
        }
    }
}

/// Where a member reads the time it stamps proposals with, in milliseconds since the Unix
/// epoch: the system clock in a node, the simulator's own clock under simulation.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// This machine's clock.
    pub fn system() -> Self {
        Clock(Arc::new(tessera_ingest::timestamp::unix_ms))
    }

    /// A clock that reads `now`.
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({} ms)", self.now_ms())
    }
}

/// What a member takes from its surroundings besides its folder and its transport: the time
/// and how its log reaches the disk. A node runs the default; the simulator replaces both.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub clock: Clock,
    pub log_writes: LogWrites,
}

/// What went wrong with a catalog operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Writes and linearizable reads go to the leader: here is who it is, if known.
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<(NodeId, String)>),
    /// The state machine refused the command; nothing changed.
    #[error("{0}")]
    Rejected(Rejection),
    /// The cluster cannot decide now (no quorum, membership change under way).
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
    /// The local node cannot go on (its storage failed, or it is shutting down).
    #[error("fatal: {0}")]
    Fatal(String),
}

impl CatalogError {
    /// Whether the caller may retry (elsewhere or later).
    pub fn is_retryable(&self) -> bool {
        matches!(self, CatalogError::NotLeader(_) | CatalogError::Unavailable(_))
    }
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> CatalogError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            CatalogError::NotLeader(f.leader_id.zip(f.leader_node.map(|n| n.addr)))
        }
        RaftError::APIError(e) => CatalogError::Unavailable(e.to_string()),
        RaftError::Fatal(f) => CatalogError::Fatal(f.to_string()),
    }
}

/// Where a member stands, for `tessera cluster status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberStatus {
    pub id: NodeId,
    pub addr: String,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    /// The leader's view of the member's last replicated log index.
    pub matched: Option<u64>,
    /// Its HTTP address, as its node record says (filled in by the admin API).
    #[serde(default)]
    pub http_addr: Option<String>,
}

/// This node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    pub id: NodeId,
    pub state: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log: Option<u64>,
    pub commit: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot: Option<u64>,
    pub members: Vec<MemberStatus>,
    /// On the leader: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
}

/// A read served from this node's own copy, and how stale it may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRead<T> {
    pub value: T,
    /// The last log index applied here.
    pub applied: Option<u64>,
    /// The leader this node follows, if any: without one, the copy may be arbitrarily old.
    pub leader: Option<NodeId>,
}

/// A running member of the catalog cluster.
#[derive(Clone)]
pub struct CatalogNode {
    pub id: NodeId,
    pub raft: Raft<TypeConfig>,
    state: StateMachineStore,
    clock: Clock,
}

impl CatalogNode {
    /// Opens the store in `dir` and starts Raft; the node rejoins with what it has on disk.
    pub async fn start<T: Transport>(
        id: NodeId,
        dir: &Path,
        transport: T,
        timeouts: &RaftTimeouts,
    ) -> Result<Self, CatalogError> {
        Self::start_in(id, dir, transport, timeouts, Environment::default()).await
    }

    /// [`Self::start`], with the clock and log writes of `env`.
    pub async fn start_in<T: Transport>(
        id: NodeId,
        dir: &Path,
        transport: T,
        timeouts: &RaftTimeouts,
        env: Environment,
    ) -> Result<Self, CatalogError> {
        let config = openraft::Config {
            cluster_name: "tessera".into(),
            heartbeat_interval: timeouts.heartbeat.as_millis() as u64,
            election_timeout_min: timeouts.election_min.as_millis() as u64,
            election_timeout_max: timeouts.election_max.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timeouts.snapshot_every),
            max_in_snapshot_log_to_keep: 100,
            ..Default::default()
        }
        .validate()
        .map_err(|e| CatalogError::Fatal(format!("Raft configuration: {e}")))?;
        let (log, sm) =
            store::open(dir, env.log_writes).map_err(|e| CatalogError::Fatal(format!("catalog store: {e}")))?;
        let raft = Raft::new(id, Arc::new(config), Network::new(Arc::new(transport)), log, sm.clone())
            .await
            .map_err(|e| CatalogError::Fatal(e.to_string()))?;
        Ok(CatalogNode { id, raft, state: sm, clock: env.clock })
    }

    /// Makes this node a one-node cluster, if it is not part of one yet.
    pub async fn initialize(&self, addr: &str) -> Result<(), CatalogError> {
        let members = BTreeMap::from([(self.id, BasicNode::new(addr))]);
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(_)) => Ok(()), // already initialized
            Err(RaftError::Fatal(f)) => Err(CatalogError::Fatal(f.to_string())),
        }
    }

    /// Proposes a command; answers once it is committed and applied here.
    pub async fn propose(&self, command: Command) -> Result<Outcome, CatalogError> {
        let p = Proposal { at_ms: self.clock.now_ms(), command };
        let started = std::time::Instant::now();
        let r = self.raft.client_write(p).await.map_err(write_error)?;
        tracing::trace!(index = r.log_id.index, elapsed_us = started.elapsed().as_micros() as u64, "committed");
        match r.data {
            Outcome::Rejected(why) => Err(CatalogError::Rejected(why)),
            o => Ok(o),
        }
    }

    /// A linearizable read: confirmed with a quorum (ReadIndex) and served once this node has
    /// applied up to that point.
    pub async fn read<T>(&self, f: impl FnOnce(&Catalog) -> T) -> Result<T, CatalogError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(self.state.read(|s| f(&s.catalog))),
            Err(RaftError::APIError(e)) => {
                let openraft::error::CheckIsLeaderError::ForwardToLeader(fw) = &e else {
                    return Err(CatalogError::Unavailable(e.to_string()));
                };
                Err(CatalogError::NotLeader(fw.leader_id.zip(fw.leader_node.clone().map(|n| n.addr))))
            }
            Err(RaftError::Fatal(f)) => Err(CatalogError::Fatal(f.to_string())),
        }
    }

    /// On the leader: confirms leadership with a quorum and returns the log index a read must
    /// see (the ReadIndex). A follower asks the leader for it, then reads with [`Self::read_at`].
    pub async fn read_index(&self) -> Result<u64, CatalogError> {
        match self.raft.get_read_log_id().await {
            Ok((read, applied)) => Ok(read.max(applied).map(|l| l.index).unwrap_or(0)),
            Err(RaftError::APIError(e)) => {
                let openraft::error::CheckIsLeaderError::ForwardToLeader(fw) = &e else {
                    return Err(CatalogError::Unavailable(e.to_string()));
                };
                Err(CatalogError::NotLeader(fw.leader_id.zip(fw.leader_node.clone().map(|n| n.addr))))
            }
            Err(RaftError::Fatal(f)) => Err(CatalogError::Fatal(f.to_string())),
        }
    }

    /// Reads this node's copy once it has applied `index` (from the leader's
    /// [`Self::read_index`]): linearizable, served by a follower.
    pub async fn read_at<T>(
        &self,
        index: u64,
        within: Duration,
        f: impl FnOnce(&Catalog) -> T,
    ) -> Result<T, CatalogError> {
        if index > 0 {
            self.raft.wait(Some(within)).applied_index_at_least(Some(index), "read_at").await.map_err(|e| {
                CatalogError::Unavailable(format!("this node has not caught up to the read index {index}: {e}"))
            })?;
        }
        Ok(self.state.read(|s| f(&s.catalog)))
    }

    /// A read of this node's own copy, without asking how far it has got: for checks on
    /// every request (what a node serves follows what it has applied).
    pub fn peek<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        self.state.read(|s| f(&s.catalog))
    }

    /// Resolves once this member's Raft core has stopped on a fatal error (its log or
    /// state machine could not be written: a full or failing disk), with the error. Such a
    /// member takes no further part until its process restarts and reopens its store.
    pub async fn failed(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return "the catalog member stopped".into();
            }
        }
    }

    /// The time as this member reads it (what it stamps its proposals with), ms since the
    /// Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A read of this node's own copy, with how far it has got.
    pub fn read_local<T>(&self, f: impl FnOnce(&Catalog) -> T) -> LocalRead<T> {
        let m = self.raft.metrics().borrow().clone();
        LocalRead {
            value: self.state.read(|s| f(&s.catalog)),
            applied: m.last_applied.map(|l| l.index),
            leader: m.current_leader,
        }
    }

    /// Adds a node as a learner and waits until it has caught up.
    pub async fn add_learner(&self, id: NodeId, addr: &str) -> Result<(), CatalogError> {
        self.raft.add_learner(id, BasicNode::new(addr), true).await.map(|_| ()).map_err(write_error)
    }

    /// Makes `voters` the voting members (joint consensus); others stay learners if `retain`.
    pub async fn change_voters(&self, voters: BTreeSet<NodeId>, retain: bool) -> Result<(), CatalogError> {
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), retain)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// Makes learners voters (joint consensus), whatever else the membership holds now.
    pub async fn promote(&self, ids: BTreeSet<NodeId>) -> Result<(), CatalogError> {
        self.raft.change_membership(ChangeMembers::AddVoterIds(ids), true).await.map(|_| ()).map_err(write_error)
    }

    /// Removes nodes from the cluster altogether (voters first leave the voter set). Each
    /// step names only the nodes it changes, so concurrent joins and leaves compose.
    pub async fn remove_nodes(&self, ids: BTreeSet<NodeId>) -> Result<(), CatalogError> {
        let voters: BTreeSet<NodeId> = self.raft.metrics().borrow().membership_config.voter_ids().collect();
        let leaving: BTreeSet<NodeId> = voters.intersection(&ids).copied().collect();
        if !leaving.is_empty() {
            self.raft.change_membership(ChangeMembers::RemoveVoters(leaving), true).await.map_err(write_error)?;
        }
        self.raft.change_membership(ChangeMembers::RemoveNodes(ids), false).await.map(|_| ()).map_err(write_error)
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> ClusterStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched: BTreeMap<NodeId, Option<u64>> = m
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
            .unwrap_or_default();
        let members = membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                id: *id,
                addr: node.addr.clone(),
                role: if Some(*id) == m.current_leader {
                    "leader".into()
                } else if voters.contains(id) {
                    "follower".into()
                } else {
                    "learner".into()
                },
                matched: matched.get(id).copied().flatten(),
                http_addr: None,
            })
            .collect();
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ClusterStatus {
            id: self.id,
            state: state.into(),
            leader: m.current_leader,
            term: m.current_term,
            last_log: m.last_log_index,
            commit: m.last_applied.map(|l| l.index),
            applied: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(|l| l.index),
            members,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }

    /// Stops Raft; the store stays on disk for a restart.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}
