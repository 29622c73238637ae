//! One QUIC endpoint per node: it serves the protocols registered on it and calls other
//! nodes', with mutual TLS against the cluster CA.
//!
//! One exchange per bidirectional stream, the caller finishing its side before it waits
//! (so nothing sent is lost on close). Connections are kept per node; an exchange left
//! unanswered makes the transport forget that connection, so a peer that restarted is
//! reached again at once rather than after QUIC's idle timeout.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use rustls::pki_types::CertificateDer;

use crate::host::Host;
use crate::identity::{server_name, NodeIdentity, CLUSTER_NAME};
use crate::protocol::{MemberCheck, Opening, Peer, Protocol, Registry};
use crate::tls::{self, TlsError};
use crate::wire::{self, Duplex, LinkError, WireError};
use crate::NodeId;

/// How long a call waits for its answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// A member that does not complete a handshake in this time is taken as down.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a caller has to send its request once it opened a stream.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to another node failed.
#[derive(Debug, thiserror::Error)]
#[error("node {} at {addr}, {protocol}: {failure}", node.map_or("?".to_string(), |n| n.to_string()))]
pub struct CallError {
    /// The node called, when known (a joiner calls by address).
    pub node: Option<NodeId>,
    pub addr: String,
    pub protocol: &'static str,
    #[source]
    pub failure: Failure,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The node could not be reached (down, partitioned, or it refused our certificate).
    #[error("unreachable: {0}")]
    Unreachable(LinkError),
    /// The exchange broke half way: the node may have acted on the request.
    #[error("exchange broke: {0}")]
    Broken(LinkError),
    /// The node refused the exchange before any handler saw it.
    #[error("refused: {0}")]
    Refused(WireError),
}

impl CallError {
    /// Whether the request certainly did not reach a handler.
    pub fn unreachable(&self) -> bool {
        matches!(self.failure, Failure::Unreachable(_) | Failure::Refused(WireError::Unauthenticated))
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot bind the cluster address {0}: {1}")]
    Socket(SocketAddr, std::io::Error),
}

/// A bound QUIC endpoint: serves the registered protocols and calls other nodes'.
#[derive(Clone)]
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
    client: quinn::ClientConfig,
    connections: Arc<Mutex<HashMap<NodeId, quinn::Connection>>>,
    registry: Arc<Registry>,
    started: Arc<std::sync::atomic::AtomicBool>,
}

impl QuicTransport {
    /// Binds `addr` with the node's identity. Nothing is served until [`start`](Self::start):
    /// callers' connections wait in the endpoint's queue meanwhile.
    pub fn bind(addr: SocketAddr, identity: &NodeIdentity) -> Result<Self, BindError> {
        let endpoint =
            quinn::Endpoint::server(tls::server_config(identity)?, addr).map_err(|e| BindError::Socket(addr, e))?;
        Self::over(endpoint, identity)
    }

    /// Binds `addr` on `host`: the machine's UDP socket, or a simulated network's.
    pub fn bind_in(addr: SocketAddr, identity: &NodeIdentity, host: &Host) -> Result<Self, BindError> {
        match host {
            Host::Machine => Self::bind(addr, identity),
            Host::Simulated(sim) => Self::bind_on(sim.network.bind(addr), identity, Some(sim.rng_seed(addr))),
        }
    }

    /// As [`bind`](Self::bind), on a datagram socket of the caller's (a simulated network),
    /// with QUIC's own random choices (connection ids, skipped packet numbers) drawn from
    /// `rng_seed` when given, so that a simulated run replays.
    pub fn bind_on(
        socket: Arc<dyn quinn::AsyncUdpSocket>,
        identity: &NodeIdentity,
        rng_seed: Option<[u8; 32]>,
    ) -> Result<Self, BindError> {
        let addr = socket.local_addr().map_err(|e| BindError::Socket(SocketAddr::from(([0, 0, 0, 0], 0)), e))?;
        let mut config = quinn::EndpointConfig::default();
        config.rng_seed(rng_seed);
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            config,
            Some(tls::server_config(identity)?),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| BindError::Socket(addr, e))?;
        Self::over(endpoint, identity)
    }

    fn over(endpoint: quinn::Endpoint, identity: &NodeIdentity) -> Result<Self, BindError> {
        Ok(QuicTransport {
            endpoint,
            client: tls::member_client_config(identity)?,
            connections: Arc::default(),
            registry: Arc::default(),
            started: Arc::default(),
        })
    }

    /// Starts serving the protocols registered so far, and those registered later from
    /// then on (before, a caller of one is told it is unknown). Once only.
    pub fn start(&self) {
        if !self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::spawn(accept(self.endpoint.clone(), self.registry.clone()));
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("bound")
    }

    /// Serves unary protocol `P` with `handler`.
    pub fn serve<P, F, Fut>(&self, handler: F)
    where
        P: Protocol,
        F: Fn(Peer, P::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = P::Response> + Send + 'static,
    {
        self.registry.unary::<P, F, Fut>(handler);
    }

    /// Serves streaming protocol `P`: `handler` accepts or refuses each opening.
    pub fn serve_streams<P, F, Fut>(&self, handler: F)
    where
        P: Protocol,
        F: Fn(Peer, P::Request, Opening<P>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.registry.streaming::<P, F, Fut>(handler);
    }

    /// How protocols open to [`crate::Access::Member`] tell members from other nodes.
    pub fn set_members(&self, check: MemberCheck) {
        self.registry.set_members(check);
    }

    /// A connection to node `target` (or, when its id is not known, to whichever node
    /// answers at `addr`).
    async fn connection(&self, target: Option<NodeId>, addr: &str) -> Result<quinn::Connection, LinkError> {
        if let Some(t) = target {
            if let Some(c) = self.connections.lock().expect("connections").get(&t) {
                if c.close_reason().is_none() {
                    return Ok(c.clone());
                }
            }
        }
        let sock = resolve(addr).await?;
        let name = target.map_or(CLUSTER_NAME.to_string(), server_name);
        let connecting = self.endpoint.connect_with(self.client.clone(), sock, &name)?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| LinkError::Timeout(CONNECT_TIMEOUT))??;
        if let Some(t) = target {
            self.connections.lock().expect("connections").insert(t, conn.clone());
        }
        Ok(conn)
    }

    /// Calls unary protocol `P` on node `target` at `addr` and waits (up to
    /// [`CALL_TIMEOUT`]) for its answer.
    pub async fn call<P: Protocol>(
        &self,
        target: Option<NodeId>,
        addr: &str,
        request: &P::Request,
    ) -> Result<P::Response, CallError> {
        let error = |failure| CallError { node: target, addr: addr.to_string(), protocol: P::NAME, failure };
        let conn = self.connection(target, addr).await.map_err(|e| error(Failure::Unreachable(e)))?;
        // Unanswered (failed, timed out, or given up by the caller): the connection may lead
        // to a process that is gone, or restarted with no memory of it, and QUIC would only
        // notice after its idle timeout. The next call makes a new one.
        let mut unanswered = Unanswered { transport: self, target, connection: conn.stable_id(), armed: true };
        let answer = tokio::time::timeout(CALL_TIMEOUT, exchange::<P>(&conn, request))
            .await
            .map_err(|_| error(Failure::Broken(LinkError::Timeout(CALL_TIMEOUT))))?
            .map_err(|e| error(Failure::Broken(e)))?;
        match answer {
            Ok(response) => {
                unanswered.armed = false;
                Ok(response)
            }
            Err(refused) => Err(error(Failure::Refused(refused))),
        }
    }

    /// Opens streaming protocol `P` on node `target`: its opening answer, and the stream
    /// for what follows.
    pub async fn open<P: Protocol>(
        &self,
        target: NodeId,
        addr: &str,
        request: &P::Request,
    ) -> Result<(P::Response, Duplex), CallError> {
        let error = |failure| CallError { node: Some(target), addr: addr.to_string(), protocol: P::NAME, failure };
        let conn = self.connection(Some(target), addr).await.map_err(|e| error(Failure::Unreachable(e)))?;
        let opened = async {
            let (mut send, mut recv) = conn.open_bi().await?;
            wire::write_value(&mut send, &(P::NAME, request)).await?;
            let answer: Result<P::Response, WireError> = wire::read_value(&mut recv).await?;
            Ok::<_, LinkError>((send, recv, answer))
        };
        let (send, recv, answer) = match tokio::time::timeout(CALL_TIMEOUT, opened).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                self.forget(target, conn.stable_id());
                return Err(error(Failure::Broken(e)));
            }
            Err(_) => return Err(error(Failure::Broken(LinkError::Timeout(CALL_TIMEOUT)))),
        };
        match answer {
            Ok(response) => Ok((response, Duplex::new(send, recv))),
            Err(refused) => Err(error(Failure::Refused(refused))),
        }
    }

    fn forget(&self, target: NodeId, connection: usize) {
        let mut connections = self.connections.lock().expect("connections");
        if connections.get(&target).is_some_and(|c| c.stable_id() == connection) {
            connections.remove(&target);
        }
    }

    /// Closes every connection and the endpoint, and drops the handlers.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"shutting down");
        self.registry.clear();
        self.connections.lock().expect("connections").clear();
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr, LinkError> {
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| LinkError::Resolve(addr.to_string()))
}

async fn exchange<P: Protocol>(
    conn: &quinn::Connection,
    request: &P::Request,
) -> Result<Result<P::Response, WireError>, LinkError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    wire::write_value(&mut send, &(P::NAME, request)).await?;
    send.finish()?;
    wire::read_value(&mut recv).await
}

/// Accepts connections and their exchanges until the endpoint closes.
async fn accept(endpoint: quinn::Endpoint, registry: Arc<Registry>) {
    while let Some(incoming) = endpoint.accept().await {
        let registry = registry.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            // rustls has checked any certificate presented against the cluster CA; it
            // names the node.
            let node = conn.peer_identity().and_then(|i| {
                let certs = i.downcast::<Vec<CertificateDer<'static>>>().ok()?;
                certs.first().and_then(tls::node_id_of)
            });
            let peer = Peer { node, addr: conn.remote_address() };
            while let Ok((send, mut recv)) = conn.accept_bi().await {
                let registry = registry.clone();
                tokio::spawn(async move {
                    // A caller without a certificate gets a few kilobytes to say what it wants.
                    let read = match peer.node {
                        Some(_) => wire::read(&mut recv).boxed(),
                        None => wire::read_at_most(&mut recv, wire::MAX_STRANGER_REQUEST, 0).boxed(),
                    };
                    let first = match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
                        Ok(Ok(Some(m))) => m,
                        Ok(Ok(None)) | Err(_) => return,
                        Ok(Err(e)) => {
                            tracing::debug!(from = ?peer.node, addr = %peer.addr, error = %e, "unreadable request");
                            return;
                        }
                    };
                    registry.dispatch(peer, &first.header, send, recv).await;
                });
            }
        });
    }
}

/// Forgets a cached connection when dropped armed: see [`QuicTransport::call`].
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

/// Calls unary protocol `P` on the node at `addr` without being a member: no certificate,
/// and the node trusted only if its CA has the SHA-256 `ca_sha256` (what a join token
/// names). On this machine the call goes out of an ephemeral port; on a simulated `host`,
/// from the address `from`.
pub async fn call_as_stranger<P: Protocol>(
    host: &Host,
    from: Option<SocketAddr>,
    addr: SocketAddr,
    ca_sha256: &str,
    request: &P::Request,
    within: Duration,
) -> Result<P::Response, CallError> {
    let error = |failure| CallError { node: None, addr: addr.to_string(), protocol: P::NAME, failure };
    let unreachable = |e: LinkError| error(Failure::Unreachable(e));
    let mut endpoint = match (host, from) {
        (Host::Simulated(sim), Some(from)) => {
            let mut config = quinn::EndpointConfig::default();
            config.rng_seed(Some(sim.rng_seed(from)));
            quinn::Endpoint::new_with_abstract_socket(
                config,
                None,
                sim.network.bind(from),
                Arc::new(quinn::TokioRuntime),
            )
        }
        _ => quinn::Endpoint::client("0.0.0.0:0".parse().expect("valid")),
    }
    .map_err(|e| unreachable(LinkError::Socket(e)))?;
    let config = tls::joiner_client_config(ca_sha256).map_err(|e| unreachable(LinkError::Tls(e)))?;
    endpoint.set_default_client_config(config);
    let connecting = endpoint.connect(addr, CLUSTER_NAME).map_err(|e| unreachable(e.into()))?;
    let conn = tokio::time::timeout(CALL_TIMEOUT, connecting)
        .await
        .map_err(|_| unreachable(LinkError::Timeout(CALL_TIMEOUT)))?
        .map_err(|e| unreachable(e.into()))?;
    let answer = tokio::time::timeout(within, exchange::<P>(&conn, request))
        .await
        .map_err(|_| error(Failure::Broken(LinkError::Timeout(within))))?
        .map_err(|e| error(Failure::Broken(e)))?;
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    answer.map_err(|refused| error(Failure::Refused(refused)))
}
