//! The relay's protocols between nodes: following a stream (a streaming exchange of
//! [`FeedFrame`]s, media as it is after each frame's header), asking where a node stands in
//! a stream, and fetching a file a node holds (the file as the message's body).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tessera_cluster::wire::{Duplex, LinkError, MessageSink, MessageSource};
use tessera_cluster::{Access, CallError, ClusterService, Protocol};
use tessera_raft::NodeId;
use tessera_relay::frame::{self, FeedFrame, FrameError};
use tokio::sync::mpsc;

use super::feeds::FeedRegistry;
use super::MediaFile;
use crate::store::{Held, Numbering};

/// Follows a live stream from a position held (journal, newest sequence number): answered
/// at once, then [`FeedFrame`]s until either side closes; the follower sends back the
/// newest sequence number it has applied, as it goes.
pub(super) struct Subscribe;

impl Protocol for Subscribe {
    const NAME: &'static str = "relay.subscribe";
    const ACCESS: Access = Access::Member;
    type Request = SubscribeRequest;
    type Response = ();
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SubscribeRequest {
    pub stream: String,
    pub position: Option<(u64, u64)>,
}

/// Where a node stands in a stream, if it holds it.
pub(super) struct Position;

impl Protocol for Position {
    const NAME: &'static str = "relay.position";
    const ACCESS: Access = Access::Member;
    type Request = String;
    type Response = Option<Held>;
}

/// A segment or init segment of a stream: answered whether the node holds it, then (if it
/// does) one message whose body is the file.
pub(super) struct Fetch;

impl Protocol for Fetch {
    const NAME: &'static str = "relay.fetch";
    const ACCESS: Access = Access::Member;
    type Request = FetchRequest;
    type Response = bool;
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FetchRequest {
    pub stream: String,
    pub rendition: String,
    pub file: MediaFile,
}

/// Serves this node's journals and files to the other nodes.
pub fn serve(cluster: &ClusterService, feeds: Arc<FeedRegistry>) {
    let registry = feeds.clone();
    cluster.transport.serve_streams::<Subscribe, _, _>(move |peer, request, opening| {
        let feeds = registry.clone();
        async move {
            let from = peer.id();
            tracing::info!(stream = request.stream, node = from, position = ?request.position, "node follows the stream");
            let frames = feeds.subscribe(&request.stream, request.position);
            if let Ok(duplex) = opening.accept(&()).await {
                pump(duplex, frames, from, &request.stream).await;
            }
        }
    });
    let registry = feeds.clone();
    cluster.transport.serve::<Position, _, _>(move |_, stream| {
        let held = registry.held(&stream);
        async move { held }
    });
    cluster.transport.serve_streams::<Fetch, _, _>(move |_, request, opening| {
        let found = feeds.file(&request.stream, &request.rendition, request.file);
        async move {
            let Some(data) = found else { return opening.refuse(&false).await };
            if let Ok(mut duplex) = opening.accept(&true).await {
                if duplex.send.send(&[], data.chunks()).await.is_ok() && duplex.send.finish().is_ok() {
                    // The far side reads the file, then goes away.
                    let _ = duplex.recv.next().await;
                }
            }
        }
    });
}

/// Sends a subscriber its frames until it goes away. Its half of the stream carries its
/// acknowledgements: the newest sequence number it has applied, as it goes.
async fn pump(duplex: Duplex, mut frames: mpsc::Receiver<FeedFrame>, from: NodeId, stream: &str) {
    let Duplex { mut send, mut recv } = duplex;
    let acks = async {
        while let Ok(Some(ack)) = recv.next().await {
            if let Ok(seq) = <[u8; 8]>::try_from(&ack.header[..]) {
                metrics::gauge!("tessera_relay_subscriber_acked_seq", "stream" => stream.to_string(), "node" => from.to_string())
                    .set(u64::from_be_bytes(seq) as f64);
            }
        }
    };
    let frames = async {
        while let Some(frame) = frames.recv().await {
            let media_items = frame.items.iter().filter(|i| i.event.segment().is_some()).count();
            let sent = match frame::encode(frame) {
                Ok((header, body)) => send.send(&header, &body).await,
                Err(e) => Err(LinkError::Decode(e)),
            };
            match sent {
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

/// Why a subscription stopped delivering.
#[derive(Debug, thiserror::Error)]
pub(super) enum FeedError {
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("{0}")]
    Frame(#[from] FrameError),
}

/// A subscription's incoming frames.
pub(super) struct FeedFrames(MessageSource);

impl FeedFrames {
    /// The next frame; `None` once the origin closed the subscription. Not cancel-safe:
    /// read it from one task.
    pub(super) async fn next(&mut self) -> Result<Option<FeedFrame>, FeedError> {
        match self.0.next().await? {
            Some(message) => Ok(Some(frame::decode(&message.header, message.body)?)),
            None => Ok(None),
        }
    }
}

/// A subscription's acknowledgements to the node it follows.
pub(super) struct FeedAcks(MessageSink);

impl FeedAcks {
    /// Tells the origin the newest sequence number applied here.
    pub(super) async fn ack(&mut self, seq: u64) -> Result<(), LinkError> {
        self.0.send(&seq.to_be_bytes(), &[]).await.map(|_| ())
    }
}

/// Follows `stream` on node `target` (its origin, or a node relaying it).
pub(super) async fn subscribe(
    cluster: &ClusterService,
    target: NodeId,
    addr: &str,
    stream: &str,
    position: Option<(u64, u64)>,
) -> Result<(FeedFrames, FeedAcks), CallError> {
    let request = SubscribeRequest { stream: stream.to_string(), position };
    let ((), duplex) = cluster.transport.open::<Subscribe>(target, addr, &request).await?;
    Ok((FeedFrames(duplex.recv), FeedAcks(duplex.send)))
}

/// Where node `id` (at `addr`) stands in `stream`; `None` if it does not answer in time.
pub(crate) async fn position_of(cluster: &ClusterService, id: NodeId, addr: &str, stream: &str) -> Option<Held> {
    cluster.transport.call::<Position>(Some(id), addr, &stream.to_string()).await.ok().flatten()
}

/// The file from node `id`, if it holds it.
pub(super) async fn fetch(cluster: &ClusterService, id: NodeId, addr: &str, request: FetchRequest) -> Option<Bytes> {
    let (found, mut duplex) = cluster.transport.open::<Fetch>(id, addr, &request).await.ok()?;
    if !found {
        return None;
    }
    let file = duplex.recv.next().await.ok()??;
    let _ = duplex.send.finish();
    Some(file.body)
}

/// Where every other node stands in `stream` (those that answer within `within`).
pub async fn positions(cluster: &ClusterService, stream: &str, within: Duration) -> Vec<(NodeId, Option<Held>)> {
    let asks = cluster.peers().into_iter().map(|(id, addr)| async move {
        (id, tokio::time::timeout(within, position_of(cluster, id, &addr, stream)).await.ok().flatten())
    });
    futures::future::join_all(asks).await
}

/// The numbers that carry on from every other node's holding of `stream`.
pub async fn numbering(cluster: &ClusterService, stream: &str, within: Duration) -> Option<Numbering> {
    let held = positions(cluster, stream, within).await.into_iter().filter_map(|(_, h)| h.map(|h| h.next));
    held.reduce(Numbering::max)
}
