//! The following side: a subscription per stream whose origin is another node, replayed
//! into this node's segment store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use tessera_actors::{MediaSink, SessionEnd};
use tessera_raft::NodeId;
use tessera_relay::{FeedEvent, Mirror, MirrorStep};
use tracing::Instrument;

use super::pull::{MediaFile, PullThrough};
use crate::cluster::ClusterService;
use crate::store::SegmentStore;

/// A stream nobody here asked for in this long is no longer followed.
const IDLE: Duration = Duration::from_secs(60);
/// How long a request for a stream new to this node waits for it to catch up with the
/// origin's live edge.
const FIRST_STATE: Duration = Duration::from_secs(3);
/// Bytes of pulled-through files kept.
const PULL_CACHE_BYTES: usize = 64 << 20;
/// How often a follower checks the catalog for a new origin while it waits for media.
const ORIGIN_CHECK: Duration = Duration::from_millis(250);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The streams this node follows.
pub struct Followers {
    store: Arc<SegmentStore>,
    cluster: ClusterService,
    pull: PullThrough,
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
    pub fn new(store: Arc<SegmentStore>, cluster: ClusterService) -> Arc<Followers> {
        let pull = PullThrough::new(cluster.clone(), PULL_CACHE_BYTES);
        Arc::new(Followers { store, cluster, pull, following: Mutex::default() })
    }

    /// A file of the stream this node's store lacks, from another node: only for a stream
    /// whose origin is elsewhere, and for segments older than the newest held here (a
    /// request for one not made yet is not sent around the cluster).
    pub async fn pull(&self, stream: &str, rendition: &str, file: MediaFile) -> Option<bytes::Bytes> {
        if self.store.publishing_here(stream) || self.origin_of(stream).is_none() {
            return None;
        }
        if let (MediaFile::Segment(msn), Some(held)) = (file, self.store.held(stream)) {
            if msn >= held.last_msn {
                return None;
            }
        }
        self.pull.get(stream, rendition, file).await
    }

    /// The stream's origin, when it is another node: (id, cluster address).
    fn origin_of(&self, stream: &str) -> Option<(NodeId, String)> {
        let me = self.cluster.identity.id;
        self.cluster
            .catalog
            .read_local(|c| {
                let lease = c.streams.get(stream)?.origin?;
                let node = c.nodes.get(&lease.node)?;
                (lease.node != me).then(|| (lease.node, node.cluster_addr.clone()))
            })
            .value
    }

    /// Called before a viewer's request is answered: follows the stream if its origin is
    /// another node, and for a stream new here waits (a little) for its first state.
    pub async fn ensure(self: &Arc<Self>, stream: &str) {
        if self.store.publishing_here(stream) {
            return;
        }
        let (live, started) = {
            let mut following = self.following.lock().expect("following");
            if let Some(followed) = following.get_mut(stream) {
                followed.asked = Instant::now();
                (followed.live.clone(), None)
            } else if self.origin_of(stream).is_some() {
                let (caught_up, live) = watch::channel(false);
                following.insert(stream.to_string(), Followed { asked: Instant::now(), live: live.clone() });
                (live, Some(caught_up))
            } else {
                return;
            }
        };
        if let Some(caught_up) = started {
            let this = self.clone();
            let name = stream.to_string();
            let span = tracing::info_span!("follow", stream, node = self.cluster.identity.id);
            tokio::spawn(async move { this.follow(&name, caught_up).await }.instrument(span));
        }
        let mut live = live;
        if tokio::time::timeout(FIRST_STATE, live.wait_for(|live| *live)).await.is_err() {
            tracing::debug!(stream, "answering before this node caught up with the origin");
        }
    }

    fn idle(&self, stream: &str) -> bool {
        self.following.lock().expect("following").get(stream).is_none_or(|f| f.asked.elapsed() > IDLE)
    }

    /// Follows one stream while it has an origin elsewhere and viewers here.
    async fn follow(&self, stream: &str, caught_up: watch::Sender<bool>) {
        let mut mirror = Mirror::new();
        let mut replay = Replay { store: &self.store, stream, session: None };
        let mut retry = RETRY_MIN;
        while !self.idle(stream) {
            let Some((origin, addr)) = self.origin_of(stream) else {
                replay.end(SessionEnd::Closed);
                // Not live elsewhere (ended, or this node is now its origin): wait for a lease.
                tokio::time::sleep(RETRY_MAX).await;
                continue;
            };
            match self.cluster.transport.subscribe(origin, &addr, stream, mirror.position()).await {
                Ok(reader) => {
                    metrics::counter!("tessera_relay_subscriptions_total").increment(1);
                    tracing::info!(origin, position = ?mirror.position(), "following the origin");
                    retry = RETRY_MIN;
                    let (mut acks, mut frames) = (reader.acks, reader.frames);
                    // Frames are read by a task of their own (a read must not be cancelled
                    // half way), which ends when this loop drops its receiver.
                    let (tx, mut incoming) = tokio::sync::mpsc::channel(4);
                    tokio::spawn(async move {
                        loop {
                            let next = frames.next().await;
                            let stop = !matches!(next, Ok(Some(_)));
                            if tx.send(next).await.is_err() || stop {
                                return;
                            }
                        }
                    });
                    let mut check = tokio::time::interval(ORIGIN_CHECK);
                    loop {
                        let next = tokio::select! {
                            next = incoming.recv() => next.unwrap_or(Ok(None)),
                            _ = check.tick() => {
                                // A dead origin says nothing: the catalog says when another
                                // node took the stream over.
                                if self.idle(stream) || self.origin_of(stream).is_none_or(|(o, _)| o != origin) {
                                    break;
                                }
                                continue;
                            }
                        };
                        let frame = match next {
                            Ok(Some(frame)) => frame,
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(origin, error = %e, "subscription broken");
                                break;
                            }
                        };
                        for item in frame.items {
                            match mirror.accept(frame.journal, item) {
                                MirrorStep::Apply(event) => replay.apply(event),
                                MirrorStep::Restart => replay.end(SessionEnd::Closed),
                                MirrorStep::Skip => {}
                            }
                        }
                        if let Some((journal, seq)) = mirror.position() {
                            if journal == frame.journal && seq >= frame.head {
                                caught_up.send_if_modified(|live| !std::mem::replace(live, true));
                            }
                            let _ = acks.ack(seq).await;
                        }
                    }
                }
                Err(e) => {
                    metrics::counter!("tessera_relay_subscribe_failures_total").increment(1);
                    tracing::warn!(origin, error = %e, "cannot follow the origin");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        replay.end(SessionEnd::Closed);
        self.following.lock().expect("following").remove(stream);
        tracing::info!("no viewers here any more; stopped following");
    }
}

/// Applies a mirror's events to the store, under a session of its own.
struct Replay<'a> {
    store: &'a SegmentStore,
    stream: &'a str,
    session: Option<u64>,
}

impl Replay<'_> {
    fn apply(&mut self, event: FeedEvent) {
        let stream = self.stream;
        match event {
            FeedEvent::Session { base, expects_ladder, .. } => {
                self.end(SessionEnd::Closed);
                self.session = self.store.begin_mirror(stream, base, expects_ladder);
            }
            FeedEvent::Reset { .. } => self.end(SessionEnd::Closed),
            FeedEvent::End(how) => self.end(how),
            event => {
                let Some(session) = self.session else { return };
                if let FeedEvent::Part { rendition, segment, starts_segment, published_us, .. } = &event {
                    if *starts_segment {
                        self.store.mirror_start(stream, session, rendition, *segment);
                    }
                    let delay = (super::now_us() - published_us).max(0) as f64 / 1e6;
                    metrics::histogram!("tessera_relay_part_delay_seconds").record(delay);
                }
                match event.into_published(Instant::now()) {
                    Ok((rendition, published)) => self.store.publish(stream, session, &rendition, published),
                    Err(FeedEvent::Plan(r)) => self.store.plan(stream, session, r),
                    Err(FeedEvent::Transcoder(t)) => self.store.transcoder(stream, session, t),
                    Err(_) => {}
                }
            }
        }
    }

    fn end(&mut self, how: SessionEnd) {
        if let Some(session) = self.session.take() {
            self.store.end(self.stream, session, how);
        }
    }
}
