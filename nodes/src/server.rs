//! The HTTP accept loop: HTTP/1.1 and HTTP/2 (h2c by prior knowledge, or h2 over TLS by
//! ALPN), a connection limit, the PROXY protocol (v1 and v2) from trusted proxies, and
//! graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tessera_license::viewer::proxy_protocol::{self, Parsed, ProxyHeaderError};
use tessera_license::viewer::{viewer_address, TrustedProxies, Viewer};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::request_metrics::{self, RouteClass};
use crate::NodeError;

/// Loads a TLS acceptor that offers h2 and http/1.1.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, NodeError> {
    let tls = |e: String| NodeError::Tls(e);
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).map_err(|e| tls(format!("{}: {e}", cert.display())))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| tls(format!("{}: {e}", cert.display())))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).map_err(|e| tls(format!("{}: {e}", key.display())))?,
    ))
    .map_err(|e| tls(format!("{}: {e}", key.display())))?
    .ok_or_else(|| tls(format!("{}: no private key", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What the accept loop takes from whom.
pub struct Limits {
    /// Open connections at most; more are refused at once.
    pub max_connections: usize,
    /// Peers whose PROXY protocol header (before TLS, if any) names the client.
    pub trusted: Arc<TrustedProxies>,
}

/// How long a connection has to send its PROXY header, and its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Serves `app` until `shutdown` turns true, then lets open requests finish (up to 5 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let (mut stream, peer) = tokio::select! {
            _ = until_true(&mut shutdown) => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            metrics::counter!("tessera_http_connections_refused_total").increment(1);
            tracing::warn!(%peer, max_connections = limits.max_connections, "connection limit reached; refusing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, builder, tls, watcher) = (app.clone(), builder.clone(), tls.clone(), graceful.watcher());
        let trusted = limits.trusted.trusts(peer.ip());
        let proxies = limits.trusted.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // A trusted proxy may say whom the connection is from before anything else.
            let remote = if trusted {
                match tokio::time::timeout(HANDSHAKE, proxy_header(&mut stream)).await {
                    Ok(Ok(source)) => source.unwrap_or(peer),
                    Ok(Err(e)) => {
                        metrics::counter!("tessera_http_proxy_header_errors_total").increment(1);
                        tracing::warn!(%peer, error = %e, "bad PROXY protocol header; closing");
                        return;
                    }
                    Err(_) => return,
                }
            } else {
                peer
            };
            // Each request carries the client's address and its viewer (behind a trusted
            // proxy, whom the proxy names) in its extensions, and is timed for
            // `tessera_http_request_duration_seconds`. The router is shared as it is, never
            // rebuilt for a connection, and no middleware is boxed around it.
            let proxies = proxies.clone();
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let started = std::time::Instant::now();
                let class = RouteClass::of(request.uri().path(), request.uri().query());
                let viewer = viewer_address(remote.ip(), request.headers(), &proxies);
                request.extensions_mut().insert(axum::extract::ConnectInfo(remote));
                request.extensions_mut().insert(Viewer(viewer));
                let answer = tower::ServiceExt::oneshot(app.clone(), request);
                async move {
                    let response = answer.await;
                    if let Ok(r) = &response {
                        request_metrics::record(class, r.status(), started);
                    }
                    response
                }
            });
            match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).into_owned();
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await.is_err() {
        tracing::warn!("HTTP connections still open after 5 s; closing");
    }
}

/// Why a connection's PROXY header could not be read.
#[derive(Debug, thiserror::Error)]
enum ProxyReadError {
    #[error("{0}")]
    Header(#[from] ProxyHeaderError),
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    #[error("closed before its first request")]
    Closed,
}

/// Reads a PROXY protocol header off the start of `stream`, if it begins with one: the
/// client it names (`None`: none named, or no header). Only the header's bytes are taken.
async fn proxy_header(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyReadError> {
    let mut buf = vec![0u8; proxy_protocol::V2_MAX];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(ProxyReadError::Closed);
        }
        match proxy_protocol::parse(&buf[..n])? {
            Parsed::NotProxy => return Ok(None),
            Parsed::Header { source, len } => {
                stream.read_exact(&mut buf[..len]).await?;
                return Ok(source);
            }
            // The rest of the header is on its way: look again shortly.
            Parsed::Incomplete => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Completes when the watched flag turns true (or its sender is gone).
pub async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
