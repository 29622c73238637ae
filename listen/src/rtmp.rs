//! The RTMP listener driver: TCP accept, the RTMP handshake and chunk/command session
//! (`rml_rtmp`, sans-IO), admission at `publish`, and hand-off of each admitted publisher's
//! FLV audio and video tags through a bounded channel. It owns sockets only; the tags are
//! parsed by `tessera_ingest::flv` wherever the caller runs its pipeline.
//!
//! URL form: `rtmp://host/live/NAME` (the stream key is NAME, optionally `NAME?token=...`).
//! Refusals: a `connect` to another application gets `NetConnection.Connect.Rejected`; a
//! refused `publish` gets `NetStream.Publish.BadName` (or `.Unauthorized` when the admission
//! callback says so), then the connection is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use tessera_ingest::streamid::{valid_name, Mode, StreamRequest};

/// Where to listen.
#[derive(Debug, Clone)]
pub struct RtmpListenerConfig {
    pub bind: SocketAddr,
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
}

/// One FLV tag from a publisher.
#[derive(Debug, Clone)]
pub enum RtmpMedia {
    Video { timestamp_ms: u32, data: Bytes },
    Audio { timestamp_ms: u32, data: Bytes },
}

/// An admitted publisher. The channel closes when the publisher stops or disconnects.
pub struct RtmpPublisher<T> {
    pub request: StreamRequest,
    pub remote: SocketAddr,
    pub media: mpsc::Receiver<RtmpMedia>,
    pub ticket: T,
}

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmpRefusal {
    BadName,
    Unauthorized,
}

/// A bound listener.
pub struct BoundRtmpListener {
    pub local_addr: SocketAddr,
    listener: TcpListener,
    config: RtmpListenerConfig,
}

pub async fn bind(config: RtmpListenerConfig) -> std::io::Result<BoundRtmpListener> {
    let listener = TcpListener::bind(config.bind).await?;
    Ok(BoundRtmpListener { local_addr: listener.local_addr()?, listener, config })
}

/// Splits a stream key `NAME?token=...` into the request it stands for.
pub fn parse_stream_key(key: &str) -> Option<StreamRequest> {
    let (name, query) = key.split_once('?').unwrap_or((key, ""));
    if !valid_name(name) {
        return None;
    }
    let token = query.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_string);
    Some(StreamRequest { name: name.to_string(), mode: Mode::Publish, user: None, token })
}

impl BoundRtmpListener {
    /// Accepts connections until `shutdown` completes.
    pub async fn serve<T, A, P>(self, admit: A, on_publisher: P, shutdown: impl Future<Output = ()>)
    where
        T: Send + 'static,
        A: Fn(&StreamRequest, SocketAddr) -> Result<T, RtmpRefusal> + Clone + Send + Sync + 'static,
        P: Fn(RtmpPublisher<T>) + Clone + Send + Sync + 'static,
    {
        tracing::info!(addr = %self.local_addr, "RTMP listener ready");
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        tokio::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                _ = &mut shutdown => break,
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "RTMP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                metrics::counter!("tessera_ingest_rejected_total", "protocol" => "rtmp", "reason" => "connections")
                    .increment(1);
                tracing::warn!(%remote, "RTMP connection limit reached; refusing");
                continue;
            };
            let (admit, on_publisher, idle) = (admit.clone(), on_publisher.clone(), self.config.idle_timeout);
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                if let Err(e) = connection(stream, remote, admit, on_publisher, idle).await {
                    tracing::info!(%remote, reason = %e, "RTMP connection closed");
                }
                drop(permit);
            });
        }
        tracing::info!(addr = %self.local_addr, "RTMP listener closed");
    }
}

/// Why bytes from a publisher could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RtmpInputError {
    #[error("RTMP: {0:?}")]
    Session(rml_rtmp::sessions::ServerSessionError),
    /// `rml_rtmp` panicked on the chunk stream (it does on some malformed ones, such as a
    /// message whose length shrinks half way): contained, it ends only this connection.
    #[error("malformed chunk stream: {0}")]
    Malformed(String),
}

/// Hands a publisher's bytes to its RTMP session, containing a panic of the session's
/// parser to this connection.
pub fn session_input(session: &mut ServerSession, bytes: &[u8]) -> Result<Vec<ServerSessionResult>, RtmpInputError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(bytes))) {
        Ok(r) => r.map_err(RtmpInputError::Session),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser panicked".into());
            metrics::counter!("tessera_ingest_errors_total", "kind" => "rtmp_chunk_stream").increment(1);
            Err(RtmpInputError::Malformed(what))
        }
    }
}

/// Why an RTMP connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnectionEnd {
    #[error("no data for {} ms", .0.as_millis())]
    Idle(Duration),
    #[error("peer closed the connection")]
    PeerClosed,
    #[error("closed by the server")]
    ClosedHere,
    #[error("read: {0}")]
    Read(std::io::Error),
    #[error("write: {0}")]
    Write(std::io::Error),
    #[error("handshake: {0:?}")]
    Handshake(rml_rtmp::handshake::HandshakeError),
    #[error("RTMP: {0:?}")]
    Session(rml_rtmp::sessions::ServerSessionError),
    #[error(transparent)]
    Input(#[from] RtmpInputError),
}

async fn read_some(stream: &mut TcpStream, buf: &mut [u8], idle: Duration) -> Result<usize, ConnectionEnd> {
    match tokio::time::timeout(idle, stream.read(buf)).await {
        Err(_) => Err(ConnectionEnd::Idle(idle)),
        Ok(Err(e)) => Err(ConnectionEnd::Read(e)),
        Ok(Ok(0)) => Err(ConnectionEnd::PeerClosed),
        Ok(Ok(n)) => Ok(n),
    }
}

async fn connection<T, A, P>(
    mut stream: TcpStream,
    remote: SocketAddr,
    admit: A,
    on_publisher: P,
    idle: Duration,
) -> Result<(), ConnectionEnd>
where
    A: Fn(&StreamRequest, SocketAddr) -> Result<T, RtmpRefusal>,
    P: Fn(RtmpPublisher<T>),
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut handshake = Handshake::new(PeerType::Server);
    let remaining = loop {
        let n = read_some(&mut stream, &mut buf, idle).await?;
        match handshake.process_bytes(&buf[..n]).map_err(ConnectionEnd::Handshake)? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream.write_all(&response_bytes).await.map_err(ConnectionEnd::Write)?
            }
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                stream.write_all(&response_bytes).await.map_err(ConnectionEnd::Write)?;
                break remaining_bytes;
            }
        }
    };
    let (mut session, initial) = ServerSession::new(ServerSessionConfig::new()).map_err(ConnectionEnd::Session)?;
    let mut state = Conn { remote, sender: None, name: None, close: false };
    let mut pending = initial;
    pending.extend(session_input(&mut session, &remaining)?);
    loop {
        while !pending.is_empty() {
            let results = std::mem::take(&mut pending);
            for r in results {
                match r {
                    ServerSessionResult::OutboundResponse(p) => {
                        stream.write_all(&p.bytes).await.map_err(ConnectionEnd::Write)?
                    }
                    ServerSessionResult::RaisedEvent(e) => {
                        pending.extend(state.event(&mut session, e, &admit, &on_publisher)?)
                    }
                    ServerSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
        }
        if state.close {
            stream.flush().await.ok();
            return Err(ConnectionEnd::ClosedHere);
        }
        let n = read_some(&mut stream, &mut buf, idle).await?;
        pending = session_input(&mut session, &buf[..n])?;
    }
}

struct Conn {
    remote: SocketAddr,
    sender: Option<mpsc::Sender<RtmpMedia>>,
    name: Option<String>,
    close: bool,
}

impl Conn {
    fn event<T, A, P>(
        &mut self,
        session: &mut ServerSession,
        e: ServerSessionEvent,
        admit: &A,
        on_publisher: &P,
    ) -> Result<Vec<ServerSessionResult>, ConnectionEnd>
    where
        A: Fn(&StreamRequest, SocketAddr) -> Result<T, RtmpRefusal>,
        P: Fn(RtmpPublisher<T>),
    {
        let remote = self.remote;
        let rtmp = |r: Result<Vec<ServerSessionResult>, _>| r.map_err(ConnectionEnd::Session);
        match e {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                if app_name == "live" {
                    rtmp(session.accept_request(request_id))
                } else {
                    tracing::warn!(%remote, app = %app_name, "RTMP connect refused: unknown application");
                    self.close = true;
                    rtmp(session.reject_request(request_id, "NetConnection.Connect.Rejected", "unknown application"))
                }
            }
            ServerSessionEvent::ReleaseStreamRequested { request_id, .. } => rtmp(session.accept_request(request_id)),
            ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                let refusal = match parse_stream_key(&stream_key) {
                    None => RtmpRefusal::BadName,
                    // One publish per connection.
                    Some(_) if self.sender.is_some() => RtmpRefusal::BadName,
                    Some(req) => match admit(&req, remote) {
                        Ok(ticket) => {
                            let (tx, rx) = mpsc::channel(1024);
                            self.sender = Some(tx);
                            self.name = Some(req.name.clone());
                            tracing::info!(%remote, stream = %req.name, "RTMP publisher admitted");
                            on_publisher(RtmpPublisher { request: req, remote, media: rx, ticket });
                            return rtmp(session.accept_request(request_id));
                        }
                        Err(r) => r,
                    },
                };
                let code = match refusal {
                    RtmpRefusal::BadName => "NetStream.Publish.BadName",
                    RtmpRefusal::Unauthorized => "NetStream.Publish.Unauthorized",
                };
                tracing::warn!(%remote, key = %stream_key.split('?').next().unwrap_or(""), code, "RTMP publish refused");
                metrics::counter!("tessera_ingest_rejected_total", "protocol" => "rtmp", "reason" => code).increment(1);
                self.close = true;
                rtmp(session.reject_request(request_id, code, "publish refused"))
            }
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                self.forward(RtmpMedia::Video { timestamp_ms: timestamp.value, data });
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                self.forward(RtmpMedia::Audio { timestamp_ms: timestamp.value, data });
                Ok(Vec::new())
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                tracing::info!(%remote, stream = self.name.as_deref().unwrap_or(""), "RTMP publisher finished");
                self.sender = None;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn forward(&mut self, m: RtmpMedia) {
        let Some(tx) = &self.sender else { return };
        match tx.try_send(m) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("tessera_ingest_dropped_tags_total").increment(1);
            }
            // The session ended on our side (taken over, a limit, a failure): hang up.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.sender = None;
                self.close = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys() {
        let r = parse_stream_key("cam1").unwrap();
        assert_eq!((r.name.as_str(), r.token), ("cam1", None));
        let r = parse_stream_key("cam1?token=abc&x=1").unwrap();
        assert_eq!(r.token.as_deref(), Some("abc"));
        assert!(parse_stream_key("../x").is_none());
        assert!(parse_stream_key("").is_none());
    }
}
