//! One stream followed: a subscription to the node above this one in the stream's relay
//! tree (its parent, or the origin itself), replayed into the segment store and copied into
//! this node's own journal for the nodes below.
//!
//! A relay that fails, or falls silent, is passed over for the next node up the chain
//! (its parent, then the origin); since every relay keeps the origin's journal numbers, the
//! subscription resumes there from the same position without a discontinuity. A follower
//! that moved up tries its own parent again after a while, so the tree re-forms.

use std::time::Duration;

use tessera_packager::{MediaSink, SessionEnd};
use tessera_raft::NodeId;
use tessera_relay::{FeedEvent, Mirror, MirrorStep};
use tokio::sync::watch;
use tokio::time::Instant;

use super::follow::Followers;
use super::protocols::{self, FeedAcks, FeedFrames};
use crate::store::SegmentStore;

/// How often a follower checks the catalog for a new origin while it waits for media.
const ORIGIN_CHECK: Duration = Duration::from_millis(250);
/// A relay that sends nothing for this long is passed over (a live stream has a part every
/// few hundred milliseconds).
const RELAY_SILENCE: Duration = Duration::from_millis(1500);
/// A follower that moved up the chain tries its own parent again after this long.
const BACK_TO_PARENT: Duration = Duration::from_secs(30);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Why a subscription stopped being read.
enum Stop {
    /// Nobody needs the stream here any more.
    Idle,
    /// The catalog names another origin.
    OriginMoved,
    /// Time to try the node's own parent again.
    BackToParent,
    /// The node sending it failed or fell silent.
    Failed,
}

impl Followers {
    /// Follows one stream while it has an origin elsewhere and viewers (or followers) here.
    pub(super) async fn follow(&self, stream: &str, caught_up: watch::Sender<bool>) {
        let mut mirror = Mirror::new();
        let mut replay = Replay { store: &self.store, stream, session: None };
        let mut retry = RETRY_MIN;
        // How far up the chain to subscribe: 0 is this node's parent in the tree.
        let mut rise = 0usize;
        let mut origin_followed = None;
        while !self.idle(stream) {
            let Some((origin, chain)) = self.route(stream) else {
                replay.end(SessionEnd::Closed);
                // Not live elsewhere (ended, or this node is now its origin): wait for a lease.
                tokio::time::sleep(RETRY_MAX).await;
                continue;
            };
            if origin_followed != Some(origin) {
                (origin_followed, rise) = (Some(origin), 0);
            }
            let (upstream, addr) = chain[rise.min(chain.len() - 1)].clone();
            match protocols::subscribe(&self.cluster, upstream, &addr, stream, mirror.position()).await {
                Ok(reader) => {
                    metrics::counter!("tessera_relay_subscriptions_total").increment(1);
                    tracing::info!(origin, upstream, position = ?mirror.position(), "following the stream");
                    retry = RETRY_MIN;
                    let back = (rise > 0).then(|| Instant::now() + BACK_TO_PARENT);
                    let parent = (rise > 0).then(|| chain[0].clone());
                    let from = Upstream { origin, node: upstream, parent, back_to_parent: back };
                    self.feeds.set_upstream(stream, Some(upstream));
                    let stop = self.read(stream, from, reader, &mut mirror, &mut replay, &caught_up).await;
                    self.feeds.set_upstream(stream, None);
                    match stop {
                        Stop::Idle => break,
                        Stop::OriginMoved | Stop::BackToParent => rise = 0,
                        Stop::Failed if upstream != origin => {
                            metrics::counter!("tessera_relay_upstream_changes_total").increment(1);
                            rise += 1;
                        }
                        Stop::Failed => {}
                    }
                }
                Err(e) => {
                    metrics::counter!("tessera_relay_subscribe_failures_total").increment(1);
                    tracing::warn!(origin, upstream, error = %e, "cannot follow the stream there");
                    if upstream != origin {
                        rise += 1;
                    }
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        replay.end(SessionEnd::Closed);
        self.stopped(stream);
        tracing::info!("no viewers or followers here any more; stopped following");
    }

    /// Reads one subscription until it ends or should: applies what arrives and copies it
    /// into this node's journal.
    async fn read(
        &self,
        stream: &str,
        from: Upstream,
        (mut frames, mut acks): (FeedFrames, FeedAcks),
        mirror: &mut Mirror,
        replay: &mut Replay<'_>,
        caught_up: &watch::Sender<bool>,
    ) -> Stop {
        // Frames are read by a task of their own (a read must not be cancelled half way),
        // which ends when this loop drops its receiver.
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
        let mut last_frame = Instant::now();
        let mut back_to_parent = from.back_to_parent;
        let mut probe: Option<tokio::task::JoinHandle<bool>> = None;
        loop {
            let next = tokio::select! {
                next = incoming.recv() => next.unwrap_or(Ok(None)),
                _ = check.tick() => {
                    // A dead origin says nothing: the catalog says when another node took
                    // the stream over. A dead relay says nothing either: go round it.
                    if self.idle(stream) {
                        return Stop::Idle;
                    }
                    if self.route(stream).is_none_or(|(o, _)| o != from.origin) {
                        return Stop::OriginMoved;
                    }
                    if from.node != from.origin && last_frame.elapsed() > RELAY_SILENCE {
                        tracing::warn!(relay = from.node, "the relay fell silent; following from further up");
                        return Stop::Failed;
                    }
                    match &mut probe {
                        Some(p) if p.is_finished() => {
                            if p.await.unwrap_or(false) {
                                return Stop::BackToParent;
                            }
                            probe = None;
                            back_to_parent = Some(Instant::now() + BACK_TO_PARENT);
                        }
                        None if back_to_parent.is_some_and(|at| Instant::now() > at) => {
                            // Only to a parent that relays the stream now: a dead one would
                            // cost a subscription attempt with nothing to show for it.
                            let (cluster, name) = (self.cluster.clone(), stream.to_string());
                            let (node, addr) = from.parent.clone().expect("moved up from a parent");
                            probe = Some(tokio::spawn(async move {
                                let held = protocols::position_of(&cluster, node, &addr, &name).await;
                                held.is_some_and(|h| h.live && h.following)
                            }));
                            back_to_parent = None;
                        }
                        _ => {}
                    }
                    continue;
                }
            };
            let frame = match next {
                Ok(Some(frame)) => frame,
                Ok(None) => return Stop::Failed,
                Err(e) => {
                    tracing::warn!(upstream = from.node, error = %e, "subscription broken");
                    return Stop::Failed;
                }
            };
            last_frame = Instant::now();
            self.feeds.relay(stream, frame.journal, &frame.items);
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
}

/// Where a subscription comes from.
struct Upstream {
    origin: NodeId,
    /// The origin, or a node relaying it.
    node: NodeId,
    /// This node's parent in the tree, when following from further up.
    parent: Option<(NodeId, String)>,
    /// When to try this node's parent again (following from further up than it).
    back_to_parent: Option<Instant>,
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
                    let delay = (tessera_ingest::timestamp::unix_us() - published_us).max(0) as f64 / 1e6;
                    metrics::histogram!("tessera_relay_part_delay_seconds").record(delay);
                }
                match event.into_published(Instant::now().into_std()) {
                    Ok((rendition, published, number)) => {
                        self.store.publish_numbered(stream, session, &rendition, published, number);
                    }
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
