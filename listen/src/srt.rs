//! The SRT listener driver: binds, decides admission from the streamid at the handshake
//! (refusals carry an SRT rejection code), and hands each accepted publisher to the caller
//! with its input ([`SrtInput`]).
//!
//! A connection is read from the moment it is accepted, whatever its caller is doing:
//! srt-tokio hands received data over through a short queue and, while that queue is full,
//! stops serving the connection altogether (no acknowledgements, no retransmission
//! requests). A publisher whose first seconds were not read (its node writing to the
//! catalog, starting the pipeline) then stalls for good and is cut as silent. The driver
//! drains the socket into a queue of its own ([`INPUT_BACKLOG`] messages, several seconds
//! at broadcast bitrates); what overflows it is dropped and counted, never the connection.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use srt_protocol::options::{KeySize, Passphrase};
use srt_protocol::settings::KeySettings;
pub use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::{SrtIncoming, SrtListener, SrtSocket};
use tokio::sync::{mpsc, oneshot};

use tessera_ingest::streamid::{self, Mode, StreamIdError, StreamRequest};

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct SrtListenerConfig {
    pub bind: SocketAddr,
    /// SRT latency (receive buffer delay) offered to callers.
    pub latency: Duration,
}

/// Messages read from a publisher and not yet taken by its session.
pub const INPUT_BACKLOG: usize = 8192;

/// An accepted publisher.
pub struct SrtPublisher<T> {
    pub request: StreamRequest,
    pub remote: SocketAddr,
    pub input: SrtInput,
    /// What the admission callback returned (for example a claim on the stream name).
    pub ticket: T,
}

/// What the admission callback learns about a caller besides its streamid.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub remote: SocketAddr,
    /// The caller asked for an encrypted connection (it has a passphrase).
    pub encrypted: bool,
}

/// An admitted caller: what to hand on, and the passphrase its connection must use.
pub struct Admission<T> {
    pub ticket: T,
    /// The stream's passphrase (10 to 79 characters); `None` for an unencrypted stream.
    pub passphrase: Option<String>,
}

/// A bound listener.
pub struct BoundSrtListener {
    pub local_addr: SocketAddr,
    listener: SrtListener,
    incoming: SrtIncoming,
    config: SrtListenerConfig,
}

/// The rejection code for a streamid that cannot be published.
pub fn reject_code(e: &StreamIdError) -> ServerRejectReason {
    match e {
        StreamIdError::UnsupportedMode(_) => ServerRejectReason::BadMode,
        StreamIdError::UnknownApp(_) => ServerRejectReason::Notfound,
        _ => ServerRejectReason::BadRequest,
    }
}

/// Binds the listener (port 0 picks a free port; see `local_addr`).
pub async fn bind(config: SrtListenerConfig) -> std::io::Result<BoundSrtListener> {
    let udp = tokio::net::UdpSocket::bind(config.bind).await?;
    let local_addr = udp.local_addr()?;
    let (listener, incoming) = SrtListener::builder().socket(udp).latency(config.latency).bind(local_addr).await?;
    Ok(BoundSrtListener { local_addr, listener, incoming, config })
}

impl BoundSrtListener {
    /// Accepts callers until `shutdown` completes. `admit` runs at the handshake, in order;
    /// `on_publisher` gets each caller whose handshake completed.
    pub async fn serve<T, A, P>(mut self, mut admit: A, on_publisher: P, shutdown: impl Future<Output = ()>)
    where
        T: Send + 'static,
        A: FnMut(&StreamRequest, Caller) -> Result<Admission<T>, ServerRejectReason>,
        P: Fn(SrtPublisher<T>) + Clone + Send + 'static,
    {
        tracing::info!(addr = %self.local_addr, latency_ms = self.config.latency.as_millis() as u64, "SRT listener ready");
        tokio::pin!(shutdown);
        loop {
            let request = tokio::select! {
                _ = &mut shutdown => break,
                r = self.incoming.incoming().next() => match r {
                    Some(r) => r,
                    None => break,
                },
            };
            let remote = request.remote();
            let raw = request.stream_id().map(|s| s.to_string()).unwrap_or_default();
            let decision = match streamid::parse(&raw) {
                Err(e) => {
                    tracing::warn!(%remote, streamid = %raw, error = %e, "SRT caller refused");
                    Err(reject_code(&e))
                }
                Ok(req) if req.mode != Mode::Publish => {
                    tracing::warn!(%remote, stream = %req.name, mode = ?req.mode, "SRT caller refused: only publishing is accepted here");
                    Err(ServerRejectReason::BadMode)
                }
                Ok(req) => {
                    match admit(&req, Caller { remote, encrypted: request.key_size() != KeySize::Unspecified }) {
                        Ok(ticket) => Ok((req, ticket)),
                        Err(code) => {
                            tracing::warn!(%remote, stream = %req.name, ?code, "SRT caller refused");
                            Err(code)
                        }
                    }
                }
            };
            match decision {
                Err(code) => {
                    metrics::counter!("tessera_ingest_rejected_total", "protocol" => "srt", "reason" => format!("{code:?}")).increment(1);
                    if let Err(e) = request.reject(RejectReason::Server(code)).await {
                        tracing::debug!(%remote, error = %e, "SRT reject not delivered");
                    }
                }
                Ok((req, Admission { ticket, passphrase })) => {
                    let on_publisher = on_publisher.clone();
                    let keys = match passphrase.map(Passphrase::try_from) {
                        None => None,
                        Some(Ok(passphrase)) => {
                            let key_size = match request.key_size() {
                                KeySize::Unspecified => KeySize::AES128,
                                k => k,
                            };
                            Some(KeySettings { key_size, passphrase })
                        }
                        Some(Err(e)) => {
                            tracing::error!(%remote, stream = %req.name, error = %e, "configured SRT passphrase is unusable");
                            let _ = request.reject(RejectReason::Server(ServerRejectReason::InternalServerError)).await;
                            continue;
                        }
                    };
                    tokio::spawn(async move {
                        match tokio::time::timeout(Duration::from_secs(10), request.accept(keys)).await {
                            Ok(Ok(socket)) => {
                                let input = SrtInput::drain(socket, remote);
                                on_publisher(SrtPublisher { request: req, remote, input, ticket })
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(%remote, stream = %req.name, error = %e, "SRT handshake failed")
                            }
                            Err(_) => tracing::warn!(%remote, stream = %req.name, "SRT handshake timed out"),
                        }
                    });
                }
            }
        }
        self.listener.close().await;
        tracing::info!(addr = %self.local_addr, "SRT listener closed");
    }
}

/// A publisher's input: what its connection delivered, in order, with when it arrived.
pub struct SrtInput {
    messages: mpsc::Receiver<std::io::Result<(Instant, Bytes)>>,
    stop: Option<oneshot::Sender<()>>,
    reader: tokio::task::JoinHandle<()>,
}

impl SrtInput {
    /// Starts reading `socket` at once, into a queue of [`INPUT_BACKLOG`] messages.
    fn drain(mut socket: SrtSocket, remote: SocketAddr) -> SrtInput {
        let (tx, messages) = mpsc::channel(INPUT_BACKLOG);
        let (stop, mut stopped) = oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut overflowing = false;
            loop {
                let next = tokio::select! {
                    _ = &mut stopped => break,
                    next = socket.next() => next,
                };
                match next {
                    Some(Ok(message)) => match tx.try_send(Ok(message)) {
                        Ok(()) => overflowing = false,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            metrics::counter!("tessera_srt_input_dropped_total").increment(1);
                            if !std::mem::replace(&mut overflowing, true) {
                                tracing::warn!(%remote, backlog = INPUT_BACKLOG, "publisher's input not taken in time: dropping it");
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    },
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                    None => break,
                }
            }
            if tokio::time::timeout(Duration::from_secs(5), socket.close()).await.is_err() {
                tracing::debug!(%remote, "SRT close timed out");
            }
        });
        SrtInput { messages, stop: Some(stop), reader }
    }

    /// The next message and when it arrived; `None` once the publisher went away.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<std::io::Result<(Instant, Bytes)>> {
        self.messages.recv().await
    }

    /// Closes the connection and waits (at most 5 s) for the publisher to hear it.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.reader).await;
    }
}
