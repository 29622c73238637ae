//! One rendition of a stream in the segment store: its playlist state, init segments,
//! parts and segments, and what the multivariant playlist says about it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use tessera_ingest::{CodecConfig, TrackInfo};
use tessera_packager::playlist::{RenditionReport, Variant};
use tessera_packager::SegmentKey;
use tessera_packager::{MediaFile, PlannedRendition};
use tessera_packager::{PlaylistConfig, PlaylistState};
use tessera_storage::finished::{ChainedBytes, FinishedFile, FinishedKind};

pub(crate) struct PartRecord {
    pub data: Bytes,
    pub msn: u64,
    pub completed_at: Instant,
}

pub(crate) struct RenditionState {
    pub name: String,
    pub playlist: PlaylistState,
    next_init: u32,
    pub inits: BTreeMap<u32, Bytes>,
    pub tracks: Vec<TrackInfo>,
    pub parts: BTreeMap<u64, PartRecord>,
    /// Each complete segment as its parts, chained: the bytes are the parts' own.
    pub segments: BTreeMap<u64, ChainedBytes>,
    /// The parts of the segment being built, and its number.
    building: ChainedBytes,
    building_msn: Option<u64>,
    /// (bytes, seconds) of recent segments, for BANDWIDTH.
    recent: VecDeque<(usize, f64)>,
    pub last_part_at: Option<Instant>,
    /// The last rendering of the full playlist and of the delta update, with the stream's
    /// change count they were rendered at: ten thousand waiters released by one part share one.
    rendered: [Option<((u64, u64), Bytes)>; 2],
    /// What the current session's ladder says about it; `None` if not in the ladder.
    pub planned: Option<PlannedRendition>,
    /// Why it was dropped for the rest of the session.
    pub dropped: Option<String>,
    /// Files finished since the store last handed them to the storage tiers.
    pub finished: Vec<FinishedFile>,
}

impl RenditionState {
    pub(super) fn new(name: &str, config: PlaylistConfig) -> Self {
        RenditionState {
            name: name.to_string(),
            playlist: PlaylistState::new(config),
            next_init: 0,
            inits: BTreeMap::new(),
            tracks: Vec::new(),
            parts: BTreeMap::new(),
            segments: BTreeMap::new(),
            building: ChainedBytes::default(),
            building_msn: None,
            recent: VecDeque::new(),
            last_part_at: None,
            rendered: [None, None],
            planned: None,
            dropped: None,
            finished: Vec::new(),
        }
    }

    /// Listed in the multivariant playlist: planned for this session and not dropped.
    pub(super) fn offered(&self) -> bool {
        self.planned.is_some() && self.dropped.is_none()
    }

    pub(super) fn has_complete_segment(&self) -> bool {
        self.playlist.segments().any(|s| s.complete && !s.gap)
    }

    pub(super) fn init(&mut self, tracks: Vec<TrackInfo>, data: Bytes) -> u32 {
        self.playlist.set_init(self.next_init);
        self.settle();
        let id = self.next_init;
        self.next_init += 1;
        let kind = FinishedKind::Init { id, tracks: tracks.clone() };
        self.finished.push(FinishedFile {
            file: MediaFile::Init(u64::from(id)).to_string(),
            data: data.clone().into(),
            kind,
        });
        self.inits.insert(id, data);
        self.tracks = tracks;
        id
    }

    /// Adds a part of segment `msn` and returns its number; `None` if that segment is
    /// already closed.
    pub(super) fn part(
        &mut self,
        msn: u64,
        data: Bytes,
        duration: f64,
        independent: bool,
        program_time_ms: i64,
        completed_at: Instant,
    ) -> Option<u64> {
        self.playlist.init()?;
        let gap = self.playlist.target_duration() as f64;
        let seq = self.playlist.push_part(msn, duration, independent, program_time_ms, gap)?;
        self.settle();
        if self.building_msn != Some(msn) {
            self.building = ChainedBytes::default();
            self.building_msn = Some(msn);
        }
        self.building.push(data.clone());
        self.parts.insert(seq, PartRecord { data, msn, completed_at });
        self.last_part_at = Some(completed_at);
        Some(seq)
    }

    pub(super) fn segment_end(&mut self, msn: u64) {
        if self.playlist.segments().last().is_some_and(|s| s.msn == msn && !s.complete) {
            self.playlist.close_segment();
        }
        self.settle();
    }

    /// Segment `msn` has no media here. It starts where the segment before it ended, or
    /// when it has none, at `sibling_start` (where another rendition's segment `msn` starts).
    pub(super) fn gap(&mut self, msn: u64, duration: f64, sibling_start: Option<i64>) {
        let start = self
            .playlist
            .segments()
            .filter(|s| s.msn < msn)
            .last()
            .map(|s| s.program_time_ms + (s.duration * 1000.0).round() as i64 * (msn - s.msn) as i64)
            .or(sibling_start)
            .unwrap_or_else(tessera_ingest::timestamp::unix_ms);
        self.playlist.push_gap(msn, duration, start);
        self.settle();
    }

    /// Closes the open segment (its publisher left or was replaced).
    pub(super) fn close(&mut self) {
        if let Some(msn) = self.playlist.segments().last().filter(|s| !s.complete).map(|s| s.msn) {
            self.segment_end(msn);
        }
    }

    /// Moves the bytes of a segment the playlist has closed into the segment map, and drops
    /// what fell out of the retention horizon.
    fn settle(&mut self) {
        let Some(msn) = self.building_msn else { return };
        let closed = self.playlist.segments().find(|s| s.msn == msn).is_none_or(|s| s.complete);
        if !closed {
            return;
        }
        self.building_msn = None;
        let data = std::mem::take(&mut self.building);
        let entry = self.playlist.segments().find(|s| s.msn == msn);
        let (duration, init, discontinuity) = entry.map_or((0.0, 0, false), |s| (s.duration, s.init, s.discontinuity));
        if data.is_empty() {
            return;
        }
        self.recent.push_back((data.len(), duration));
        if self.recent.len() > 10 {
            self.recent.pop_front();
        }
        let kind = FinishedKind::Segment { msn, seconds: duration, init, discontinuity };
        self.finished.push(FinishedFile { file: MediaFile::Segment(msn).to_string(), data: data.clone(), kind });
        self.segments.insert(msn, data);
        let oldest = self.playlist.oldest_retained_msn();
        self.segments.retain(|m, _| *m >= oldest);
        self.parts.retain(|_, p| p.msn >= oldest);
        let used: Vec<u32> = self.playlist.segments().map(|s| s.init).collect();
        let min_used = used.iter().min().copied().or(self.playlist.init()).unwrap_or(0);
        self.inits.retain(|id, _| *id >= min_used.saturating_sub(1));
    }

    /// Renders the media playlist and keeps it for [`Self::rendered_at`]: one rendering per
    /// change of the stream (or of its keys).
    pub(super) fn render(
        &mut self,
        skip: bool,
        changes: u64,
        reports: &[RenditionReport],
        keys: &[SegmentKey],
    ) -> Bytes {
        let body = Bytes::from(self.playlist.render(skip, reports, keys));
        self.rendered[skip as usize] = Some(((changes, Self::keyed(keys)), body.clone()));
        body
    }

    /// The playlist as last rendered, if nothing it shows has changed since.
    pub(super) fn rendered_at(&self, skip: bool, changes: u64, keys: &[SegmentKey]) -> Option<Bytes> {
        match &self.rendered[skip as usize] {
            Some((at, body)) if *at == (changes, Self::keyed(keys)) => Some(body.clone()),
            _ => None,
        }
    }

    /// What of the keys a rendering depends on: how many, and where the last one starts.
    fn keyed(keys: &[SegmentKey]) -> u64 {
        keys.last().map_or(0, |k| (keys.len() as u64) << 48 ^ k.from_msn)
    }

    /// The multivariant entry naming the rendition's `playlist` (`index.m3u8`, `dvr.m3u8`):
    /// codecs and size from its tracks, bandwidth measured (and, for a transcoded rendition,
    /// at least what it was configured for).
    pub(super) fn variant(&self, playlist: &str) -> Variant {
        let mut codecs: Vec<String> = self.tracks.iter().map(|t| t.codec.rfc6381()).collect();
        codecs.dedup();
        let resolution =
            self.tracks.iter().find_map(|t| t.codec.dimensions()).or(self.planned.as_ref().and_then(|p| p.resolution));
        let frame_rate = self.tracks.iter().find_map(|t| match &t.codec {
            CodecConfig::H264(c) => c.frame_rate.filter(|(_, d)| *d > 0).map(|(n, d)| n as f64 / d as f64),
            _ => None,
        });
        let mut peak = 0.0f64;
        let (mut bytes, mut secs) = (0usize, 0.0f64);
        for (b, d) in &self.recent {
            if *d > 0.0 {
                peak = peak.max(*b as f64 * 8.0 / d);
            }
            bytes += b;
            secs += d;
        }
        let mut average = if secs > 0.0 { bytes as f64 * 8.0 / secs } else { 0.0 };
        let mut bandwidth = peak * 1.1;
        if let Some((avg, max)) = self.planned.as_ref().and_then(|p| p.bitrate) {
            // Configured video rates, plus room for the audio muxed in.
            if average == 0.0 {
                average = avg as f64 + 128_000.0;
            }
            bandwidth = bandwidth.max(max as f64 + 128_000.0);
        }
        let average = (average.round() as u64).max(1);
        Variant {
            uri: format!("{}/{playlist}", self.name),
            bandwidth: (bandwidth.round() as u64).max(average),
            average_bandwidth: average,
            codecs: codecs.join(","),
            resolution,
            frame_rate,
        }
    }
}
