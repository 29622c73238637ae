//! The protocols of the catalog's own members: Raft between them, writes and membership
//! changes forwarded to the leader, read indexes for linearizable reads from followers, and
//! joins.

use serde::{Deserialize, Serialize};
use tessera_raft::network::{RaftReply, RaftRpc, Transport, TransportError};
use tessera_raft::{Command, NodeId, Outcome, Rejection};

use crate::identity::NodeIdentity;
use crate::protocol::{Access, Protocol};
use crate::transport::{CallError, Failure, QuicTransport};

/// A Raft message to one member.
pub struct Raft;

impl Protocol for Raft {
    const NAME: &'static str = "catalog.raft";
    const ACCESS: Access = Access::Node;
    type Request = RaftRpc;
    type Response = RaftReply;
}

/// A write or membership change sent to the leader by another node.
pub struct Forward;

impl Protocol for Forward {
    const NAME: &'static str = "catalog.forward";
    const ACCESS: Access = Access::Node;
    type Request = Forwarded;
    type Response = Result<Outcome, RemoteFailure>;
}

/// Asks the leader for the index a linearizable read must see.
pub struct ReadIndex;

impl Protocol for ReadIndex {
    const NAME: &'static str = "catalog.read-index";
    const ACCESS: Access = Access::Node;
    type Request = ();
    type Response = Result<u64, RemoteFailure>;
}

/// A node without a certificate asks to be admitted, by its join token.
pub struct Join;

impl Protocol for Join {
    const NAME: &'static str = "cluster.join";
    const ACCESS: Access = Access::Anyone;
    type Request = JoinRequest;
    type Response = Result<JoinGrant, RemoteFailure>;
}

/// What may be forwarded to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Forwarded {
    Propose(Command),
    AddLearner {
        id: NodeId,
        addr: String,
    },
    /// Makes `id` a voter too.
    Promote {
        id: NodeId,
    },
    Remove {
        ids: Vec<NodeId>,
    },
}

/// What a joining node asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub secret: String,
    pub cluster_addr: String,
    pub http_addr: String,
}

/// What it gets: its id and certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinGrant {
    pub identity: NodeIdentity,
}

/// Why a forwarded operation failed, as the far side put it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteFailure {
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<(NodeId, String)>),
    #[error("rejected: {0}")]
    Rejected(Rejection),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("refused: {0}")]
    Refused(String),
}

impl Transport for QuicTransport {
    async fn call(
        &self,
        target: NodeId,
        node: &openraft::BasicNode,
        rpc: RaftRpc,
    ) -> Result<RaftReply, TransportError> {
        QuicTransport::call::<Raft>(self, Some(target), &node.addr, &rpc).await.map_err(transport_error)
    }
}

fn transport_error(e: CallError) -> TransportError {
    let id = e.node.unwrap_or_default();
    match e.failure {
        _ if e.unreachable() => TransportError::Unreachable(id, e.to_string()),
        Failure::Refused(_) => TransportError::Unreachable(id, e.to_string()),
        _ => TransportError::Broken(id, e.to_string()),
    }
}
