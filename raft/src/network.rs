//! Raft messages between nodes, behind a [`Transport`] so that the same node runs over QUIC
//! in production and over an in-memory router (with partitions) in tests.
//!
//! A transport carries one [`RaftRpc`] to a node and brings back its [`RaftReply`]; both are
//! serde types, so any byte transport will do. [`dispatch`] is the receiving side.

use std::future::Future;
use std::sync::Arc;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::{Deserialize, Serialize};

use crate::catalog::NodeId;
use crate::TypeConfig;

/// A Raft message to one node.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRpc {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The node's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftReply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

/// Why a message did not get an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The node could not be reached (down, partitioned, refused us).
    #[error("node {0} unreachable: {1}")]
    Unreachable(NodeId, String),
    /// The exchange broke half way (the node may have acted on it).
    #[error("node {0}: {1}")]
    Broken(NodeId, String),
    #[error("node {0} answered with the wrong kind of reply")]
    WrongReply(NodeId),
}

/// Carries Raft messages from this node to the others.
pub trait Transport: Send + Sync + 'static {
    fn call(
        &self,
        target: NodeId,
        node: &BasicNode,
        rpc: RaftRpc,
    ) -> impl Future<Output = Result<RaftReply, TransportError>> + Send;
}

/// Hands a received message to the local Raft and returns its answer.
pub async fn dispatch(raft: &Raft<TypeConfig>, rpc: RaftRpc) -> RaftReply {
    match rpc {
        RaftRpc::Append(r) => RaftReply::Append(raft.append_entries(r).await),
        RaftRpc::Vote(r) => RaftReply::Vote(raft.vote(r).await),
        RaftRpc::Snapshot(r) => RaftReply::Snapshot(raft.install_snapshot(r).await),
    }
}

/// openraft's view of a [`Transport`].
pub struct Network<T: Transport> {
    transport: Arc<T>,
}

impl<T: Transport> Network<T> {
    pub fn new(transport: Arc<T>) -> Self {
        Network { transport }
    }
}

pub struct Connection<T: Transport> {
    transport: Arc<T>,
    target: NodeId,
    node: BasicNode,
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for Network<T> {
    type Network = Connection<T>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        Connection { transport: self.transport.clone(), target, node: node.clone() }
    }
}

fn transport_error<E: std::error::Error>(e: TransportError) -> RPCError<NodeId, BasicNode, E> {
    match e {
        TransportError::Unreachable(..) => RPCError::Unreachable(Unreachable::new(&e)),
        _ => RPCError::Network(NetworkError::new(&e)),
    }
}

impl<T: Transport> Connection<T> {
    async fn call(&self, rpc: RaftRpc) -> Result<RaftReply, TransportError> {
        self.transport.call(self.target, &self.node, rpc).await
    }
}

impl<T: Transport> RaftNetwork<TypeConfig> for Connection<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let (entries, started) = (rpc.entries.len(), std::time::Instant::now());
        let reply = self.call(RaftRpc::Append(rpc)).await.map_err(transport_error)?;
        tracing::trace!(
            target = self.target,
            entries,
            elapsed_us = started.elapsed().as_micros() as u64,
            "append_entries"
        );
        match reply {
            RaftReply::Append(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(transport_error(TransportError::WrongReply(self.target))),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        match self.call(RaftRpc::Snapshot(rpc)).await.map_err(transport_error)? {
            RaftReply::Snapshot(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(transport_error(TransportError::WrongReply(self.target))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(RaftRpc::Vote(rpc)).await.map_err(transport_error)? {
            RaftReply::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(transport_error(TransportError::WrongReply(self.target))),
        }
    }
}
