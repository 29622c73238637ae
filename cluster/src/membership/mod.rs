//! A node's place in the catalog cluster: it starts (from its data folder), initialises a
//! new cluster, or joins one with a token; it proposes writes and reads linearizably from
//! any member ([`forward`]); it admits joiners.

pub mod bootstrap;
mod forward;
pub mod protocols;
mod start;

pub use bootstrap::{Bootstrap, BootstrapError};
pub use protocols::{Forwarded, JoinGrant, JoinRequest, RemoteFailure};
pub use start::{start_member, write_private, MemberConfig};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tessera_raft::network::dispatch;
use tessera_raft::{
    CaRecord, CatalogError, CatalogNode, Command, NodeId, NodeRecord, Outcome, RaftTimeouts, TokenKind,
};

use crate::host::Host;
use crate::identity::{secret_hash, ClusterCa, IdentityError, JoinToken, NodeIdentity};
use crate::transport::{call_as_stranger, BindError, CallError, QuicTransport, CALL_TIMEOUT};
use protocols::{Forward, Join, Raft, ReadIndex};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Bind(#[from] BindError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("{0} already belongs to a cluster (node {1}); start it with `tessera node --data-dir`")]
    AlreadyMember(PathBuf, NodeId),
    #[error("{0} has no cluster identity: run `tessera cluster init` or join with --join")]
    NotMember(PathBuf),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("join refused: {0}")]
    JoinRefused(JoinFailure),
    #[error("refused by the cluster: {0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("bootstrap folder: {0}")]
    Bootstrap(#[from] BootstrapError),
}

/// Why a join did not go through.
#[derive(Debug, thiserror::Error)]
pub enum JoinFailure {
    /// The member answered no (an unknown token, no cluster yet).
    #[error("{0}")]
    Refused(RemoteFailure),
    /// The member could not be asked: unreachable, or not of the cluster the token names.
    #[error("{0}")]
    Call(CallError),
}

/// Where a node listens and how others reach it.
#[derive(Debug, Clone)]
pub struct ClusterAddrs {
    /// The QUIC socket to bind.
    pub bind: SocketAddr,
    /// How other nodes reach it (`host:port`); the bound address when not given.
    pub advertise: Option<String>,
    /// Its HTTP address, as others should use it.
    pub http: String,
    /// The network `bind` is on: this machine's, or a simulation's.
    pub host: Host,
}

/// How others reach a bound address: loopback stands in for an unspecified IP.
fn reachable(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        format!("127.0.0.1:{}", bound.port())
    } else {
        bound.to_string()
    }
}

pub(crate) fn identity_dir(data: &Path) -> PathBuf {
    data.join("cluster")
}

fn catalog_dir(data: &Path) -> PathBuf {
    data.join("catalog")
}

/// A running member.
#[derive(Clone)]
pub struct ClusterService {
    pub catalog: CatalogNode,
    pub transport: QuicTransport,
    pub identity: NodeIdentity,
    pub advertise: String,
}

fn failure(e: CatalogError) -> RemoteFailure {
    match e {
        CatalogError::NotLeader(l) => RemoteFailure::NotLeader(l),
        CatalogError::Rejected(r) => RemoteFailure::Rejected(r),
        CatalogError::Unavailable(u) => RemoteFailure::Unavailable(u),
        CatalogError::Fatal(f) => RemoteFailure::Unavailable(f),
    }
}

impl ClusterService {
    async fn launch(
        data: &Path,
        identity: NodeIdentity,
        addrs: &ClusterAddrs,
        timeouts: &RaftTimeouts,
    ) -> Result<Self, ClusterError> {
        let transport = QuicTransport::bind_in(addrs.bind, &identity, &addrs.host)?;
        let advertise = addrs.advertise.clone().unwrap_or_else(|| reachable(transport.local_addr()));
        let catalog = CatalogNode::start_in(
            identity.id,
            &catalog_dir(data),
            transport.clone(),
            timeouts,
            addrs.host.environment(),
        )
        .await?;
        let service = ClusterService { catalog, transport, identity, advertise };
        service.serve();
        tracing::info!(node = service.identity.id, cluster = %service.advertise, "catalog member started");
        Ok(service)
    }

    /// Registers the members' protocols, tells the transport who is a member, and starts
    /// serving: a joiner or a peer that called early has waited until now.
    fn serve(&self) {
        let catalog = self.catalog.clone();
        self.transport.set_members(Arc::new(move |id| catalog.read_local(|c| c.nodes.contains_key(&id)).value));
        let raft = self.catalog.raft.clone();
        self.transport.serve::<Raft, _, _>(move |_, rpc| {
            let raft = raft.clone();
            async move { dispatch(&raft, rpc).await }
        });
        let this = self.clone();
        self.transport.serve::<Forward, _, _>(move |peer, op| {
            let this = this.clone();
            async move {
                this.refuse_strangers(peer.id())?;
                this.apply_here(op).await.map_err(failure)
            }
        });
        let this = self.clone();
        self.transport.serve::<ReadIndex, _, _>(move |peer, ()| {
            let this = this.clone();
            async move {
                this.refuse_strangers(peer.id())?;
                this.catalog.read_index().await.map_err(failure)
            }
        });
        let this = self.clone();
        self.transport.serve::<Join, _, _>(move |_, request| {
            let this = this.clone();
            async move { this.admit(request).await }
        });
        self.transport.start();
    }

    /// Starts a member from its data folder.
    pub async fn start(data: &Path, addrs: &ClusterAddrs, timeouts: &RaftTimeouts) -> Result<Self, ClusterError> {
        let identity = NodeIdentity::load(&identity_dir(data))?.ok_or_else(|| ClusterError::NotMember(data.into()))?;
        Self::launch(data, identity, addrs, timeouts).await
    }

    /// Creates a new one-node cluster in `data`: its CA, the node's certificate, a join
    /// token and an admin token (returned, never stored in clear).
    pub async fn init(
        data: &Path,
        addrs: &ClusterAddrs,
        timeouts: &RaftTimeouts,
    ) -> Result<(Self, JoinToken, String), ClusterError> {
        Self::init_with(data, addrs, timeouts, Bootstrap::create()?).await
    }

    /// [`Self::init`], with the CA and tokens of `bootstrap` rather than new ones.
    pub async fn init_with(
        data: &Path,
        addrs: &ClusterAddrs,
        timeouts: &RaftTimeouts,
        bootstrap: Bootstrap,
    ) -> Result<(Self, JoinToken, String), ClusterError> {
        if let Some(id) = NodeIdentity::load(&identity_dir(data))? {
            return Err(ClusterError::AlreadyMember(data.into(), id.id));
        }
        let Bootstrap { ca, join, admin } = bootstrap;
        let identity = ca.issue(1)?;
        let service = Self::launch(data, identity.clone(), addrs, timeouts).await?;
        service.catalog.initialize(&service.advertise).await?;
        service.wait_leader(Duration::from_secs(10)).await?;
        service
            .catalog
            .propose(Command::InitCluster {
                ca: CaRecord { cert_pem: ca.cert_pem.clone(), key_pem: ca.key_pem.clone() },
                first: NodeRecord {
                    id: 1,
                    cluster_addr: service.advertise.clone(),
                    http_addr: addrs.http.clone(),
                    joined_ms: 0,
                    region: None,
                },
                join_sha256: secret_hash(&join.secret),
                admin_sha256: secret_hash(&admin),
            })
            .await?;
        // Saved last: a folder with an identity is a member.
        identity.save(&identity_dir(data))?;
        Ok((service, join, admin))
    }

    /// Joins the cluster a member at `member` belongs to, as a voter (or a learner).
    pub async fn join(
        data: &Path,
        addrs: &ClusterAddrs,
        member: SocketAddr,
        token: &JoinToken,
        learner: bool,
        timeouts: &RaftTimeouts,
    ) -> Result<Self, ClusterError> {
        if let Some(id) = NodeIdentity::load(&identity_dir(data))? {
            return Err(ClusterError::AlreadyMember(data.into(), id.id));
        }
        // The advertised address must be known before asking: bind first (a simulated host
        // binds the address it is given).
        let bound = match addrs.host {
            Host::Machine => {
                let socket = |e| ClusterError::Bind(BindError::Socket(addrs.bind, e));
                let probe = std::net::UdpSocket::bind(addrs.bind).map_err(socket)?;
                probe.local_addr().map_err(socket)?
            }
            Host::Simulated(_) => addrs.bind,
        };
        let advertise = addrs.advertise.clone().unwrap_or_else(|| reachable(bound));
        let request = JoinRequest {
            secret: token.secret.clone(),
            cluster_addr: advertise.clone(),
            http_addr: addrs.http.clone(),
        };
        let grant =
            call_as_stranger::<Join>(&addrs.host, Some(bound), member, &token.ca_sha256, &request, CALL_TIMEOUT * 4)
                .await
                .map_err(|e| ClusterError::JoinRefused(JoinFailure::Call(e)))?
                .map_err(|e| ClusterError::JoinRefused(JoinFailure::Refused(e)))?;
        let addrs = ClusterAddrs { bind: bound, advertise: Some(advertise.clone()), ..addrs.clone() };
        let service = Self::launch(data, grant.identity.clone(), &addrs, timeouts).await?;
        let id = service.identity.id;
        let member = member.to_string();
        service.forward_via(&member, Forwarded::AddLearner { id, addr: advertise }).await?;
        if !learner {
            service.forward_via(&member, Forwarded::Promote { id }).await?;
        }
        grant.identity.save(&identity_dir(data))?;
        tracing::info!(node = id, learner, "joined the cluster");
        Ok(service)
    }

    /// The other members, with their cluster addresses, as this node has applied them.
    pub fn peers(&self) -> Vec<(NodeId, String)> {
        let me = self.identity.id;
        self.catalog
            .read_local(|c| c.nodes.values().filter(|n| n.id != me).map(|n| (n.id, n.cluster_addr.clone())).collect())
            .value
    }

    /// A member's cluster address, as this node has applied it.
    pub fn addr_of(&self, id: NodeId) -> Option<String> {
        self.catalog.read_local(|c| c.nodes.get(&id).map(|n| n.cluster_addr.clone())).value
    }

    /// A node removed from the cluster keeps a valid certificate: the catalog's list of
    /// nodes says who may still write and read through this one.
    /// Checked by the leader only (a follower just redirects, and may not have heard of a
    /// node admitted a moment ago).
    fn refuse_strangers(&self, from: NodeId) -> Result<(), RemoteFailure> {
        let leading = self.catalog.status().leader == Some(self.identity.id);
        if !leading || self.catalog.read_local(|c| c.nodes.contains_key(&from)).value {
            return Ok(());
        }
        metrics::counter!("tessera_cluster_refused_requests_total").increment(1);
        tracing::warn!(from, "request from a node that is not in the catalog refused");
        Err(RemoteFailure::Refused(format!("node {from} is not a member of this cluster")))
    }

    /// Admits a joiner: checks its token, gives it an id and a certificate.
    async fn admit(&self, req: JoinRequest) -> Result<JoinGrant, RemoteFailure> {
        let hash = secret_hash(&req.secret);
        let (accepted, ca) = self.catalog.read_local(|c| (c.accepts(TokenKind::Join, &hash), c.ca.clone())).value;
        if !accepted {
            metrics::counter!("tessera_cluster_joins_refused_total").increment(1);
            tracing::warn!(cluster_addr = %req.cluster_addr, "join refused: unknown token");
            return Err(RemoteFailure::Refused("unknown join token".into()));
        }
        let ca = ca.ok_or_else(|| RemoteFailure::Unavailable("cluster not initialized".into()))?;
        let admitted = self
            .propose(Command::AdmitNode { cluster_addr: req.cluster_addr.clone(), http_addr: req.http_addr.clone() })
            .await
            .map_err(|e| RemoteFailure::Unavailable(e.to_string()))?;
        let Outcome::Admitted(node) = admitted else {
            return Err(RemoteFailure::Unavailable("admission gave no id".into()));
        };
        let identity = ClusterCa { cert_pem: ca.cert_pem, key_pem: ca.key_pem }
            .issue(node.id)
            .map_err(|e| RemoteFailure::Unavailable(e.to_string()))?;
        tracing::info!(node = node.id, cluster_addr = %node.cluster_addr, "node admitted");
        Ok(JoinGrant { identity })
    }

    /// Leaves: the node is removed from the membership (through the leader), then stops.
    pub async fn leave(&self) -> Result<(), ClusterError> {
        self.remove(self.identity.id).await
    }

    pub async fn shutdown(&self) {
        self.catalog.shutdown().await;
        self.transport.close();
    }
}

#[cfg(test)]
mod tests;
