//! Node-to-node messages over QUIC (quinn) with mutual TLS against the cluster CA.
//!
//! One request per bidirectional stream: `len: u32 BE` + postcard body each way, the
//! sender finishing its side before it waits (so nothing sent is lost on close). Raft
//! messages and forwarded writes need a client certificate from the cluster CA; a join
//! request comes from a node that has none yet, and is admitted by its token alone.
//!
//! [`QuicTransport`] is the client side (and the catalog's [`Transport`]); [`serve`] is the
//! server side, handing requests to a [`PeerHandler`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tessera_license::decision::StreamClaim;
use tessera_raft::network::{RaftReply, RaftRpc, Transport, TransportError};
use tessera_raft::{Command, NodeId, Outcome};
use tokio::sync::mpsc;

use super::identity::{fingerprint_der, server_name, NodeIdentity, CLUSTER_NAME};
use crate::relay::{FeedFrame, MediaFile};

pub const ALPN: &[u8] = b"tessera-cluster/1";
/// Largest message accepted (a snapshot of the catalog).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// A member that does not complete a handshake in this time is taken as down.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// A write or membership change sent to the leader by another node.
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

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    Raft(RaftRpc),
    Forward(Forwarded),
    Join(JoinRequest),
    /// Asks the leader for the index a linearizable read must see.
    ReadIndex,
    /// Follows a live stream this node is origin of, from a position held (journal, newest
    /// sequence number): answered with `Subscribed`, then [`FeedFrame`]s until either side
    /// closes.
    Subscribe {
        stream: String,
        position: Option<(u64, u64)>,
    },
    /// Where the node stands in a stream, if it holds it.
    StreamPosition {
        stream: String,
    },
    /// A segment or init segment of a stream, if the node holds it.
    Fetch {
        stream: String,
        rendition: String,
        file: MediaFile,
    },
    /// Counts a viewer's stream against its subject's limit, at the subject's counting node.
    CountStream(StreamClaim),
}

/// Why a forwarded operation failed, as the far side put it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteFailure {
    NotLeader(Option<(NodeId, String)>),
    Rejected(tessera_raft::Rejection),
    Unavailable(String),
    Refused(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    Raft(RaftReply),
    Forwarded(Result<Outcome, RemoteFailure>),
    Joined(Result<JoinGrant, RemoteFailure>),
    ReadIndex(Result<u64, RemoteFailure>),
    Subscribed(Result<(), RemoteFailure>),
    StreamPosition(Option<crate::store::Held>),
    Fetched(Option<bytes::Bytes>),
    /// Counted, or the subject's limit it is at; `None` from a node that does not count
    /// for this one (not a member).
    StreamCounted(Option<Result<(), u32>>),
    /// The request needs a client certificate from the cluster CA.
    Unauthenticated,
}

/// What the server side does with requests.
pub trait PeerHandler: Send + Sync + 'static {
    fn raft(&self, rpc: RaftRpc) -> impl Future<Output = RaftReply> + Send;
    /// A write or membership change from node `from` (as its certificate names it).
    fn forward(&self, from: NodeId, op: Forwarded) -> impl Future<Output = Result<Outcome, RemoteFailure>> + Send;
    fn join(&self, req: JoinRequest) -> impl Future<Output = Result<JoinGrant, RemoteFailure>> + Send;
    fn read_index(&self, from: NodeId) -> impl Future<Output = Result<u64, RemoteFailure>> + Send;
    /// Frames of a live stream for node `from`, catch-up first.
    fn subscribe(
        &self,
        from: NodeId,
        stream: &str,
        position: Option<(u64, u64)>,
    ) -> Result<mpsc::Receiver<FeedFrame>, RemoteFailure>;
    /// Where this node stands in `stream`.
    fn stream_position(&self, from: NodeId, stream: &str) -> Option<crate::store::Held>;
    /// A file of a stream this node holds, for node `from`.
    fn fetch(&self, from: NodeId, stream: &str, rendition: &str, file: MediaFile) -> Option<bytes::Bytes>;
    /// Counts a viewer's stream for node `from`: `Err(limit)` if its subject is at it.
    fn count_stream(&self, from: NodeId, claim: &StreamClaim) -> Option<Result<(), u32>>;
}

#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("cannot bind the cluster address {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// The node id a certificate names (`node-ID.tessera`).
fn node_id_of(cert: &CertificateDer<'_>) -> Option<NodeId> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    let id = cert.valid_dns_names().find_map(|n| n.strip_prefix("node-")?.strip_suffix(".tessera")?.parse().ok());
    id
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes()).filter_map(Result::ok).collect()
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, QuicError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .ok()
        .flatten()
        .ok_or_else(|| QuicError::Tls("no private key in the identity".into()))
}

fn roots(identity: &NodeIdentity) -> Result<Arc<rustls::RootCertStore>, QuicError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&identity.ca_pem) {
        roots.add(c).map_err(|e| QuicError::Tls(e.to_string()))?;
    }
    Ok(Arc::new(roots))
}

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(2)));
    t.max_idle_timeout(Some(Duration::from_secs(10).try_into().expect("in range")));
    Arc::new(t)
}

/// The server side: the node's certificate (with the CA, so joiners can pin it), client
/// certificates from the CA accepted and checked per request.
fn server_config(identity: &NodeIdentity) -> Result<quinn::ServerConfig, QuicError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots(identity)?, provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| QuicError::Tls(e.to_string()))?;
    let mut chain = certs(&identity.cert_pem);
    chain.extend(certs(&identity.ca_pem));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| QuicError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key(&identity.key_pem)?)
        .map_err(|e| QuicError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| QuicError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// A member's client side: trusts the cluster CA, presents its own certificate.
fn member_client_config(identity: &NodeIdentity) -> Result<quinn::ClientConfig, QuicError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| QuicError::Tls(e.to_string()))?
        .with_root_certificates(roots(identity)?)
        .with_client_auth_cert(certs(&identity.cert_pem), key(&identity.key_pem)?)
        .map_err(|e| QuicError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| QuicError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// Trusts a server whose chain ends in the CA with this SHA-256: what a joiner knows.
#[derive(Debug)]
struct PinnedCa {
    ca_sha256: String,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| fingerprint_der(c) == self.ca_sha256)
            .ok_or_else(|| rustls::Error::General("the node's CA is not the one the join token names".into()))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone().into_owned()).map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let name = ServerName::try_from(CLUSTER_NAME).expect("valid name");
        verifier.verify_server_cert(end_entity, &[], &name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used between nodes".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

fn joiner_client_config(ca_sha256: &str) -> Result<quinn::ClientConfig, QuicError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| QuicError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa { ca_sha256: ca_sha256.to_string() }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| QuicError::Tls(e.to_string()))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

async fn write_message<T: Serialize>(send: &mut quinn::SendStream, msg: &T) -> Result<(), String> {
    let body = postcard::to_allocvec(msg).map_err(|e| e.to_string())?;
    send.write_all(&(body.len() as u32).to_be_bytes()).await.map_err(|e| e.to_string())?;
    send.write_all(&body).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())
}

async fn read_message<T: DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<T, String> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(format!("message of {len} bytes exceeds {MAX_MESSAGE}"));
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    postcard::from_bytes(&body).map_err(|e| e.to_string())
}

/// Writes one length-prefixed message without finishing the stream.
async fn write_frame<T: Serialize>(send: &mut quinn::SendStream, msg: &T) -> Result<usize, String> {
    let body = postcard::to_allocvec(msg).map_err(|e| e.to_string())?;
    send.write_all(&(body.len() as u32).to_be_bytes()).await.map_err(|e| e.to_string())?;
    send.write_all(&body).await.map_err(|e| e.to_string())?;
    Ok(4 + body.len())
}

/// Sends a subscriber its frames until it goes away. Its side of the stream carries its
/// acknowledgements: the newest sequence number it has applied, as it goes.
async fn pump(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    mut frames: mpsc::Receiver<FeedFrame>,
    from: NodeId,
    stream: &str,
) {
    let acks = async {
        let mut ack = [0u8; 8];
        while recv.read_exact(&mut ack).await.is_ok() {
            metrics::gauge!("tessera_relay_subscriber_acked_seq", "stream" => stream.to_string(), "node" => from.to_string())
                .set(u64::from_be_bytes(ack) as f64);
        }
    };
    let frames = async {
        while let Some(frame) = frames.recv().await {
            let media_items = frame.items.iter().filter(|i| i.event.segment().is_some()).count();
            match write_frame(&mut send, &frame).await {
                Ok(bytes) => metrics::counter!("tessera_relay_bytes_sent_total").increment(bytes as u64),
                Err(e) => {
                    tracing::debug!(stream, node = from, error = %e, "subscriber gone");
                    return;
                }
            }
            metrics::counter!("tessera_relay_items_sent_total").increment(media_items as u64);
        }
        let _ = send.finish();
    };
    tokio::select! {
        _ = frames => {}
        _ = acks => {}
    }
}

/// A subscription: frames come in on one half, acknowledgements go out on the other.
pub struct FeedReader {
    pub frames: FeedFrames,
    pub acks: FeedAcks,
}

/// A subscription's incoming frames.
pub struct FeedFrames(quinn::RecvStream);

impl FeedFrames {
    /// The next frame; `None` once the origin closed the subscription. Not cancel-safe:
    /// read it from one task.
    pub async fn next(&mut self) -> Result<Option<FeedFrame>, String> {
        let mut len = [0u8; 4];
        match self.0.read_exact(&mut len).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_MESSAGE {
            return Err(format!("frame of {len} bytes exceeds {MAX_MESSAGE}"));
        }
        let mut body = vec![0u8; len];
        self.0.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        postcard::from_bytes(&body).map(Some).map_err(|e| e.to_string())
    }
}

/// A subscription's acknowledgements to the origin.
pub struct FeedAcks(quinn::SendStream);

impl FeedAcks {
    /// Tells the origin the newest sequence number applied here.
    pub async fn ack(&mut self, seq: u64) -> Result<(), String> {
        self.0.write_all(&seq.to_be_bytes()).await.map_err(|e| e.to_string())
    }
}

async fn exchange(conn: &quinn::Connection, req: &PeerRequest) -> Result<PeerResponse, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    write_message(&mut send, req).await?;
    read_message(&mut recv).await
}

/// A bound QUIC endpoint: serves peers and calls them.
#[derive(Clone)]
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
    client: quinn::ClientConfig,
    connections: Arc<Mutex<HashMap<NodeId, quinn::Connection>>>,
}

impl QuicTransport {
    /// Binds `addr` with the node's identity.
    pub fn bind(addr: SocketAddr, identity: &NodeIdentity) -> Result<Self, QuicError> {
        let endpoint = quinn::Endpoint::server(server_config(identity)?, addr).map_err(|e| QuicError::Bind(addr, e))?;
        Ok(QuicTransport { endpoint, client: member_client_config(identity)?, connections: Arc::default() })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("bound")
    }

    /// Serves requests until the endpoint closes.
    pub fn serve<H: PeerHandler>(&self, handler: Arc<H>) -> tokio::task::JoinHandle<()> {
        let endpoint = self.endpoint.clone();
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    // rustls has checked any certificate presented against the cluster CA;
                    // it names the node.
                    let member = conn.peer_identity().and_then(|i| {
                        let certs = i.downcast::<Vec<CertificateDer<'static>>>().ok()?;
                        certs.first().and_then(node_id_of)
                    });
                    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                        let handler = handler.clone();
                        tokio::spawn(async move {
                            let Ok(req) = read_message::<PeerRequest>(&mut recv).await else { return };
                            let resp = match req {
                                PeerRequest::Join(j) => PeerResponse::Joined(handler.join(j).await),
                                _ if member.is_none() => PeerResponse::Unauthenticated,
                                PeerRequest::Subscribe { stream, position } => {
                                    let from = member.unwrap_or_default();
                                    match handler.subscribe(from, &stream, position) {
                                        Ok(frames) => {
                                            if write_frame(&mut send, &PeerResponse::Subscribed(Ok(()))).await.is_ok() {
                                                pump(send, recv, frames, from, &stream).await;
                                            }
                                            return;
                                        }
                                        Err(f) => PeerResponse::Subscribed(Err(f)),
                                    }
                                }
                                PeerRequest::Raft(rpc) => PeerResponse::Raft(handler.raft(rpc).await),
                                PeerRequest::Forward(op) => {
                                    PeerResponse::Forwarded(handler.forward(member.unwrap_or_default(), op).await)
                                }
                                PeerRequest::Fetch { stream, rendition, file } => PeerResponse::Fetched(handler.fetch(
                                    member.unwrap_or_default(),
                                    &stream,
                                    &rendition,
                                    file,
                                )),
                                PeerRequest::StreamPosition { stream } => PeerResponse::StreamPosition(
                                    handler.stream_position(member.unwrap_or_default(), &stream),
                                ),
                                PeerRequest::ReadIndex => {
                                    PeerResponse::ReadIndex(handler.read_index(member.unwrap_or_default()).await)
                                }
                                PeerRequest::CountStream(claim) => PeerResponse::StreamCounted(
                                    handler.count_stream(member.unwrap_or_default(), &claim),
                                ),
                            };
                            let _ = write_message(&mut send, &resp).await;
                            let _ = send.stopped().await;
                        });
                    }
                });
            }
        })
    }

    /// A connection to node `target` (or, when its id is not known, to whichever member
    /// answers at `addr`).
    async fn connection(&self, target: Option<NodeId>, addr: &str) -> Result<quinn::Connection, TransportError> {
        let id = target.unwrap_or(0);
        if let Some(t) = target {
            if let Some(c) = self.connections.lock().expect("connections").get(&t) {
                if c.close_reason().is_none() {
                    return Ok(c.clone());
                }
            }
        }
        let sock: SocketAddr = tokio::net::lookup_host(addr)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| TransportError::Unreachable(id, format!("cannot resolve {addr}")))?;
        let name = target.map_or(CLUSTER_NAME.to_string(), server_name);
        let connecting = self
            .endpoint
            .connect_with(self.client.clone(), sock, &name)
            .map_err(|e| TransportError::Unreachable(id, e.to_string()))?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| TransportError::Unreachable(id, "connection timed out".into()))?
            .map_err(|e| TransportError::Unreachable(id, e.to_string()))?;
        if let Some(t) = target {
            self.connections.lock().expect("connections").insert(t, conn.clone());
        }
        Ok(conn)
    }

    /// Sends a request to a member and waits for its answer.
    pub async fn request(
        &self,
        target: Option<NodeId>,
        addr: &str,
        req: &PeerRequest,
    ) -> Result<PeerResponse, TransportError> {
        let id = target.unwrap_or(0);
        let conn = self.connection(target, addr).await?;
        // Unanswered (failed, timed out, or given up by the caller): the connection may lead
        // to a process that is gone, or restarted with no memory of it, and QUIC would only
        // notice after its idle timeout. The next request makes a new one.
        let mut unanswered = Unanswered { transport: self, target, connection: conn.stable_id(), armed: true };
        let answer = match tokio::time::timeout(CALL_TIMEOUT, exchange(&conn, req)).await {
            Ok(Ok(PeerResponse::Unauthenticated)) => {
                Err(TransportError::Unreachable(id, "refused our certificate".into()))
            }
            Ok(Ok(r)) => {
                unanswered.armed = false;
                Ok(r)
            }
            Ok(Err(e)) => Err(TransportError::Broken(id, e)),
            Err(_) => Err(TransportError::Broken(id, "no answer in time".into())),
        };
        answer
    }

    /// Follows `stream` on node `target`, its origin.
    pub async fn subscribe(
        &self,
        target: NodeId,
        addr: &str,
        stream: &str,
        position: Option<(u64, u64)>,
    ) -> Result<FeedReader, TransportError> {
        let conn = self.connection(Some(target), addr).await?;
        let broken = |e: String| TransportError::Broken(target, e);
        let opened = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            write_frame(&mut send, &PeerRequest::Subscribe { stream: stream.to_string(), position }).await?;
            let answer: PeerResponse = read_message(&mut recv).await?;
            Ok::<_, String>((send, recv, answer))
        };
        let (send, recv, answer) = tokio::time::timeout(CALL_TIMEOUT, opened)
            .await
            .map_err(|_| broken("no answer in time".into()))?
            .map_err(|e| {
                self.forget(target, conn.stable_id());
                broken(e)
            })?;
        match answer {
            PeerResponse::Subscribed(Ok(())) => Ok(FeedReader { frames: FeedFrames(recv), acks: FeedAcks(send) }),
            PeerResponse::Subscribed(Err(f)) => Err(broken(format!("{f:?}"))),
            PeerResponse::Unauthenticated => Err(TransportError::Unreachable(target, "refused our certificate".into())),
            _ => Err(TransportError::WrongReply(target)),
        }
    }

    fn forget(&self, target: NodeId, connection: usize) {
        let mut connections = self.connections.lock().expect("connections");
        if connections.get(&target).is_some_and(|c| c.stable_id() == connection) {
            connections.remove(&target);
        }
    }

    /// Closes every connection and the endpoint.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"shutting down");
    }
}

/// Forgets a cached connection when dropped armed: see [`QuicTransport::request`].
struct Unanswered<'a> {
    transport: &'a QuicTransport,
    target: Option<NodeId>,
    connection: usize,
    armed: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let (true, Some(t)) = (self.armed, self.target) {
            self.transport.forget(t, self.connection);
        }
    }
}

impl Transport for QuicTransport {
    async fn call(
        &self,
        target: NodeId,
        node: &openraft::BasicNode,
        rpc: RaftRpc,
    ) -> Result<RaftReply, TransportError> {
        match self.request(Some(target), &node.addr, &PeerRequest::Raft(rpc)).await? {
            PeerResponse::Raft(r) => Ok(r),
            _ => Err(TransportError::WrongReply(target)),
        }
    }
}

/// Asks a member at `addr` to admit this node: the connection is trusted only if the
/// member's CA has the fingerprint of the join token.
pub async fn request_join(addr: SocketAddr, ca_sha256: &str, req: JoinRequest) -> Result<JoinGrant, String> {
    let mut endpoint = quinn::Endpoint::client("0.0.0.0:0".parse().expect("valid")).map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(joiner_client_config(ca_sha256).map_err(|e| e.to_string())?);
    let connecting = endpoint.connect(addr, CLUSTER_NAME).map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(CALL_TIMEOUT, connecting)
        .await
        .map_err(|_| format!("{addr}: no answer"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    let resp = tokio::time::timeout(CALL_TIMEOUT * 4, exchange(&conn, &PeerRequest::Join(req)))
        .await
        .map_err(|_| format!("{addr}: the join took too long"))??;
    conn.close(0u32.into(), b"joined");
    endpoint.wait_idle().await;
    match resp {
        PeerResponse::Joined(Ok(g)) => Ok(g),
        PeerResponse::Joined(Err(f)) => Err(format!("{f:?}")),
        _ => Err("unexpected answer".into()),
    }
}
