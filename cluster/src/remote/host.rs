//! The hosting side of a link: starting actors of a kind for other nodes, and telling each
//! when its owner is gone.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{encode, read_frames, write_frames, Encoded, Incoming, LinkConfig, LinkFrame, QueueError};
use super::{RemoteKind, Start};
use crate::protocol::Peer;
use crate::transport::QuicTransport;

/// An actor this node runs for an owner on another node. Called from the link's task:
/// neither method may block.
pub trait Hosted<K: RemoteKind>: Send + 'static {
    /// A message from the owner, with its media.
    fn deliver(&mut self, msg: K::In, body: Bytes);
    /// The owner stopped the actor, let go of it, or is gone: the actor is to stop (and
    /// say so through its [`Outbox`]). Called once; nothing is delivered after it.
    fn owner_gone(&mut self, why: &str);
}

/// How a hosted actor talks to its owner. Clones share one bounded queue; when the last
/// clone is dropped without [`stop`](Self::stop), the owner is told the actor stopped.
pub struct Outbox<K: RemoteKind> {
    data: mpsc::Sender<Encoded>,
    control: mpsc::Sender<(Encoded, bool)>,
    _kind: PhantomData<K>,
}

impl<K: RemoteKind> Clone for Outbox<K> {
    fn clone(&self) -> Self {
        Outbox { data: self.data.clone(), control: self.control.clone(), _kind: PhantomData }
    }
}

impl<K: RemoteKind> Outbox<K> {
    /// Queues a message for the owner, its media as `body`; never waits.
    pub fn try_send(&self, msg: K::Out, body: Bytes) -> Result<(), QueueError> {
        let frame = encode(&LinkFrame::Message(msg), body).map_err(|_| QueueError::Closed)?;
        self.data.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                metrics::counter!("tessera_remote_mailbox_drops_total", "kind" => K::NAME, "side" => "host")
                    .increment(1);
                QueueError::Full
            }
            mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })
    }

    /// The actor stopped: the owner gets [`super::Down::Stopped`] with `why` after what is
    /// already queued.
    pub fn stop(&self, why: &str) {
        let _ = self.control.try_send((Encoded::stop(why), true));
    }
}

/// Serves actors of kind `K` on this node: `start` is asked for each one an owner spawns,
/// and answers the actor, or why it will not run one.
pub fn host<K, F, Fut>(transport: &QuicTransport, config: LinkConfig, start: F)
where
    K: RemoteKind,
    F: Fn(Peer, K::Args, Outbox<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Box<dyn Hosted<K>>, String>> + Send + 'static,
{
    let start = Arc::new(start);
    transport.serve_streams::<Start<K>, _, _>(move |peer, args, opening| {
        let start = start.clone();
        let config = config.clone();
        async move {
            let (data_tx, data) = mpsc::channel(config.capacity.max(1));
            let (control_tx, control) = mpsc::channel(16);
            let outbox = Outbox::<K> { data: data_tx, control: control_tx.clone(), _kind: PhantomData };
            let hosted = match start(peer, args, outbox).await {
                Ok(h) => h,
                Err(why) => {
                    tracing::info!(kind = K::NAME, owner = peer.id(), %why, "refused to host an actor");
                    return opening.refuse(&Err(why)).await;
                }
            };
            let Ok(duplex) = opening.accept(&Ok(())).await else {
                let mut hosted = hosted;
                hosted.owner_gone("the owner left before the actor started");
                return;
            };
            let writer = write_frames(K::NAME, duplex.send, control, data, Encoded::stop("stopped"));
            let frames = read_frames::<K::In>(K::NAME, duplex.recv);
            serve_link::<K>(peer, config, frames, control_tx, writer, hosted).await;
        }
    });
}

/// Delivers the owner's messages, answers its pings, and tells the actor once its owner is
/// gone (or lets the link end when the actor stopped).
async fn serve_link<K: RemoteKind>(
    peer: Peer,
    config: LinkConfig,
    mut frames: mpsc::Receiver<Incoming<K::In>>,
    control: mpsc::Sender<(Encoded, bool)>,
    mut writer: tokio::task::JoinHandle<()>,
    mut hosted: Box<dyn Hosted<K>>,
) {
    metrics::gauge!("tessera_remote_hosted", "kind" => K::NAME).increment(1.0);
    let owner = peer.id();
    let mut heard = Instant::now();
    let mut check = tokio::time::interval(config.ping.max(Duration::from_millis(10)));
    let gone = loop {
        tokio::select! {
            incoming = frames.recv() => match incoming {
                Some(Incoming::Frame(frame, body)) => {
                    heard = Instant::now();
                    match frame {
                        LinkFrame::Message(msg) => hosted.deliver(msg, body),
                        LinkFrame::Ping(n) => {
                            if let Ok(pong) = encode(&LinkFrame::<()>::Pong(n), Bytes::new()) {
                                let _ = control.try_send((pong, false));
                            }
                        }
                        LinkFrame::Stop(why) => break Some(format!("its owner stopped it: {why}")),
                        LinkFrame::Pong(_) => {}
                    }
                }
                Some(Incoming::Broken(e)) => break Some(format!("the link to node {owner} broke: {e}")),
                Some(Incoming::Ended) | None => break Some(format!("node {owner} ended the link")),
            },
            _ = check.tick() => {
                if heard.elapsed() > config.silence {
                    break Some(format!("node {owner} silent for {} ms", heard.elapsed().as_millis()));
                }
            }
            // The actor stopped and the writer said so: the link is over.
            _ = &mut writer => break None,
        }
    };
    if let Some(why) = gone {
        tracing::info!(kind = K::NAME, owner, reason = %why, "owner of a hosted actor gone");
        hosted.owner_gone(&why);
        // The actor's last words (its stop) still go out if the link is alive.
        let _ = tokio::time::timeout(config.silence, writer).await;
    }
    metrics::gauge!("tessera_remote_hosted", "kind" => K::NAME).decrement(1.0);
}
