//! The sending side: a journal per live stream, filled by [`RelaySink`] as the pipelines
//! publish (on the stream's origin) or copied from the node this one follows (on a relay,
//! see [`FeedRegistry::relay`]), and read by each subscribing node at its own pace.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tessera_packager::MediaFile;
use tessera_packager::{MediaSink, PlannedRendition, Published, SessionEnd, TranscoderStatus};
use tessera_relay::{FeedEvent, FeedFrame, FeedItem, Journal};
use tessera_storage::finished::ChainedBytes;
use tokio::sync::{mpsc, watch};

use super::term::{OriginTerm, TermState};
use crate::store::SegmentStore;

/// A subscriber that got nothing for this long gets an empty frame: an idle stream is
/// told from a dead sender (see `relay::upstream`).
const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(500);
/// At most this many bytes of media in one frame to a subscriber.
const FRAME_BYTES: usize = 1 << 20;

/// One stream's journal and the sequence number of its newest item.
struct StreamFeed {
    journal: Mutex<Journal>,
    newest: watch::Sender<u64>,
    /// Nodes reading the journal now.
    subscribers: AtomicUsize,
}

/// Counts a subscriber for as long as it reads.
struct Reading(Arc<StreamFeed>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Called with a stream's name when another node subscribes to a stream this node does not
/// publish: the node must follow it to relay it.
pub(super) type RelayWanted = Box<dyn Fn(&str) + Send + Sync>;

/// Every journal of this node, and what its store holds, for other nodes to ask.
pub struct FeedRegistry {
    feeds: Mutex<HashMap<String, Arc<StreamFeed>>>,
    keep_segments: usize,
    store: OnceLock<Arc<SegmentStore>>,
    relay_wanted: OnceLock<RelayWanted>,
    /// Per stream this node follows, the node it receives it from.
    upstreams: Mutex<HashMap<String, u64>>,
}

impl FeedRegistry {
    /// Journals keep `keep_segments` segments: a subscriber further behind starts afresh.
    pub fn new(keep_segments: usize) -> Arc<FeedRegistry> {
        Arc::new(FeedRegistry {
            feeds: Mutex::default(),
            keep_segments,
            store: OnceLock::new(),
            relay_wanted: OnceLock::new(),
            upstreams: Mutex::default(),
        })
    }

    /// The node's segment store, once there is one.
    pub fn attach(&self, store: Arc<SegmentStore>) {
        let _ = self.store.set(store);
    }

    /// Forgets the journals of streams the store has forgotten (ended, past their retention).
    pub fn prune(&self) {
        let Some(store) = self.store.get() else { return };
        self.feeds.lock().expect("feeds").retain(|name, _| store.has_stream(name));
    }

    /// A finished file (an init segment or a segment) of a stream this node's store holds.
    pub fn file(&self, stream: &str, rendition: &str, file: MediaFile) -> Option<ChainedBytes> {
        let store = self.store.get()?;
        match file {
            MediaFile::Init(id) => store.init(stream, rendition, u32::try_from(id).ok()?).ok().map(ChainedBytes::from),
            MediaFile::Segment(msn) => store.segment(stream, rendition, msn).ok(),
            MediaFile::Part(_) => None,
        }
    }

    /// What to call when another node wants a stream this node would relay.
    pub fn on_relay_wanted(&self, wanted: RelayWanted) {
        let _ = self.relay_wanted.set(wanted);
    }

    /// Nodes reading `stream` from this node now.
    pub fn subscribers(&self, stream: &str) -> usize {
        self.feeds.lock().expect("feeds").get(stream).map_or(0, |f| f.subscribers.load(Ordering::Relaxed))
    }

    /// Where this node stands in `stream`.
    pub fn held(&self, stream: &str) -> Option<crate::store::Held> {
        let mut held = self.store.get()?.held(stream)?;
        held.upstream =
            held.following.then(|| self.upstreams.lock().expect("upstreams").get(stream).copied()).flatten();
        Some(held)
    }

    /// Records the node this one receives `stream` from (`None`: none now).
    pub fn set_upstream(&self, stream: &str, node: Option<u64>) {
        let mut upstreams = self.upstreams.lock().expect("upstreams");
        match node {
            Some(node) => upstreams.insert(stream.to_string(), node),
            None => upstreams.remove(stream),
        };
    }

    fn feed(&self, stream: &str) -> Arc<StreamFeed> {
        self.feeds
            .lock()
            .expect("feeds")
            .entry(stream.to_string())
            .or_insert_with(|| {
                Arc::new(StreamFeed {
                    journal: Mutex::new(self.new_journal(stream)),
                    newest: watch::channel(0).0,
                    subscribers: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    fn new_journal(&self, stream: &str) -> Journal {
        // A number no earlier journal of this stream had (another process, or before a restart).
        let id = RandomState::new().hash_one(stream) | 1;
        Journal::new(id, self.keep_segments)
    }

    /// Copies what this node received of `stream` from the node it follows (journal
    /// `journal`, numbers kept), for the nodes that follow this one.
    pub fn relay(&self, stream: &str, journal: u64, items: &[FeedItem]) {
        let feed = self.feed(stream);
        let mut copy = feed.journal.lock().expect("journal");
        if !copy.is_copy() && copy.session().is_some() {
            // This node publishes the stream itself: nothing to copy.
            return;
        }
        for item in items {
            copy.copy(journal, item.clone());
        }
        let newest = copy.last_seq();
        drop(copy);
        feed.newest.send_replace(newest);
    }

    fn record(&self, stream: &str, session: u64, store: &SegmentStore, event: FeedEvent) {
        let feed = self.feed(stream);
        let mut journal = feed.journal.lock().expect("journal");
        if journal.is_copy() {
            // The node followed the stream and now publishes it: a journal of its own.
            *journal = self.new_journal(stream);
        }
        if journal.session() != Some(session) {
            let Some((base, expects_ladder)) = store.session_info(stream, session) else { return };
            journal.record(FeedEvent::Session { session, base, expects_ladder });
        }
        let newest = journal.record(event).seq;
        drop(journal);
        feed.newest.send_replace(newest);
    }

    /// Follows `stream` from `position` (journal, newest sequence number held): frames of
    /// what follows, catch-up first, then as it is recorded. A subscriber that reads too
    /// slowly for the journal to keep its place is started afresh at the live edge.
    pub fn subscribe(self: &Arc<Self>, stream: &str, mut position: Option<(u64, u64)>) -> mpsc::Receiver<FeedFrame> {
        let feed = self.feed(stream);
        if !self.store.get().is_some_and(|s| s.publishing_here(stream)) {
            if let Some(wanted) = self.relay_wanted.get() {
                wanted(stream);
            }
        }
        let (tx, rx) = mpsc::channel(2);
        let stream = stream.to_string();
        feed.subscribers.fetch_add(1, Ordering::Relaxed);
        let reading = Reading(feed.clone());
        tokio::spawn(async move {
            let feed = &reading.0;
            let mut newest = feed.newest.subscribe();
            loop {
                newest.mark_unchanged();
                let offer = {
                    let j = feed.journal.lock().expect("journal");
                    // A relay that has received nothing yet has nothing to offer (not even
                    // a fresh start): the subscriber waits for the first items.
                    let begun = j.is_copy() || j.last_seq() > 0;
                    begun.then(|| (j.id(), j.since(position), j.last_seq(), j.sent_all(position)))
                };
                let mut heartbeat = None;
                if let Some((journal, catchup, last, sent_all)) = offer {
                    heartbeat = Some(FeedFrame { journal, items: Vec::new(), head: last });
                    if catchup.fresh && position.is_some() {
                        metrics::counter!("tessera_relay_fresh_starts_total").increment(1);
                        tracing::info!(stream, ?position, "subscriber restarted at the live edge");
                    }
                    for items in chunks(catchup.items) {
                        if tx.send(FeedFrame { journal, items, head: last }).await.is_err() {
                            return;
                        }
                    }
                    position = Some(sent_all);
                }
                tokio::select! {
                    changed = newest.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                    // Nothing new: say so, so that silence means a dead or cut-off sender.
                    _ = tokio::time::sleep(HEARTBEAT), if heartbeat.is_some() => {
                        if tx.send(heartbeat.take().expect("checked")).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

/// Splits items into frames of about [`FRAME_BYTES`] of media.
fn chunks(items: Vec<FeedItem>) -> Vec<Vec<FeedItem>> {
    let mut out = vec![Vec::new()];
    let mut bytes = 0;
    for item in items {
        let size = match &item.event {
            FeedEvent::Part { data, .. } | FeedEvent::Init { data, .. } => data.len(),
            _ => 0,
        };
        if bytes + size > FRAME_BYTES && !out.last().expect("one").is_empty() {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("one").push(item);
    }
    out.retain(|c| !c.is_empty());
    out
}

/// The media sink of a node's pipelines: the segment store, and the journal other nodes
/// follow. It publishes only within the session's [`OriginTerm`]: what the pipeline makes
/// before the term opens (a takeover waiting out the old origin) is held, in order, and
/// published once it opens; nothing is published once the term is over.
pub struct RelaySink {
    store: Arc<SegmentStore>,
    feeds: Arc<FeedRegistry>,
    term: Arc<OriginTerm>,
    held: Mutex<Vec<(String, u64, Held)>>,
}

/// What a sink holds until its term opens.
enum Held {
    Published(String, Published),
    Plan(Vec<PlannedRendition>),
    Transcoder(TranscoderStatus),
}

/// At most this many events are held for a term to open (a few seconds of every
/// rendition's parts); past it, the oldest go.
const MAX_HELD: usize = 4096;

impl RelaySink {
    pub fn new(store: Arc<SegmentStore>, feeds: Arc<FeedRegistry>, term: Arc<OriginTerm>) -> Self {
        RelaySink { store, feeds, term, held: Mutex::new(Vec::new()) }
    }

    /// `event` if it may go out now, after anything held; `None` when it is held (before
    /// the term opens) or dropped (after the term).
    fn admit(&self, stream: &str, session: u64, event: Held, now: std::time::Instant) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match self.term.state(now) {
            TermState::Over => {
                metrics::counter!("tessera_fenced_events_dropped_total").increment(1 + held.len() as u64);
                held.clear();
                None
            }
            TermState::NotYet => {
                if held.len() >= MAX_HELD {
                    held.remove(0);
                    metrics::counter!("tessera_fenced_events_dropped_total").increment(1);
                }
                held.push((stream.to_string(), session, event));
                None
            }
            TermState::Open => {
                for (stream, session, e) in held.drain(..) {
                    self.emit(&stream, session, e);
                }
                Some(event)
            }
        }
    }

    fn emit(&self, stream: &str, session: u64, event: Held) {
        match event {
            Held::Published(rendition, event) => {
                let number = self.store.publish_numbered(stream, session, &rendition, event.clone(), None);
                let now = tessera_ingest::timestamp::unix_us();
                if let Some(feed_event) = FeedEvent::published(&rendition, event, number, now) {
                    self.feeds.record(stream, session, &self.store, feed_event);
                }
            }
            Held::Plan(renditions) => {
                self.store.plan(stream, session, renditions.clone());
                self.feeds.record(stream, session, &self.store, FeedEvent::Plan(renditions));
            }
            Held::Transcoder(status) => {
                self.store.transcoder(stream, session, status.clone());
                self.feeds.record(stream, session, &self.store, FeedEvent::Transcoder(status));
            }
        }
    }

    fn send(&self, stream: &str, session: u64, event: Held) {
        self.send_at(stream, session, event, std::time::Instant::now())
    }

    fn send_at(&self, stream: &str, session: u64, event: Held, now: std::time::Instant) {
        if let Some(event) = self.admit(stream, session, event, now) {
            self.emit(stream, session, event);
        }
    }

    /// [`MediaSink::publish`] as of `now`.
    pub fn publish_at(&self, stream: &str, session: u64, rendition: &str, event: Published, now: std::time::Instant) {
        self.send_at(stream, session, Held::Published(rendition.to_string(), event), now)
    }
}

impl MediaSink for RelaySink {
    fn publish(&self, stream: &str, session: u64, rendition: &str, event: Published) {
        self.send(stream, session, Held::Published(rendition.to_string(), event));
    }

    fn plan(&self, stream: &str, session: u64, renditions: Vec<PlannedRendition>) {
        self.send(stream, session, Held::Plan(renditions));
    }

    fn transcoder(&self, stream: &str, session: u64, status: TranscoderStatus) {
        self.send(stream, session, Held::Transcoder(status));
    }

    fn end(&self, stream: &str, session: u64, how: SessionEnd) {
        // A session that never opened published nothing: what it held goes with it.
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
        // Recorded first: the session is still known to the store.
        self.feeds.record(stream, session, &self.store, FeedEvent::End(how.clone()));
        self.store.end(stream, session, how);
    }
}
