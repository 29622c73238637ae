//! Actors on other nodes: one mechanism, over the transport, that any concern uses to start
//! an actor on another node, talk to it, and learn when it is gone.
//!
//! A concern declares a [`RemoteKind`]: a name, the arguments an actor of that kind is
//! started with, what its owner sends it ([`RemoteKind::In`]) and what it sends back
//! ([`RemoteKind::Out`]). Each message's media travels as the wire message's body, as it
//! is. The hosting node serves the kind with [`host`]; an owner starts one with [`spawn`]
//! and holds a [`RemoteRef`].
//!
//! # Contract
//! - **Bounded mailboxes.** Each direction queues at most [`LinkConfig::capacity`]
//!   messages; [`RemoteRef::try_send`] and [`Outbox::try_send`] never wait and answer
//!   [`QueueError::Full`] when the far side or the network lags, so the sender applies its
//!   own policy (for media: drop until the next decodable point, newest wins). Drops are
//!   counted (`tessera_remote_mailbox_drops_total{kind,side}`).
//! - **Link and monitor.** The owner pings every [`LinkConfig::ping`]; each side takes the
//!   other as gone after [`LinkConfig::silence`] without a message. Exactly one
//!   [`RemoteEvent::Down`] reaches the owner: [`Down::Stopped`] when the actor stopped and
//!   said why, [`Down::Lost`] when the link broke or fell silent (the node died or is cut
//!   off). The hosted actor is told its owner is gone ([`Hosted::owner_gone`]) when the
//!   owner stops it, drops every [`RemoteRef`], or falls silent: neither side outlives the
//!   link for longer than the silence bound.
//! - **Calls** are messages whose answer comes back as an `Out` message; the owner waits
//!   for it with a timeout of its own. The round trip of the link is measured by its pings
//!   (`tessera_remote_round_trip_seconds{kind}`); the bytes each way are counted
//!   (`tessera_remote_bytes_total{kind,direction}`).
//! - Only members may host or own (the protocol is [`Access::Member`]); the host may refuse
//!   to start an actor (no capacity, draining), and says why.

mod host;
mod owner;
#[cfg(test)]
mod tests;

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::protocol::{Access, Protocol};

pub use host::{host, Hosted, Outbox};
pub use owner::{spawn, RemoteRef, SpawnError};

/// A kind of actor that runs on another node than its owner.
pub trait RemoteKind: Send + Sync + 'static {
    /// Unique among the protocols of a cluster, `concern.actor` by convention.
    const NAME: &'static str;
    /// What an actor of this kind is started with.
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// From the owner to the actor.
    type In: Serialize + DeserializeOwned + Send + 'static;
    /// From the actor to its owner.
    type Out: Serialize + DeserializeOwned + Send + 'static;
}

/// The exchange that starts an actor of kind `K`: the host answers whether it did.
pub(crate) struct Start<K>(std::marker::PhantomData<K>);

impl<K: RemoteKind> Protocol for Start<K> {
    const NAME: &'static str = K::NAME;
    const ACCESS: Access = Access::Member;
    type Request = K::Args;
    type Response = Result<(), String>;
}

/// Bounds and timings of a link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Messages queued in each direction at most.
    pub capacity: usize,
    /// How often the owner pings.
    pub ping: Duration,
    /// Silence after which either side takes the other as gone.
    pub silence: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig { capacity: 256, ping: Duration::from_millis(200), silence: Duration::from_millis(1000) }
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the link's queue is full")]
    Full,
    #[error("the link is closed")]
    Closed,
}

/// What reaches the owner of a remote actor.
#[derive(Debug)]
pub enum RemoteEvent<T> {
    /// A message from the actor, with its media.
    Message(T, Bytes),
    /// The actor is gone; nothing follows.
    Down(Down),
}

/// How a remote actor went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// It stopped, and said why.
    Stopped(String),
    /// The link broke or fell silent: its node died, restarted or is cut off. The actor is
    /// stopped by its host once it notices (within the silence bound).
    Lost(String),
}

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Down::Stopped(why) => write!(f, "stopped: {why}"),
            Down::Lost(why) => write!(f, "lost: {why}"),
        }
    }
}

/// The frames of a link, in each message's header; a message's media is its body.
#[derive(Debug, Serialize, Deserialize)]
enum LinkFrame<T> {
    /// A message for (or from) the actor.
    Message(T),
    /// From the owner: it is alive. Answered by `Pong` with the same number (microseconds
    /// since the link opened, the owner's clock).
    Ping(u64),
    Pong(u64),
    /// The sender ends the link: the actor stopped (host) or is to stop (owner), and why.
    Stop(String),
}

/// A frame ready for the wire: its header, and its media.
struct Encoded {
    header: Vec<u8>,
    body: Bytes,
}

fn encode<T: Serialize>(frame: &LinkFrame<T>, body: Bytes) -> Result<Encoded, postcard::Error> {
    Ok(Encoded { header: postcard::to_allocvec(frame)?, body })
}

impl Encoded {
    fn stop(why: &str) -> Encoded {
        let header = postcard::to_allocvec(&LinkFrame::<()>::Stop(why.to_string())).expect("a string encodes");
        Encoded { header, body: Bytes::new() }
    }
}

/// What the reading half of a link hands its side.
enum Incoming<T> {
    Frame(LinkFrame<T>, Bytes),
    /// The far side finished its half.
    Ended,
    Broken(String),
}

/// Reads a link's frames on a task of its own (reading is not cancel-safe) until the far
/// side finishes, the link breaks, or nobody listens.
fn read_frames<T: DeserializeOwned + Send + 'static>(
    kind: &'static str,
    mut source: crate::wire::MessageSource,
) -> tokio::sync::mpsc::Receiver<Incoming<T>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let received = metrics::counter!("tessera_remote_bytes_total", "kind" => kind, "direction" => "received");
    tokio::spawn(async move {
        loop {
            let message = source.next().await;
            if let Ok(Some(m)) = &message {
                received.increment((8 + m.header.len() + m.body.len()) as u64);
            }
            let incoming = match message {
                Ok(Some(m)) => match postcard::from_bytes::<LinkFrame<T>>(&m.header) {
                    Ok(frame) => Incoming::Frame(frame, m.body),
                    Err(e) => Incoming::Broken(format!("malformed frame: {e}")),
                },
                Ok(None) => Incoming::Ended,
                Err(e) => Incoming::Broken(e.to_string()),
            };
            let last = !matches!(incoming, Incoming::Frame(..));
            if tx.send(incoming).await.is_err() || last {
                return;
            }
        }
    });
    rx
}

/// Writes a link's frames on a task of its own: `control` first (pings, pongs, a stop),
/// then `data`. Ends after writing a stop, or `closing` once every data sender is gone;
/// either way it finishes the stream so the far side reads the end after it.
fn write_frames(
    kind: &'static str,
    mut sink: crate::wire::MessageSink,
    mut control: tokio::sync::mpsc::Receiver<(Encoded, bool)>,
    mut data: tokio::sync::mpsc::Receiver<Encoded>,
    closing: Encoded,
) -> tokio::task::JoinHandle<()> {
    let sent = metrics::counter!("tessera_remote_bytes_total", "kind" => kind, "direction" => "sent");
    tokio::spawn(async move {
        loop {
            let (frame, last) = tokio::select! {
                biased;
                c = control.recv() => match c {
                    Some(c) => c,
                    None => return,
                },
                d = data.recv() => match d {
                    Some(d) => (d, false),
                    None => (Encoded { header: closing.header.clone(), body: Bytes::new() }, true),
                },
            };
            match sink.send(&frame.header, &[frame.body]).await {
                Ok(n) => sent.increment(n as u64),
                Err(_) => return,
            }
            if last {
                let _ = sink.finish();
                return;
            }
        }
    })
}
