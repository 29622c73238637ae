//! The segment store: every stream's playlist state and media bytes, held in memory for the
//! live window plus a retention margin, with a version signal that releases blocked
//! requests the moment a part lands.
//!
//! Locking: one `std::sync::Mutex` per stream, held only to read or update state (never
//! across an await); the stream map has its own lock. Waiters subscribe to the stream's
//! `watch` channel before they check the state, so no publication is missed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tessera_actors::{MediaSink, Published, SessionEnd};
use tessera_ingest::{CodecConfig, TrackInfo};
use tessera_packager::playlist::{render_multivariant, Variant};
use tessera_packager::{BlockRequest, BlockState, PlaylistConfig, PlaylistState};
use thiserror::Error;
use tokio::sync::watch;

/// The one rendition of a passthrough stream.
pub const SOURCE_RENDITION: &str = "src";

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

struct PartRecord {
    data: Bytes,
    msn: u64,
    completed_at: Instant,
}

struct StreamState {
    playlist: PlaylistState,
    session: Option<u64>,
    idle_since: Option<Instant>,
    ended_since: Option<Instant>,
    next_init: u32,
    inits: BTreeMap<u32, Bytes>,
    tracks: Vec<TrackInfo>,
    parts: BTreeMap<u64, PartRecord>,
    segments: BTreeMap<u64, Bytes>,
    building: BytesMut,
    building_duration: f64,
    /// (bytes, seconds) of recent segments, for BANDWIDTH.
    recent: VecDeque<(usize, f64)>,
    last_part_at: Option<Instant>,
    /// Tells the current publisher's reader that it was taken over.
    kicker: Option<watch::Sender<bool>>,
    /// Counts changes to the playlist; keys the render cache.
    changes: u64,
    /// The last rendering of the full playlist and of the delta update, with the change
    /// count they were rendered at: ten thousand waiters released by one part share one.
    rendered: [Option<(u64, Bytes)>; 2],
}

impl StreamState {
    fn render(&mut self, skip: bool) -> Bytes {
        let slot = skip as usize;
        match &self.rendered[slot] {
            Some((at, body)) if *at == self.changes => body.clone(),
            _ => {
                let body = Bytes::from(self.playlist.render(skip));
                self.rendered[slot] = Some((self.changes, body.clone()));
                body
            }
        }
    }
}

struct StreamEntry {
    state: Mutex<StreamState>,
    version: watch::Sender<u64>,
}

impl StreamEntry {
    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

/// Segment store of one node.
pub struct SegmentStore {
    config: StoreConfig,
    streams: Mutex<HashMap<String, Arc<StreamEntry>>>,
    next_session: std::sync::atomic::AtomicU64,
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
        Arc::new(SegmentStore { config, streams: Mutex::new(HashMap::new()), next_session: 1.into() })
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
        let live = streams.values().filter(|e| e.state.lock().expect("stream lock").session.is_some()).count();
        if live >= self.config.max_publishers {
            return Err(ClaimError::TooManyPublishers(live));
        }
        let session = self.next_session.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = streams.entry(name.to_string()).or_insert_with(|| {
            Arc::new(StreamEntry {
                state: Mutex::new(StreamState {
                    playlist: PlaylistState::new(self.config.playlist.clone()),
                    session: None,
                    idle_since: None,
                    ended_since: None,
                    next_init: 0,
                    inits: BTreeMap::new(),
                    tracks: Vec::new(),
                    parts: BTreeMap::new(),
                    segments: BTreeMap::new(),
                    building: BytesMut::new(),
                    building_duration: 0.0,
                    recent: VecDeque::new(),
                    last_part_at: None,
                    kicker: None,
                    changes: 0,
                    rendered: [None, None],
                }),
                version: watch::channel(0).0,
            })
        });
        let mut st = entry.state.lock().expect("stream lock");
        if let Some(old) = st.session {
            if !takeover {
                return Err(ClaimError::AlreadyPublishing(name.to_string()));
            }
            close_segment(&mut st);
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
        st.session = Some(session);
        st.idle_since = None;
        st.ended_since = None;
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
        close_segment(&mut st);
        st.changes += 1;
        drop(st);
        metrics::gauge!("tessera_publishers").decrement(1.0);
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
                    st.playlist.end();
                    st.ended_since = Some(now);
                    st.changes += 1;
                    tracing::info!(stream = %name, "stream ended");
                    drop(st);
                    entry.bump();
                    continue;
                }
            }
            if st.ended_since.is_some_and(|e| now.duration_since(e) >= self.config.ended_retention)
                || (st.inits.is_empty() && st.idle_since.is_some())
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

    /// The media playlist; with `block`, held until the requested part or segment exists.
    pub async fn media_playlist(
        &self,
        name: &str,
        block: Option<BlockRequest>,
        skip: bool,
        timeout: Duration,
    ) -> Result<Released, StoreError> {
        let mut waited = false;
        let r = self
            .wait(name, timeout, |st| {
                // Until one segment is complete, a playlist would confuse players that do not
                // read parts: wait for it.
                if !st.playlist.segments().any(|s| s.complete) {
                    if st.ended_since.is_some()
                        || (st.session.is_none() && st.idle_since.is_some() && st.inits.is_empty())
                    {
                        return Err(StoreError::NotFound);
                    }
                    waited = true;
                    return Ok(None);
                }
                if let Some(req) = block {
                    match st.playlist.block_state(req) {
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
                let at = waited.then_some(st.last_part_at).flatten();
                Ok(Some(Released { body: st.render(skip), waited_for: at }))
            })
            .await;
        r
    }

    /// The target duration of a stream, for blocking timeouts.
    pub fn target_duration(&self, name: &str) -> Option<u64> {
        self.entry(name).map(|e| e.state.lock().expect("stream lock").playlist.target_duration())
    }

    /// The multivariant playlist; waits (up to `timeout`) for the first init segment.
    pub async fn multivariant(&self, name: &str, timeout: Duration) -> Result<String, StoreError> {
        self.wait(name, timeout, |st| {
            if st.tracks.is_empty() || !st.playlist.segments().any(|s| s.complete) {
                if st.ended_since.is_some() {
                    return Err(StoreError::NotFound);
                }
                return Ok(None);
            }
            Ok(Some(render_multivariant(&[variant(st)])))
        })
        .await
    }

    pub fn init(&self, name: &str, id: u32) -> Result<Bytes, StoreError> {
        let entry = self.entry(name).ok_or(StoreError::NotFound)?;
        let st = entry.state.lock().expect("stream lock");
        st.inits.get(&id).cloned().ok_or(StoreError::NotFound)
    }

    pub fn segment(&self, name: &str, msn: u64) -> Result<Bytes, StoreError> {
        let entry = self.entry(name).ok_or(StoreError::NotFound)?;
        let st = entry.state.lock().expect("stream lock");
        st.segments.get(&msn).cloned().ok_or(StoreError::NotFound)
    }

    /// A part; the part named by the preload hint is held until it is complete.
    pub async fn part(&self, name: &str, seq: u64, timeout: Duration) -> Result<(Bytes, Option<Instant>), StoreError> {
        let mut waited = false;
        self.wait(name, timeout, |st| {
            if let Some(p) = st.parts.get(&seq) {
                return Ok(Some((p.data.clone(), waited.then_some(p.completed_at))));
            }
            let hinted = seq == st.playlist.next_part_seq() && st.ended_since.is_none();
            if hinted {
                waited = true;
                Ok(None)
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
    }
}

fn variant(st: &StreamState) -> Variant {
    let mut codecs: Vec<String> = st.tracks.iter().map(|t| t.codec.rfc6381()).collect();
    codecs.dedup();
    let resolution = st.tracks.iter().find_map(|t| t.codec.dimensions());
    let frame_rate = st.tracks.iter().find_map(|t| match &t.codec {
        CodecConfig::H264(c) => c.frame_rate.filter(|(_, d)| *d > 0).map(|(n, d)| n as f64 / d as f64),
        _ => None,
    });
    let mut peak = 0.0f64;
    let (mut bytes, mut secs) = (0usize, 0.0f64);
    for (b, d) in &st.recent {
        if *d > 0.0 {
            peak = peak.max(*b as f64 * 8.0 / d);
        }
        bytes += b;
        secs += d;
    }
    if secs == 0.0 && st.building_duration > 0.0 {
        bytes = st.building.len();
        secs = st.building_duration;
        peak = bytes as f64 * 8.0 / secs;
    }
    let average = if secs > 0.0 { bytes as f64 * 8.0 / secs } else { 0.0 };
    let average = (average.round() as u64).max(1);
    Variant {
        uri: format!("{SOURCE_RENDITION}/index.m3u8"),
        bandwidth: ((peak * 1.1).round() as u64).max(average),
        average_bandwidth: average,
        codecs: codecs.join(","),
        resolution,
        frame_rate,
    }
}

fn close_segment(st: &mut StreamState) {
    if st.building.is_empty() {
        return;
    }
    let Some(msn) = st.playlist.close_segment() else { return };
    let data = std::mem::take(&mut st.building).freeze();
    st.recent.push_back((data.len(), st.building_duration));
    if st.recent.len() > 10 {
        st.recent.pop_front();
    }
    st.building_duration = 0.0;
    st.segments.insert(msn, data);
    // Drop what fell out of the retention horizon.
    let oldest = st.playlist.oldest_retained_msn();
    st.segments.retain(|m, _| *m >= oldest);
    st.parts.retain(|_, p| p.msn >= oldest);
    let used: Vec<u32> = st.playlist.segments().map(|s| s.init).collect();
    let current = st.playlist.init();
    let min_used = used.iter().min().copied().or(current).unwrap_or(0);
    st.inits.retain(|id, _| *id >= min_used.saturating_sub(1));
}

impl MediaSink for SegmentStore {
    fn publish(&self, stream: &str, session: u64, event: Published) {
        let Some(entry) = self.entry(stream) else { return };
        let mut st = entry.state.lock().expect("stream lock");
        if st.session != Some(session) {
            if !matches!(event, Published::End(_)) {
                tracing::debug!(stream, session, "late output of an ended session ignored");
            }
            return;
        }
        match event {
            Published::Init { tracks, data } => {
                close_segment(&mut st);
                let id = st.next_init;
                st.next_init += 1;
                st.inits.insert(id, data);
                st.tracks = tracks;
                st.playlist.set_init(id);
                tracing::info!(stream, session, init = id, codecs = %st.tracks.iter().map(|t| t.codec.rfc6381()).collect::<Vec<_>>().join(","), "init segment");
            }
            Published::Part {
                data,
                duration,
                independent,
                program_time_ms,
                part_target,
                completed_at,
                last_frame_arrived,
            } => {
                if st.playlist.init().is_none() {
                    return;
                }
                st.playlist.set_part_target(part_target);
                let (msn, seq) = st.playlist.push_part(duration, independent, program_time_ms);
                st.building.extend_from_slice(&data);
                st.building_duration += duration;
                st.parts.insert(seq, PartRecord { data, msn, completed_at });
                st.last_part_at = Some(completed_at);
                metrics::counter!("tessera_parts_published_total").increment(1);
                if let Some(at) = last_frame_arrived {
                    metrics::histogram!("tessera_part_available_seconds").record(at.elapsed().as_secs_f64());
                }
            }
            Published::SegmentEnd => close_segment(&mut st),
            Published::End(how) => {
                drop(st);
                self.session_end(stream, session, &how);
                return;
            }
        }
        st.changes += 1;
        drop(st);
        entry.bump();
    }
}
