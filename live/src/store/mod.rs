//! The segment store: every stream's renditions (playlist state and media bytes), held in
//! memory for the live window plus a retention margin, with a version signal that releases
//! blocked requests the moment a part lands.
//!
//! Segment numbers: a session numbers its segments from 0 in every rendition; the store
//! adds the stream's base for that session (the next number any rendition would have
//! given), so numbering carries on across publisher sessions and the same number means the
//! same stretch of time in every rendition.
//!
//! Locking: one `std::sync::Mutex` per stream, held only to read or update state (never
//! across an await); the stream map has its own lock. Waiters subscribe to the stream's
//! `watch` channel before they check the state, so no publication is missed.

mod mirrored;
mod rendition;
mod sink;
mod status;
mod tiered;
pub mod viewers;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use mirrored::{Held, Numbering};
use rendition::RenditionState;
pub use status::{RenditionStatus, StreamStatus, TranscoderView};
use tessera_packager::playlist::{render_multivariant, RenditionReport, Variant};
use tessera_packager::{BlockRequest, BlockState, PlaylistConfig};
use tessera_packager::{SessionEnd, TranscoderStatus};
pub use tessera_storage::finished::{ChainedBytes, FinishedFile, FinishedKind, Recorder};
use thiserror::Error;
use tokio::sync::watch;

/// The passthrough rendition.
pub const SOURCE_RENDITION: &str = tessera_transcode::SOURCE;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("no such stream")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("not available in time")]
    Timeout,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClaimError {
    #[error("stream {0} is already being published")]
    AlreadyPublishing(String),
    #[error("too many publishers ({0})")]
    TooManyPublishers(usize),
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub playlist: PlaylistConfig,
    pub reconnect_grace: Duration,
    pub ended_retention: Duration,
    pub max_publishers: usize,
}

struct StreamState {
    renditions: BTreeMap<String, RenditionState>,
    session: Option<u64>,
    /// The session is another node's, followed over the cluster (see `crate::relay`).
    mirrored: bool,
    /// Added to the session's segment numbers.
    session_base: u64,
    /// The lowest number a part published here may get (see [`SegmentStore::carry_on_from`]).
    part_floor: u64,
    /// The session transcodes: the multivariant playlist waits for its ladder.
    expects_plan: bool,
    planned: bool,
    transcoder: TranscoderStatus,
    idle_since: Option<Instant>,
    ended_since: Option<Instant>,
    /// Tells the current publisher's reader that it was taken over.
    kicker: Option<watch::Sender<bool>>,
    /// Counts changes to any playlist; keys the render caches.
    changes: u64,
}

impl StreamState {
    fn rendition(&mut self, name: &str, config: &PlaylistConfig) -> &mut RenditionState {
        self.renditions.entry(name.to_string()).or_insert_with(|| RenditionState::new(name, config.clone()))
    }

    /// Makes `session` the stream's, numbered from `base`: a publisher's here, or (`mirrored`)
    /// one replaying another node's.
    fn start_session(&mut self, session: u64, base: u64, mirrored: bool, expects_plan: bool) {
        self.session = Some(session);
        self.mirrored = mirrored;
        self.session_base = base;
        self.expects_plan = expects_plan;
        self.planned = false;
        self.transcoder = TranscoderStatus::default();
        for r in self.renditions.values_mut() {
            r.dropped = None;
        }
        self.idle_since = None;
        self.ended_since = None;
    }

    fn close_all(&mut self) {
        for r in self.renditions.values_mut() {
            r.close();
        }
    }

    fn has_media(&self) -> bool {
        self.renditions.values().any(|r| !r.inits.is_empty())
    }

    /// What the other offered renditions report to `name`'s players.
    fn reports(&self, name: &str) -> Vec<RenditionReport> {
        self.renditions
            .values()
            .filter(|r| r.name != name && r.offered())
            .filter_map(|r| r.playlist.report(format!("../{}/index.m3u8", r.name)))
            .collect()
    }

    /// The multivariant playlist naming each rendition's `playlist`, if it can be answered:
    /// with `partial`, the offered renditions that have a segment; otherwise only once every
    /// one of them has.
    fn multivariant(&self, partial: bool, playlist: &str) -> Option<String> {
        if self.expects_plan && !self.planned && !partial {
            return None;
        }
        let offered: Vec<&RenditionState> =
            self.renditions.values().filter(|r| r.offered() || (!self.planned && r.name == SOURCE_RENDITION)).collect();
        let ready: Vec<&&RenditionState> = offered.iter().filter(|r| r.has_complete_segment()).collect();
        if ready.is_empty() || (!partial && ready.len() < offered.len()) {
            return None;
        }
        let mut variants: Vec<Variant> = ready.iter().map(|r| r.variant(playlist)).collect();
        // Largest picture first (the passthrough, then the rungs down the ladder).
        variants.sort_by_key(|v| std::cmp::Reverse((v.resolution.map(|(w, h)| w * h), v.bandwidth)));
        let notes: Vec<String> = self
            .renditions
            .values()
            .filter_map(|r| r.dropped.as_ref().map(|why| format!("{} dropped for this session: {why}", r.name)))
            .collect();
        Some(render_multivariant(&variants, &notes))
    }
}

struct StreamEntry {
    state: Mutex<StreamState>,
    version: watch::Sender<u64>,
}

impl StreamEntry {
    /// The stream's entry in `streams`, made empty if there is none.
    fn in_map(streams: &mut HashMap<String, Arc<StreamEntry>>, name: &str) -> Arc<StreamEntry> {
        streams
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(StreamEntry {
                    state: Mutex::new(StreamState {
                        renditions: BTreeMap::new(),
                        session: None,
                        mirrored: false,
                        session_base: 0,
                        part_floor: 0,
                        expects_plan: false,
                        planned: false,
                        transcoder: TranscoderStatus::default(),
                        idle_since: None,
                        ended_since: None,
                        kicker: None,
                        changes: 0,
                    }),
                    version: watch::channel(0).0,
                })
            })
            .clone()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

/// Segment store of one node.
pub struct SegmentStore {
    config: StoreConfig,
    streams: Mutex<HashMap<String, Arc<StreamEntry>>>,
    next_session: std::sync::atomic::AtomicU64,
    /// Where finished files go after the live window (see [`tessera_storage`]).
    tiers: std::sync::OnceLock<Arc<tessera_storage::Tiers>>,
    /// Hears of what this node finishes as origin, for recordings.
    recorder: std::sync::OnceLock<Arc<dyn Recorder>>,
    /// Who watches what here.
    pub viewers: viewers::ViewerTally,
}

/// A publisher's hold on a stream name. Dropping it ends the session if the pipeline did
/// not (for example when the handshake never completed).
pub struct PublishClaim {
    store: Arc<SegmentStore>,
    pub stream: String,
    pub session: u64,
    /// Turns true when a newer publisher takes the stream over: stop reading.
    pub taken_over: watch::Receiver<bool>,
}

impl PublishClaim {
    /// The session transcodes: players asking for the multivariant playlist wait for its
    /// ladder.
    pub fn expect_ladder(&self) {
        if let Some(entry) = self.store.entry(&self.stream) {
            let mut st = entry.state.lock().expect("stream lock");
            if st.session == Some(self.session) {
                st.expects_plan = true;
            }
        }
    }
}

impl Drop for PublishClaim {
    fn drop(&mut self) {
        self.store.session_end(&self.stream, self.session, &SessionEnd::Closed);
    }
}

/// What a released blocking request waited for, for the latency metric.
pub struct Released {
    pub body: Bytes,
    /// When the newest part was completed, if the request had to wait for it.
    pub waited_for: Option<Instant>,
}

impl SegmentStore {
    pub fn new(config: StoreConfig) -> Arc<Self> {
        Arc::new(SegmentStore {
            config,
            streams: Mutex::new(HashMap::new()),
            next_session: 1.into(),
            tiers: std::sync::OnceLock::new(),
            recorder: std::sync::OnceLock::new(),
            viewers: Default::default(),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn entry(&self, name: &str) -> Option<Arc<StreamEntry>> {
        self.streams.lock().expect("streams lock").get(name).cloned()
    }

    /// Claims a stream name for a new publisher session. With `takeover`, a stream being
    /// published is taken from its current publisher, whose session ends (its reader is told
    /// through [`PublishClaim::taken_over`]); without, the claim is refused.
    pub fn claim(self: &Arc<Self>, name: &str, takeover: bool) -> Result<PublishClaim, ClaimError> {
        let mut streams = self.streams.lock().expect("streams lock");
        let live = streams
            .values()
            .filter(|e| {
                let st = e.state.lock().expect("stream lock");
                st.session.is_some() && !st.mirrored
            })
            .count();
        if live >= self.config.max_publishers {
            return Err(ClaimError::TooManyPublishers(live));
        }
        let session = self.next_session.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = StreamEntry::in_map(&mut streams, name);
        let mut st = entry.state.lock().expect("stream lock");
        if st.mirrored {
            // This node followed the stream's origin elsewhere; a publisher here replaces
            // that, numbering on from what was followed.
            st.close_all();
            self.hand_over(name, &mut st);
            st.session = None;
            st.mirrored = false;
            tracing::info!(stream = name, "a publisher here takes the stream over from the followed origin");
        }
        if let Some(old) = st.session {
            if !takeover {
                return Err(ClaimError::AlreadyPublishing(name.to_string()));
            }
            st.close_all();
            self.hand_over(name, &mut st);
            st.changes += 1;
            if let Some(k) = st.kicker.take() {
                let _ = k.send(true);
            }
            metrics::gauge!("tessera_publishers").decrement(1.0);
            metrics::counter!("tessera_publisher_takeovers_total").increment(1);
            tracing::warn!(
                stream = name,
                old_session = old,
                new_session = session,
                "publisher taken over by a new one"
            );
        }
        let (kicker, taken_over) = watch::channel(false);
        st.kicker = Some(kicker);
        let base = st.renditions.values().map(|r| r.playlist.next_msn()).max().unwrap_or(0);
        st.start_session(session, base, false, false);
        drop(st);
        metrics::gauge!("tessera_publishers").increment(1.0);
        Ok(PublishClaim { store: self.clone(), stream: name.to_string(), session, taken_over })
    }

    fn session_end(&self, name: &str, session: u64, how: &SessionEnd) {
        let Some(entry) = self.entry(name) else { return };
        let mut st = entry.state.lock().expect("stream lock");
        if st.session != Some(session) {
            return;
        }
        st.session = None;
        st.kicker = None;
        st.idle_since = Some(Instant::now());
        st.transcoder.worker_pid = None;
        st.close_all();
        self.hand_over(name, &mut st);
        st.changes += 1;
        let mirrored = std::mem::take(&mut st.mirrored);
        drop(st);
        if !mirrored {
            metrics::gauge!("tessera_publishers").decrement(1.0);
        }
        match how {
            SessionEnd::Closed => tracing::info!(stream = name, session, "publisher left; waiting for it to return"),
            SessionEnd::Failed(e) => tracing::warn!(stream = name, session, error = %e, "publisher session failed"),
        }
        entry.bump();
    }

    /// Ends streams whose publisher did not return, and forgets old ended streams.
    pub fn tick(&self, now: Instant) {
        let entries: Vec<(String, Arc<StreamEntry>)> =
            self.streams.lock().expect("streams lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut forget = Vec::new();
        for (name, entry) in entries {
            let mut st = entry.state.lock().expect("stream lock");
            if st.session.is_some() {
                continue;
            }
            if let Some(idle) = st.idle_since {
                if st.ended_since.is_none() && now.duration_since(idle) >= self.config.reconnect_grace {
                    for r in st.renditions.values_mut() {
                        r.playlist.end();
                    }
                    st.ended_since = Some(now);
                    st.changes += 1;
                    tracing::info!(stream = %name, "stream ended");
                    if let Some(rec) = self.recorder.get().filter(|_| !st.mirrored) {
                        rec.ended(&name);
                    }
                    drop(st);
                    entry.bump();
                    continue;
                }
            }
            if st.ended_since.is_some_and(|e| now.duration_since(e) >= self.config.ended_retention)
                || (!st.has_media() && st.idle_since.is_some())
            {
                forget.push(name);
            }
        }
        if !forget.is_empty() {
            let mut streams = self.streams.lock().expect("streams lock");
            for name in forget {
                if streams.get(&name).is_some_and(|e| e.state.lock().expect("stream lock").session.is_none()) {
                    streams.remove(&name);
                }
            }
        }
    }

    /// Names of the streams the store holds.
    pub fn stream_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.streams.lock().expect("streams lock").keys().cloned().collect();
        v.sort();
        v
    }

    /// Waits until `ready` says the state can answer, or the timeout passes.
    async fn wait<T>(
        &self,
        name: &str,
        timeout: Duration,
        mut ready: impl FnMut(&mut StreamState) -> Result<Option<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let entry = self.entry(name).ok_or(StoreError::NotFound)?;
        let mut rx = entry.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut st = entry.state.lock().expect("stream lock");
                if let Some(v) = ready(&mut st)? {
                    return Ok(v);
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(StoreError::NotFound),
                Err(_) => return Err(StoreError::Timeout),
            }
        }
    }

    /// A rendition's media playlist; with `block`, held until the requested part or
    /// segment exists.
    pub async fn media_playlist(
        &self,
        name: &str,
        rendition: &str,
        block: Option<BlockRequest>,
        skip: bool,
        timeout: Duration,
        keys: &[tessera_packager::SegmentKey],
    ) -> Result<Released, StoreError> {
        let mut waited = false;
        self.wait(name, timeout, |st| {
            let ended = st.ended_since.is_some();
            let gone = st.session.is_none() && st.idle_since.is_some() && !st.has_media();
            let changes = st.changes;
            let Some(r) = st.renditions.get(rendition) else {
                // A rendition of the ladder appears with the session's first segment.
                if ended || gone || st.planned || !st.expects_plan {
                    return Err(StoreError::NotFound);
                }
                waited = true;
                return Ok(None);
            };
            // Until one segment is complete, a playlist would confuse players that do not
            // read parts: wait for it.
            if !r.playlist.segments().any(|s| s.complete) {
                if ended || gone {
                    return Err(StoreError::NotFound);
                }
                waited = true;
                return Ok(None);
            }
            if let Some(req) = block {
                match r.playlist.block_state(req) {
                    BlockState::TooFarAhead => {
                        return Err(StoreError::BadRequest("_HLS_msn is more than two segments ahead"))
                    }
                    BlockState::Wait => {
                        waited = true;
                        return Ok(None);
                    }
                    BlockState::Ready => {}
                }
            }
            let at = waited.then_some(r.last_part_at).flatten();
            // Every waiter a part releases shares one rendering: the first renders it (with
            // the other renditions' reports), the others take it.
            let body = match r.rendered_at(skip, changes, keys) {
                Some(body) => body,
                None => {
                    let reports = st.reports(rendition);
                    let r = st.renditions.get_mut(rendition).expect("looked up above");
                    r.render(skip, changes, &reports, keys)
                }
            };
            Ok(Some(Released { body, waited_for: at }))
        })
        .await
    }

    /// The target duration of a stream, for blocking timeouts.
    pub fn target_duration(&self, name: &str) -> Option<u64> {
        let entry = self.entry(name)?;
        let st = entry.state.lock().expect("stream lock");
        st.renditions.values().map(|r| r.playlist.target_duration()).max()
    }

    /// The multivariant playlist naming each rendition's `playlist` (`index.m3u8` for the
    /// live edge, `dvr.m3u8` for the DVR window). Waits (up to `timeout`) until every
    /// rendition of the session's ladder has a segment, then answers with those that do.
    pub async fn multivariant(&self, name: &str, playlist: &str, timeout: Duration) -> Result<String, StoreError> {
        let complete = self
            .wait(name, timeout, |st| {
                if st.ended_since.is_some() && !st.renditions.values().any(|r| r.has_complete_segment()) {
                    return Err(StoreError::NotFound);
                }
                Ok(st.multivariant(st.ended_since.is_some() || st.session.is_none(), playlist))
            })
            .await;
        match complete {
            Err(StoreError::Timeout) => {
                let entry = self.entry(name).ok_or(StoreError::NotFound)?;
                let st = entry.state.lock().expect("stream lock");
                st.multivariant(true, playlist).ok_or(StoreError::Timeout)
            }
            other => other,
        }
    }

    fn with_rendition<T>(
        &self,
        name: &str,
        rendition: &str,
        f: impl FnOnce(&RenditionState) -> Option<T>,
    ) -> Result<T, StoreError> {
        let entry = self.entry(name).ok_or(StoreError::NotFound)?;
        let st = entry.state.lock().expect("stream lock");
        st.renditions.get(rendition).and_then(f).ok_or(StoreError::NotFound)
    }

    pub fn init(&self, name: &str, rendition: &str, id: u32) -> Result<Bytes, StoreError> {
        self.with_rendition(name, rendition, |r| r.inits.get(&id).cloned())
    }

    /// The init segment of segment `msn` (while the playlist lists it) and its number.
    pub fn init_of(&self, name: &str, rendition: &str, msn: u64) -> Result<(u32, Bytes), StoreError> {
        self.with_rendition(name, rendition, |r| {
            let id = r.playlist.init_of(msn)?;
            r.inits.get(&id).map(|d| (id, d.clone()))
        })
    }

    /// Segment `msn`: its parts, chained.
    pub fn segment(&self, name: &str, rendition: &str, msn: u64) -> Result<ChainedBytes, StoreError> {
        self.with_rendition(name, rendition, |r| r.segments.get(&msn).cloned())
    }

    /// A part, with the number of the segment it belongs to; the part named by the preload
    /// hint is held until it is complete.
    pub async fn part(
        &self,
        name: &str,
        rendition: &str,
        seq: u64,
        timeout: Duration,
    ) -> Result<(Bytes, u64, Option<Instant>), StoreError> {
        let mut waited = false;
        self.wait(name, timeout, |st| {
            let ended = st.ended_since.is_some();
            let r = st.renditions.get(rendition).ok_or(StoreError::NotFound)?;
            if let Some(p) = r.parts.get(&seq) {
                return Ok(Some((p.data.clone(), p.msn, waited.then_some(p.completed_at))));
            }
            let hinted = seq == r.playlist.next_part_seq() && !ended;
            if hinted {
                waited = true;
                Ok(None)
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
    }

    /// Applies `f` to the stream's state if `session` is still its publisher's, then wakes
    /// the waiters.
    fn update<R>(
        &self,
        stream: &str,
        session: u64,
        what: &str,
        f: impl FnOnce(&mut StreamState, &PlaylistConfig) -> R,
    ) -> Option<R> {
        let entry = self.entry(stream)?;
        let mut st = entry.state.lock().expect("stream lock");
        if st.session != Some(session) {
            tracing::debug!(stream, session, what, "late output of an ended session ignored");
            return None;
        }
        let out = f(&mut st, &self.config.playlist);
        self.hand_over(stream, &mut st);
        st.changes += 1;
        drop(st);
        entry.bump();
        Some(out)
    }
}
