//! The owner's side of a link: starting a remote actor, its handle, and its monitor.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{encode, read_frames, write_frames, Down, Encoded, Incoming, LinkConfig, LinkFrame, QueueError};
use super::{RemoteEvent, RemoteKind, Start};
use crate::transport::{CallError, QuicTransport};
use crate::NodeId;

/// Why a remote actor was not started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The node could not be asked.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The node would not start it (it has no room, it is draining...).
    #[error("node {node} refused: {why}")]
    Refused { node: NodeId, why: String },
}

/// A handle on an actor running on another node. Dropping every clone stops the actor.
pub struct RemoteRef<K: RemoteKind> {
    node: NodeId,
    data: mpsc::Sender<Encoded>,
    control: mpsc::Sender<(Encoded, bool)>,
    _kind: PhantomData<K>,
}

impl<K: RemoteKind> Clone for RemoteRef<K> {
    fn clone(&self) -> Self {
        RemoteRef { node: self.node, data: self.data.clone(), control: self.control.clone(), _kind: PhantomData }
    }
}

impl<K: RemoteKind> std::fmt::Debug for RemoteRef<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", K::NAME, self.node)
    }
}

impl<K: RemoteKind> RemoteRef<K> {
    /// The node the actor runs on.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Queues a message for the actor, its media as `body`; never waits.
    pub fn try_send(&self, msg: K::In, body: Bytes) -> Result<(), QueueError> {
        let frame = encode(&LinkFrame::Message(msg), body).map_err(|_| QueueError::Closed)?;
        self.data.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                metrics::counter!("tessera_remote_mailbox_drops_total", "kind" => K::NAME, "side" => "owner")
                    .increment(1);
                QueueError::Full
            }
            mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })
    }

    /// Asks the actor to stop, after what is already queued for it; its
    /// [`Down::Stopped`] follows.
    pub fn stop(&self, why: &str) {
        let _ = self.control.try_send((Encoded::stop(why), true));
    }
}

/// Starts an actor of kind `K` on node `node` (at `addr`) with `args`. What it sends, and
/// then exactly one [`RemoteEvent::Down`], go to `deliver`, from a task of the link's own;
/// when `deliver` answers false (its receiver is gone) the actor is stopped.
pub async fn spawn<K: RemoteKind>(
    transport: &QuicTransport,
    node: NodeId,
    addr: &str,
    args: &K::Args,
    config: &LinkConfig,
    deliver: impl FnMut(RemoteEvent<K::Out>) -> bool + Send + 'static,
) -> Result<RemoteRef<K>, SpawnError> {
    let (answer, duplex) = transport.open::<Start<K>>(node, addr, args).await?;
    answer.map_err(|why| SpawnError::Refused { node, why })?;
    let (data_tx, data) = mpsc::channel(config.capacity.max(1));
    let (control_tx, control) = mpsc::channel(16);
    let writer = write_frames(K::NAME, duplex.send, control, data, Encoded::stop("its owner let go of it"));
    let frames = read_frames::<K::Out>(K::NAME, duplex.recv);
    tokio::spawn(monitor::<K>(node, config.clone(), frames, control_tx.clone(), writer, deliver));
    metrics::counter!("tessera_remote_spawns_total", "kind" => K::NAME).increment(1);
    Ok(RemoteRef { node, data: data_tx, control: control_tx, _kind: PhantomData })
}

/// Pings the actor, delivers what it sends, and says once how it went down.
async fn monitor<K: RemoteKind>(
    node: NodeId,
    config: LinkConfig,
    mut frames: mpsc::Receiver<Incoming<K::Out>>,
    control: mpsc::Sender<(Encoded, bool)>,
    writer: tokio::task::JoinHandle<()>,
    mut deliver: impl FnMut(RemoteEvent<K::Out>) -> bool + Send + 'static,
) {
    metrics::gauge!("tessera_remote_links", "kind" => K::NAME).increment(1.0);
    let opened = Instant::now();
    let mut ping = tokio::time::interval(config.ping);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let down = loop {
        tokio::select! {
            incoming = frames.recv() => match incoming {
                Some(Incoming::Frame(frame, body)) => {
                    heard = Instant::now();
                    match frame {
                        LinkFrame::Message(msg) => {
                            if !deliver(RemoteEvent::Message(msg, body)) {
                                let _ = control.try_send((Encoded::stop("its owner is gone"), true));
                                break None;
                            }
                        }
                        LinkFrame::Pong(sent) => {
                            let rtt = opened.elapsed().saturating_sub(Duration::from_micros(sent));
                            metrics::histogram!("tessera_remote_round_trip_seconds", "kind" => K::NAME)
                                .record(rtt.as_secs_f64());
                        }
                        LinkFrame::Stop(why) => break Some(Down::Stopped(why)),
                        LinkFrame::Ping(_) => {}
                    }
                }
                Some(Incoming::Broken(e)) => break Some(Down::Lost(format!("node {node}: {e}"))),
                Some(Incoming::Ended) | None => {
                    break Some(Down::Lost(format!("node {node} ended the link without a word")))
                }
            },
            _ = ping.tick() => {
                if heard.elapsed() > config.silence {
                    break Some(Down::Lost(format!("node {node} silent for {} ms", heard.elapsed().as_millis())));
                }
                let micros = opened.elapsed().as_micros() as u64;
                if let Ok(frame) = encode(&LinkFrame::<()>::Ping(micros), Bytes::new()) {
                    let _ = control.try_send((frame, false));
                }
            }
        }
    };
    metrics::gauge!("tessera_remote_links", "kind" => K::NAME).decrement(1.0);
    if let Some(down) = down {
        let how = if matches!(down, Down::Stopped(_)) { "stopped" } else { "lost" };
        metrics::counter!("tessera_remote_downs_total", "kind" => K::NAME, "how" => how).increment(1);
        // Nothing more goes out: the actor is gone, and a send to it says the link is closed.
        writer.abort();
        deliver(RemoteEvent::Down(down));
    }
}
