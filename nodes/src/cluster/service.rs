//! A node's place in the catalog cluster: it starts (from its data folder), initialises a
//! new cluster, or joins one with a token; it proposes writes from anywhere (forwarding them
//! to the leader) and admits joiners.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_license::decision::{Sessions, StreamClaim};

use tessera_raft::network::{dispatch, RaftReply, RaftRpc};
use tessera_raft::{
    CaRecord, CatalogError, CatalogNode, Command, NodeId, NodeRecord, Outcome, RaftTimeouts, TokenKind,
};

use crate::relay::{FeedFrame, FeedRegistry};

use super::identity::{secret_hash, ClusterCa, IdentityError, JoinToken, NodeIdentity};
use super::quic::{
    request_join, Forwarded, JoinGrant, JoinRequest, PeerHandler, PeerRequest, PeerResponse, QuicError, QuicTransport,
    RemoteFailure,
};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Quic(#[from] QuicError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("{0} already belongs to a cluster (node {1}); start it with `tessera node --data-dir`")]
    AlreadyMember(PathBuf, NodeId),
    #[error("{0} has no cluster identity: run `tessera cluster init` or join with --join")]
    NotMember(PathBuf),
    #[error("join refused: {0}")]
    JoinRefused(String),
    #[error("{0}")]
    Remote(String),
    #[error("refused by the cluster: {0}")]
    Refused(String),
}

/// How long a forwarded operation keeps trying (through elections and membership changes)
/// before it is reported unavailable.
const FORWARD_PATIENCE: Duration = Duration::from_secs(15);

/// Segments of each live stream its journal keeps for the nodes that follow it: one further
/// behind starts again at the live edge.
const FEED_KEEP_SEGMENTS: usize = 8;

/// The pause before retry `attempt`.
fn backoff(attempt: u64) -> Duration {
    Duration::from_millis((50 * (attempt + 1)).min(500))
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
    /// The journals of the live streams this node is origin of, for the others to follow.
    pub feeds: Arc<FeedRegistry>,
    /// The viewers' streams of the subjects this node counts for the whole cluster (the
    /// license actor's stream limits).
    pub viewer_streams: Arc<Mutex<Sessions>>,
}

struct Handler {
    service: ClusterService,
}

impl PeerHandler for Handler {
    async fn raft(&self, rpc: RaftRpc) -> RaftReply {
        dispatch(&self.service.catalog.raft, rpc).await
    }

    async fn forward(&self, from: NodeId, op: Forwarded) -> Result<Outcome, RemoteFailure> {
        self.service.refuse_strangers(from)?;
        self.service.apply_here(op).await.map_err(failure)
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinGrant, RemoteFailure> {
        self.service.admit(req).await
    }

    async fn read_index(&self, from: NodeId) -> Result<u64, RemoteFailure> {
        self.service.refuse_strangers(from)?;
        self.service.catalog.read_index().await.map_err(failure)
    }

    fn subscribe(
        &self,
        from: NodeId,
        stream: &str,
        position: Option<(u64, u64)>,
    ) -> Result<tokio::sync::mpsc::Receiver<FeedFrame>, RemoteFailure> {
        self.members_only(from)?;
        tracing::info!(stream, node = from, ?position, "node follows the stream");
        Ok(self.service.feeds.subscribe(stream, position))
    }

    fn stream_position(&self, from: NodeId, stream: &str) -> Option<crate::store::Held> {
        self.members_only(from).ok()?;
        self.service.feeds.held(stream)
    }

    fn fetch(
        &self,
        from: NodeId,
        stream: &str,
        rendition: &str,
        file: crate::relay::MediaFile,
    ) -> Option<bytes::Bytes> {
        self.members_only(from).ok()?;
        self.service.feeds.file(stream, rendition, file)
    }

    fn count_stream(&self, from: NodeId, claim: &StreamClaim) -> Option<Result<(), u32>> {
        self.members_only(from).ok()?;
        let counted = self.service.viewer_streams.lock().expect("stream counts").admit(claim);
        Some(counted.map_err(|_| claim.limit))
    }
}

impl Handler {
    /// Media goes only to nodes the catalog lists: a removed node keeps a valid certificate.
    fn members_only(&self, from: NodeId) -> Result<(), RemoteFailure> {
        if self.service.catalog.read_local(|c| c.nodes.contains_key(&from)).value {
            return Ok(());
        }
        metrics::counter!("tessera_cluster_refused_requests_total").increment(1);
        tracing::warn!(from, "media request from a node that is not in the catalog refused");
        Err(RemoteFailure::Refused(format!("node {from} is not a member of this cluster")))
    }
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
        let transport = QuicTransport::bind(addrs.bind, &identity)?;
        let advertise = addrs.advertise.clone().unwrap_or_else(|| reachable(transport.local_addr()));
        let catalog = CatalogNode::start(identity.id, &catalog_dir(data), transport.clone(), timeouts).await?;
        let feeds = FeedRegistry::new(FEED_KEEP_SEGMENTS);
        let viewer_streams = Arc::default();
        let service = ClusterService { catalog, transport, identity, advertise, feeds, viewer_streams };
        service.transport.serve(Arc::new(Handler { service: service.clone() }));
        tracing::info!(node = service.identity.id, cluster = %service.advertise, "catalog member started");
        Ok(service)
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
        if let Some(id) = NodeIdentity::load(&identity_dir(data))? {
            return Err(ClusterError::AlreadyMember(data.into(), id.id));
        }
        let ca = ClusterCa::create()?;
        let identity = ca.issue(1)?;
        let service = Self::launch(data, identity.clone(), addrs, timeouts).await?;
        service.catalog.initialize(&service.advertise).await?;
        service.wait_leader(Duration::from_secs(10)).await?;
        let join = JoinToken { secret: super::identity::new_secret(), ca_sha256: ca.fingerprint() };
        let admin = super::identity::new_secret();
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
        // The advertised address must be known before asking: bind first.
        let probe = std::net::UdpSocket::bind(addrs.bind).map_err(|e| QuicError::Bind(addrs.bind, e))?;
        let bound = probe.local_addr().map_err(|e| QuicError::Bind(addrs.bind, e))?;
        drop(probe);
        let advertise = addrs.advertise.clone().unwrap_or_else(|| reachable(bound));
        let req = JoinRequest {
            secret: token.secret.clone(),
            cluster_addr: advertise.clone(),
            http_addr: addrs.http.clone(),
        };
        let grant = request_join(member, &token.ca_sha256, req).await.map_err(ClusterError::JoinRefused)?;
        let addrs = ClusterAddrs { bind: bound, advertise: Some(advertise.clone()), http: addrs.http.clone() };
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

    /// Waits until this node knows a leader.
    pub async fn wait_leader(&self, within: Duration) -> Result<NodeId, ClusterError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(l) = self.catalog.status().leader {
                return Ok(l);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(CatalogError::Unavailable("no leader".into()).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Carries out a forwarded operation here, if this node leads.
    async fn apply_here(&self, op: Forwarded) -> Result<Outcome, CatalogError> {
        match op {
            Forwarded::Propose(c) => self.catalog.propose(c).await,
            Forwarded::AddLearner { id, addr } => self.catalog.add_learner(id, &addr).await.map(|_| Outcome::Done),
            Forwarded::Promote { id } => self.catalog.promote(BTreeSet::from([id])).await.map(|_| Outcome::Done),
            Forwarded::Remove { ids } => {
                self.catalog.remove_nodes(ids.into_iter().collect()).await.map(|_| Outcome::Done)
            }
        }
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

    /// Where every other node stands in `stream` (those that answer within `within`).
    pub async fn stream_positions(&self, stream: &str, within: Duration) -> Vec<(NodeId, Option<crate::store::Held>)> {
        let me = self.identity.id;
        let peers: Vec<(NodeId, String)> = self
            .catalog
            .read_local(|c| c.nodes.values().filter(|n| n.id != me).map(|n| (n.id, n.cluster_addr.clone())).collect())
            .value;
        let asks = peers.into_iter().map(|(id, addr)| async move {
            (id, tokio::time::timeout(within, self.stream_position_of(id, &addr, stream)).await.ok().flatten())
        });
        futures::future::join_all(asks).await
    }

    /// Has node `id` count a viewer's stream; `None` if it is not a member or does not
    /// answer within `within`.
    pub async fn count_stream_at(&self, id: NodeId, claim: StreamClaim, within: Duration) -> Option<Result<(), u32>> {
        let addr = self.catalog.read_local(|c| c.nodes.get(&id).map(|n| n.cluster_addr.clone())).value?;
        let req = PeerRequest::CountStream(claim);
        match tokio::time::timeout(within, self.transport.request(Some(id), &addr, &req)).await {
            Ok(Ok(PeerResponse::StreamCounted(counted))) => counted,
            _ => None,
        }
    }

    /// Where node `id` (at `addr`) stands in `stream`; `None` if it does not answer in time.
    pub async fn stream_position_of(&self, id: NodeId, addr: &str, stream: &str) -> Option<crate::store::Held> {
        let req = PeerRequest::StreamPosition { stream: stream.to_string() };
        match self.transport.request(Some(id), addr, &req).await {
            Ok(PeerResponse::StreamPosition(held)) => held,
            _ => None,
        }
    }

    /// The numbers that carry on from every other node's holding of `stream`.
    pub async fn stream_position(&self, stream: &str, within: Duration) -> Option<crate::store::Numbering> {
        let held = self.stream_positions(stream, within).await.into_iter().filter_map(|(_, h)| h.map(|h| h.next));
        held.reduce(crate::store::Numbering::max)
    }

    /// Resolves once this node knows of a leader other than `id`.
    async fn leader_other_than(&self, id: NodeId) {
        let mut metrics = self.catalog.raft.metrics();
        let _ = metrics.wait_for(|m| m.current_leader.is_some_and(|l| l != id)).await;
    }

    /// The leader as this node sees it, with its address.
    fn known_leader(&self) -> Option<(NodeId, String)> {
        let st = self.catalog.status();
        let l = st.leader?;
        st.members.iter().find(|m| m.id == l).map(|m| (l, m.addr.clone()))
    }

    /// Sends an operation to the leader, starting with the member at `first`, following
    /// redirects; when a target fails, asks again whoever this node now believes leads (an
    /// election may have moved the lead), for up to [`FORWARD_PATIENCE`].
    async fn forward_via(&self, first: &str, op: Forwarded) -> Result<Outcome, ClusterError> {
        self.forward_to((None, first.to_string()), op).await
    }

    async fn forward_to(&self, first: (Option<NodeId>, String), op: Forwarded) -> Result<Outcome, ClusterError> {
        let mut last = first.clone();
        let mut target = Some(first);
        let deadline = tokio::time::Instant::now() + FORWARD_PATIENCE;
        for attempt in 0.. {
            if tokio::time::Instant::now() > deadline {
                break;
            }
            // A redirect first, then the leader this node knows, else the last one asked
            // (a joining node knows no leader until it is a member).
            let (id, addr) = target
                .take()
                .or_else(|| self.known_leader().map(|(l, a)| (Some(l), a)))
                .unwrap_or_else(|| last.clone());
            last = (id, addr.clone());
            if id == Some(self.identity.id) {
                match self.apply_here(op.clone()).await {
                    Ok(o) => return Ok(o),
                    Err(CatalogError::NotLeader(l)) => target = l.map(|(l, a)| (Some(l), a)),
                    Err(CatalogError::Rejected(r)) => return Err(CatalogError::Rejected(r).into()),
                    Err(_) => tokio::time::sleep(backoff(attempt)).await,
                }
                continue;
            }
            let forward = PeerRequest::Forward(op.clone());
            let request = self.transport.request(id, &addr, &forward);
            // A leader that died takes its time to be noticed by the transport; an election
            // is quicker. Whichever comes first: the answer, or a new leader to ask.
            let answer = match id {
                Some(asked) => tokio::select! {
                    r = request => r,
                    () = self.leader_other_than(asked) => {
                        tracing::debug!(attempt, asked, "a new leader was elected while waiting; asking it");
                        continue;
                    }
                },
                None => request.await,
            };
            match answer {
                Ok(PeerResponse::Forwarded(Ok(o))) => return Ok(o),
                Ok(PeerResponse::Forwarded(Err(RemoteFailure::NotLeader(Some((l, a)))))) => target = Some((Some(l), a)),
                Ok(PeerResponse::Forwarded(Err(RemoteFailure::Refused(why)))) => {
                    return Err(ClusterError::Refused(why))
                }
                Ok(PeerResponse::Forwarded(Err(RemoteFailure::Rejected(r)))) => {
                    return Err(CatalogError::Rejected(r).into())
                }
                Ok(PeerResponse::Forwarded(Err(f))) => {
                    tracing::debug!(attempt, failure = ?f, "forwarded operation failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Ok(_) => return Err(ClusterError::Remote("unexpected answer".into())),
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "forwarding failed; asking again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(CatalogError::Unavailable("the leader could not be reached".into()).into())
    }

    /// Applies an operation at the leader, wherever it is.
    pub async fn submit(&self, op: Forwarded) -> Result<Outcome, ClusterError> {
        let leader = match self.known_leader() {
            Some(l) => l,
            None => {
                self.wait_leader(Duration::from_secs(5)).await?;
                self.known_leader().ok_or_else(|| CatalogError::Unavailable("no leader".into()))?
            }
        };
        self.forward_to((Some(leader.0), leader.1), op).await
    }

    /// Proposes a catalog command from any member.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ClusterError> {
        self.submit(Forwarded::Propose(command)).await
    }

    /// A linearizable read from any member: the leader confirms its lead with a quorum and
    /// names the log index the read must see; this node reads its own copy once it has
    /// applied that far.
    pub async fn read<T>(&self, f: impl Fn(&tessera_raft::Catalog) -> T) -> Result<T, ClusterError> {
        const WITHIN: Duration = Duration::from_secs(5);
        for attempt in 0..10u64 {
            let leader = match self.catalog.read_index().await {
                Ok(index) => return Ok(self.catalog.read_at(index, WITHIN, &f).await?),
                Err(CatalogError::NotLeader(Some(l))) => l,
                Err(CatalogError::NotLeader(None)) => {
                    let id = self.wait_leader(WITHIN).await?;
                    match self.known_leader() {
                        Some(l) if l.0 == id => l,
                        _ => continue,
                    }
                }
                Err(e) => return Err(e.into()),
            };
            match self.transport.request(Some(leader.0), &leader.1, &PeerRequest::ReadIndex).await {
                Ok(PeerResponse::ReadIndex(Ok(index))) => return Ok(self.catalog.read_at(index, WITHIN, &f).await?),
                Ok(PeerResponse::ReadIndex(Err(RemoteFailure::Refused(why)))) => {
                    return Err(ClusterError::Refused(why))
                }
                Ok(PeerResponse::ReadIndex(Err(f))) => tracing::debug!(attempt, failure = ?f, "read index refused"),
                Ok(_) => return Err(ClusterError::Remote("unexpected answer".into())),
                Err(e) => tracing::debug!(attempt, error = %e, "read index request failed"),
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(CatalogError::Unavailable("no leader confirmed a read index".into()).into())
    }

    /// Removes a node from the cluster (membership, then its record), from any member.
    pub async fn remove(&self, id: NodeId) -> Result<(), ClusterError> {
        self.submit(Forwarded::Remove { ids: vec![id] }).await?;
        match self.propose(Command::RemoveNode { id }).await {
            Ok(_) | Err(ClusterError::Catalog(CatalogError::Rejected(_))) => Ok(()),
            Err(e) => Err(e),
        }
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
