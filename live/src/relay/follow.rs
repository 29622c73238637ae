//! The following side: a subscription per stream whose origin is another node, replayed
//! into this node's segment store and relayed to the nodes that follow this one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_raft::NodeId;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::feeds::FeedRegistry;
use super::pull::PullThrough;
use super::MediaFile;
use crate::store::SegmentStore;
use tessera_cluster::ClusterService;

/// A stream nobody here asked for in this long (and no node follows through this one) is
/// no longer followed.
const IDLE: Duration = Duration::from_secs(60);
/// How long a request for a stream new to this node waits for it to catch up with the
/// origin's live edge.
const FIRST_STATE: Duration = Duration::from_secs(3);
/// Bytes of pulled-through files kept.
const PULL_CACHE_BYTES: usize = 64 << 20;

/// The streams this node follows.
pub struct Followers {
    pub(super) store: Arc<SegmentStore>,
    pub(super) cluster: ClusterService,
    /// This node's journals, which it relays to the nodes that follow it.
    pub(super) feeds: Arc<FeedRegistry>,
    pull: PullThrough,
    /// Nodes each node feeds (see [`tessera_relay::tree`]).
    fanout: usize,
    following: Mutex<HashMap<String, Followed>>,
}

/// One stream followed.
struct Followed {
    /// When a viewer last asked for it.
    asked: Instant,
    /// Whether this node has caught up with the origin's live edge. A playlist answered
    /// before that would show a viewer an old edge: the player would start seconds behind
    /// the others and stall when the backlog ends.
    live: watch::Receiver<bool>,
}

impl Followers {
    pub fn new(
        store: Arc<SegmentStore>,
        cluster: ClusterService,
        feeds: Arc<FeedRegistry>,
        fanout: usize,
    ) -> Arc<Followers> {
        let pull = PullThrough::new(cluster.clone(), PULL_CACHE_BYTES);
        let followers =
            Arc::new(Followers { store, cluster, feeds: feeds.clone(), pull, fanout, following: Mutex::default() });
        // A node that follows through this one keeps this one following.
        let weak = Arc::downgrade(&followers);
        feeds.on_relay_wanted(Box::new(move |stream| {
            if let Some(followers) = weak.upgrade() {
                followers.start(stream);
            }
        }));
        followers
    }

    /// A finished file of the stream this node's store lacks, from another node: only for a
    /// stream whose origin is elsewhere. The caller asks only for files made already (a
    /// request for one not made yet is not sent around the cluster).
    pub async fn pull(&self, stream: &str, rendition: &str, file: MediaFile) -> Option<bytes::Bytes> {
        if self.store.publishing_here(stream) || self.origin_of(stream).is_none() {
            return None;
        }
        self.pull.get(stream, rendition, file).await
    }

    /// The stream's origin, when it is another node.
    fn origin_of(&self, stream: &str) -> Option<NodeId> {
        let me = self.cluster.identity.id;
        let origin = self.cluster.catalog.read_local(|c| c.streams.get(stream)?.origin).value?.node;
        (origin != me).then_some(origin)
    }

    /// The stream's origin, when it is another node, and the nodes to follow it through,
    /// nearest first, ending with the origin (see [`tessera_relay::tree`]), with their
    /// cluster addresses.
    pub(super) fn route(&self, stream: &str) -> Option<(NodeId, Vec<(NodeId, String)>)> {
        let me = self.cluster.identity.id;
        self.cluster
            .catalog
            .read_local(|c| {
                let origin = c.streams.get(stream)?.origin?.node;
                if origin == me {
                    return None;
                }
                let members: Vec<NodeId> = c.nodes.keys().copied().collect();
                let chain: Vec<(NodeId, String)> = tessera_relay::upstreams(stream, origin, &members, me, self.fanout)
                    .into_iter()
                    .filter_map(|id| c.nodes.get(&id).map(|n| (id, n.cluster_addr.clone())))
                    .collect();
                chain.last().is_some_and(|(id, _)| *id == origin).then_some((origin, chain))
            })
            .value
    }

    /// Follows `stream` if its origin is another node and this node does not yet; says
    /// when this node has caught up with the origin.
    pub(super) fn start(self: &Arc<Self>, stream: &str) -> Option<watch::Receiver<bool>> {
        let (caught_up, live) = {
            let mut following = self.following.lock().expect("following");
            if let Some(followed) = following.get_mut(stream) {
                followed.asked = Instant::now();
                return Some(followed.live.clone());
            }
            self.origin_of(stream)?;
            let (caught_up, live) = watch::channel(false);
            following.insert(stream.to_string(), Followed { asked: Instant::now(), live: live.clone() });
            (caught_up, live)
        };
        let this = self.clone();
        let name = stream.to_string();
        let span = tracing::info_span!("follow", stream, node = self.cluster.identity.id);
        tokio::spawn(async move { this.follow(&name, caught_up).await }.instrument(span));
        Some(live)
    }

    /// Called before a viewer's request is answered: follows the stream if its origin is
    /// another node, and for a stream new here waits (a little) until it has caught up.
    pub async fn ensure(self: &Arc<Self>, stream: &str) {
        if self.store.publishing_here(stream) {
            return;
        }
        let Some(mut live) = self.start(stream) else { return };
        if tokio::time::timeout(FIRST_STATE, live.wait_for(|live| *live)).await.is_err() {
            tracing::debug!(stream, "answering before this node caught up with the origin");
        }
    }

    /// Keeps following `stream` as if a viewer had asked for it (pre-positioning); false
    /// if its origin is not another node.
    pub fn hold(self: &Arc<Self>, stream: &str) -> bool {
        self.start(stream).is_some()
    }

    /// Where this node stands in `stream`, with the node it receives it from.
    pub fn held(&self, stream: &str) -> Option<crate::store::Held> {
        self.feeds.held(stream)
    }

    /// Whether this node follows `stream` and has caught up with its origin's live edge.
    pub fn caught_up(&self, stream: &str) -> bool {
        self.following.lock().expect("following").get(stream).is_some_and(|f| *f.live.borrow())
    }

    /// Nobody here asked for the stream lately and no node follows it through this one.
    pub(super) fn idle(&self, stream: &str) -> bool {
        let asked_lately =
            self.following.lock().expect("following").get(stream).is_some_and(|f| f.asked.elapsed() <= IDLE);
        !asked_lately && self.feeds.subscribers(stream) == 0
    }

    /// Forgets a stream no longer followed.
    pub(super) fn stopped(&self, stream: &str) {
        self.following.lock().expect("following").remove(stream);
    }
}
