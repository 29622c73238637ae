//! LL-HLS playlists as pure functions of [`PlaylistState`].
//!
//! Follows draft-pantos-hls-rfc8216bis and Apple's low-latency server profile:
//! - parts are named by a stream-wide part sequence number (`part-N.m4s`), so a
//!   preload hint is valid whichever segment the next part lands in;
//! - `EXT-X-PART` tags are kept for the segments within three target durations of the live
//!   edge, and every removed part or segment stays downloadable for as long as the store
//!   retains it (see `retained_segments`);
//! - `TARGETDURATION` never shrinks: it starts at the configured target and grows only if
//!   an encoder's GOP forces a longer segment;
//! - `PART-TARGET` is the segmenter's effective part target, fixed for the stream's life;
//! - a delta update (`_HLS_skip=YES`) skips the segments that end at least
//!   `CAN-SKIP-UNTIL` (six target durations) before the end of the playlist;
//! - segments are numbered by the caller, so every rendition of a ladder gives the same
//!   media sequence number to the same stretch of time; a number a rendition has no media
//!   for is listed as an `EXT-X-GAP` segment (players skip it or switch rendition), so the
//!   numbering never has holes;
//! - each media playlist ends with an `EXT-X-RENDITION-REPORT` for every other rendition,
//!   so a player can switch without an extra round trip.

use std::collections::VecDeque;
use std::fmt::Write;

use crate::names::{protected_init, MediaFile};

/// Playlist settings.
#[derive(Debug, Clone)]
pub struct PlaylistConfig {
    /// Configured segment target, seconds.
    pub segment_target: f64,
    /// Segments listed in the live window.
    pub window_segments: usize,
    /// Segments whose bytes stay available after leaving the window.
    pub retained_segments: usize,
}

impl Default for PlaylistConfig {
    fn default() -> Self {
        PlaylistConfig { segment_target: 2.0, window_segments: 10, retained_segments: 10 }
    }
}

/// A part in the playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct PartEntry {
    /// Stream-wide part sequence number.
    pub seq: u64,
    pub duration: f64,
    pub independent: bool,
}

/// A segment in the playlist (the last one may still be open).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub msn: u64,
    pub parts: Vec<PartEntry>,
    pub duration: f64,
    pub program_time_ms: i64,
    pub discontinuity: bool,
    pub init: u32,
    pub complete: bool,
    /// No media: listed with `EXT-X-GAP`.
    pub gap: bool,
}

/// An encryption key in force from a segment on, as `EXT-X-KEY` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentKey {
    pub from_msn: u64,
    pub uri: String,
    /// `cbcs`: the key's id (32 hex digits). The key is `METHOD=SAMPLE-AES` for EME ClearKey
    /// (`KEYFORMAT="org.w3.clearkey"`, `KEYID`), and each key has its own init segment
    /// (`init-N-KID.mp4`), whose `tenc` names it. `None`: HLS AES-128, the IV being the
    /// segment number.
    pub sample_aes: Option<String>,
    /// `cbcs` with a DRM provider's key: the `EXT-X-KEY` lines of the other DRM systems it
    /// signals (FairPlay's `skd://` key, Widevine's and PlayReady's), written after
    /// ClearKey's. Empty: none.
    pub drm_tags: String,
}

impl SegmentKey {
    /// The `EXT-X-KEY` lines of a `SAMPLE-AES` key of id `kid`: EME ClearKey's, then those
    /// of the provider's DRM systems.
    pub(crate) fn write_sample_aes(&self, s: &mut String, kid: &str) {
        let _ = writeln!(
            s,
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"{}\",KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\",KEYID=0x{kid}",
            self.uri
        );
        for line in self.drm_tags.lines().filter(|l| l.starts_with("#EXT-X-KEY:")) {
            s.push_str(line);
            s.push('\n');
        }
    }
}

/// The tags already written for the segments before: the init segment (and the key id it
/// names, under `cbcs`) and the key in force.
#[derive(Default)]
struct HeadState<'k> {
    init: Option<(u32, Option<&'k str>)>,
    key: Option<&'k str>,
}

impl SegmentEntry {
    /// The tags before a segment's media: its discontinuity (not for the first listed),
    /// its init segment when it changes, the key when it changes, its wall-clock time.
    /// Under AES-128 init segments stay clear: a new `EXT-X-MAP` under a key is preceded by
    /// `EXT-X-KEY:METHOD=NONE`, and the key follows it. Under `SAMPLE-AES` the key comes
    /// first, then the init segment that names it.
    fn write_head<'k>(&self, s: &mut String, first: bool, head: &mut HeadState<'k>, keys: &'k [SegmentKey]) {
        if self.discontinuity && !first {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let key = keys.iter().rev().find(|k| k.from_msn <= self.msn);
        let uri = key.map(|k| k.uri.as_str());
        match key.and_then(|k| k.sample_aes.as_deref().map(|kid| (k, kid))) {
            Some((key, kid)) => {
                if head.key != uri {
                    key.write_sample_aes(s, kid);
                    head.key = uri;
                }
                if head.init != Some((self.init, Some(kid))) {
                    let _ = writeln!(s, "#EXT-X-MAP:URI=\"{}\"", protected_init(u64::from(self.init), kid));
                    head.init = Some((self.init, Some(kid)));
                }
            }
            None => {
                if head.init != Some((self.init, None)) {
                    if head.key.take().is_some() {
                        s.push_str("#EXT-X-KEY:METHOD=NONE\n");
                    }
                    let _ = writeln!(s, "#EXT-X-MAP:URI=\"{}\"", MediaFile::Init(u64::from(self.init)));
                    head.init = Some((self.init, None));
                }
                if uri != head.key {
                    match uri {
                        Some(uri) => {
                            let _ = writeln!(s, "#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\",KEYFORMAT=\"identity\"");
                        }
                        None => s.push_str("#EXT-X-KEY:METHOD=NONE\n"),
                    }
                    head.key = uri;
                }
            }
        }
        let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", format_program_time(self.program_time_ms));
    }
}

/// Where another rendition stands, for `EXT-X-RENDITION-REPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// Relative to the playlist the report appears in (`../480p/index.m3u8`).
    pub uri: String,
    pub last_msn: u64,
    pub last_part: Option<u64>,
}

/// What a blocking playlist request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRequest {
    pub msn: u64,
    pub part: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    Ready,
    Wait,
    /// More than two segments ahead of the live edge (HTTP 400).
    TooFarAhead,
}

/// The state of one rendition's media playlist.
#[derive(Debug, Clone)]
pub struct PlaylistState {
    config: PlaylistConfig,
    segments: VecDeque<SegmentEntry>,
    next_msn: u64,
    next_part_seq: u64,
    discontinuity_sequence: u64,
    target_duration: u64,
    part_target: Option<f64>,
    init: Option<u32>,
    pending_discontinuity: bool,
    ended: bool,
    /// Segments that left the live window, kept for the DVR playlist (their parts
    /// dropped), and how many seconds of them to keep.
    history: VecDeque<SegmentEntry>,
    history_discontinuity_sequence: u64,
    dvr_seconds: f64,
}

impl PlaylistState {
    pub fn new(config: PlaylistConfig) -> Self {
        let target_duration = config.segment_target.ceil().max(1.0) as u64;
        PlaylistState {
            config,
            segments: VecDeque::new(),
            next_msn: 0,
            next_part_seq: 0,
            discontinuity_sequence: 0,
            target_duration,
            part_target: None,
            init: None,
            pending_discontinuity: false,
            ended: false,
            history: VecDeque::new(),
            history_discontinuity_sequence: 0,
            dvr_seconds: 0.0,
        }
    }

    /// Keeps `seconds` of segments past the live window for [`Self::render_dvr`] (0: none).
    pub fn set_dvr_seconds(&mut self, seconds: f64) {
        self.dvr_seconds = seconds.max(0.0);
    }

    pub fn config(&self) -> &PlaylistConfig {
        &self.config
    }

    /// A (new) init segment applies from the next segment. After the first, it starts a
    /// discontinuity (a publisher came back, or the codec changed).
    pub fn set_init(&mut self, init: u32) {
        if self.init.is_some() {
            self.pending_discontinuity = true;
            self.close_open_segment();
        }
        self.init = Some(init);
        self.ended = false;
    }

    pub fn init(&self) -> Option<u32> {
        self.init
    }

    /// Fixes the part target on first use.
    pub fn set_part_target(&mut self, seconds: f64) {
        self.part_target.get_or_insert(seconds);
    }

    pub fn part_target(&self) -> f64 {
        self.part_target.unwrap_or(0.2)
    }

    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// The sequence number the next part will get.
    pub fn next_part_seq(&self) -> u64 {
        self.next_part_seq
    }

    /// Makes the next part's number at least `seq`: a node mirroring another's parts, or
    /// taking a stream over from it, names them as that node does. Numbers never go back,
    /// so a part URI never names two different parts.
    pub fn number_parts_from(&mut self, seq: u64) {
        self.next_part_seq = self.next_part_seq.max(seq);
    }

    /// The init segment of segment `msn`, while it is listed (live window or DVR).
    pub fn init_of(&self, msn: u64) -> Option<u32> {
        self.segments.iter().chain(&self.history).find(|s| s.msn == msn).map(|s| s.init)
    }

    pub fn segments(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.segments.iter()
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Adds a part to segment `msn` and returns its part sequence number. A part for a later
    /// segment completes the open one; numbers skipped on the way are listed as gaps of
    /// `gap_duration` seconds (callers that know better call [`Self::push_gap`] first). A
    /// part for an earlier, closed segment is refused (`None`).
    pub fn push_part(
        &mut self,
        msn: u64,
        duration: f64,
        independent: bool,
        program_time_ms: i64,
        gap_duration: f64,
    ) -> Option<u64> {
        match self.segments.back() {
            Some(last) if last.msn > msn || (last.msn == msn && last.complete) => return None,
            Some(last) if last.msn == msn => {}
            _ => {
                self.close_open_segment();
                while self.next_msn < msn {
                    let t = program_time_ms - ((msn - self.next_msn) as f64 * gap_duration * 1000.0) as i64;
                    self.push_gap(self.next_msn, gap_duration, t);
                }
                self.next_msn = self.next_msn.max(msn + 1);
                self.segments.push_back(SegmentEntry {
                    msn,
                    parts: Vec::new(),
                    duration: 0.0,
                    program_time_ms,
                    discontinuity: std::mem::take(&mut self.pending_discontinuity),
                    init: self.init.unwrap_or(0),
                    complete: false,
                    gap: false,
                });
            }
        }
        let seq = self.next_part_seq;
        self.next_part_seq += 1;
        let seg = self.segments.back_mut().expect("just ensured");
        seg.parts.push(PartEntry { seq, duration, independent });
        seg.duration += duration;
        Some(seq)
    }

    /// Lists segment `msn` as a gap (no media) of `duration` seconds, starting at
    /// `program_time_ms`. An open segment with that number is closed with that duration
    /// (its media stops short); a number already listed, or behind, is left alone.
    pub fn push_gap(&mut self, msn: u64, duration: f64, program_time_ms: i64) {
        if let Some(last) = self.segments.back_mut() {
            if last.msn == msn && !last.complete {
                last.duration = last.duration.max(duration);
                self.close_segment();
                return;
            }
            if last.msn >= msn {
                return;
            }
        }
        self.close_open_segment();
        while self.next_msn < msn {
            // Never leave a hole in the numbering.
            let d = self.target_duration as f64;
            self.push_gap(self.next_msn, d, program_time_ms - ((msn - self.next_msn) as f64 * d * 1000.0) as i64);
        }
        self.next_msn = msn + 1;
        self.segments.push_back(SegmentEntry {
            msn,
            parts: Vec::new(),
            duration,
            program_time_ms,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            init: self.init.unwrap_or(0),
            complete: false,
            gap: true,
        });
        self.close_segment();
    }

    /// Makes a playlist that lists nothing yet begin at `msn` rather than list the numbers
    /// before it as gaps (a node that starts following a stream at its live edge).
    pub fn start_at(&mut self, msn: u64) {
        if self.segments.is_empty() && self.next_msn < msn {
            self.next_msn = msn;
        }
    }

    /// The number the next new segment gets unless told otherwise.
    pub fn next_msn(&self) -> u64 {
        self.next_msn
    }

    /// Where this rendition stands, for the other renditions' reports.
    pub fn report(&self, uri: String) -> Option<RenditionReport> {
        let last = self.segments.back()?;
        let last_part = (!last.parts.is_empty()).then(|| last.parts.len() as u64 - 1);
        Some(RenditionReport { uri, last_msn: last.msn, last_part })
    }

    /// Completes the open segment; returns the msn of segments that left the retention
    /// horizon (their bytes may be dropped).
    pub fn close_segment(&mut self) -> Option<u64> {
        let seg = self.segments.back_mut()?;
        if seg.complete {
            return None;
        }
        seg.complete = true;
        if seg.parts.is_empty() && !seg.gap {
            // Nothing was published into it after all.
            self.segments.pop_back();
            return None;
        }
        let d = seg.duration.round() as u64;
        if d > self.target_duration {
            tracing::warn!(
                duration = seg.duration,
                target = self.target_duration,
                "segment longer than the target duration: the encoder's keyframe interval is too long"
            );
            self.target_duration = d;
        }
        let msn = seg.msn;
        self.next_msn = self.next_msn.max(msn + 1);
        while self.segments.iter().filter(|s| s.complete).count() > self.config.window_segments {
            let mut removed = self.segments.pop_front().expect("non-empty");
            if self.segments.front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_sequence += 1;
            }
            removed.parts = Vec::new();
            self.history.push_back(removed);
        }
        self.trim_history();
        Some(msn)
    }

    /// Drops history beyond the DVR window, counting the discontinuities it takes along.
    fn trim_history(&mut self) {
        let mut kept: f64 = self.history.iter().map(|s| s.duration).sum();
        while kept > self.dvr_seconds + 1e-9 {
            let Some(old) = self.history.pop_front() else { break };
            kept -= old.duration;
            let next = self.history.front().or(self.segments.front());
            if next.is_some_and(|s| s.discontinuity) {
                self.history_discontinuity_sequence += 1;
            }
        }
    }

    /// The DVR playlist: the segments kept past the live window, then the live window's
    /// complete ones, without parts or low-latency tags (a player seeks back in it; the live
    /// edge is in [`Self::render`]). Segments past the window are served from the storage
    /// tiers. With `since_ms` (a premiere's release time, Unix milliseconds), segments that
    /// ended before it are left out: a viewer cannot seek back into the rehearsal.
    pub fn render_dvr(&self, since_ms: Option<i64>, keys: &[SegmentKey]) -> String {
        let td = self.target_duration;
        let all: Vec<&SegmentEntry> = self.history.iter().chain(self.segments.iter().filter(|s| s.complete)).collect();
        let ends_before = |s: &SegmentEntry| {
            since_ms.is_some_and(|since| s.program_time_ms + (s.duration * 1000.0).round() as i64 <= since)
        };
        let skipped = all.iter().take_while(|s| ends_before(s)).count();
        // Discontinuities between the first kept in history and the first listed now.
        let skipped_discontinuities = all.iter().take(skipped + 1).skip(1).filter(|s| s.discontinuity).count() as u64;
        let listed = &all[skipped..];
        let mut s = String::with_capacity(64 * listed.len() + 256);
        s.push_str("#EXTM3U\n#EXT-X-VERSION:9\n");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{td}");
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", listed.first().map_or(self.next_msn, |s| s.msn));
        let _ = writeln!(
            s,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.history_discontinuity_sequence + skipped_discontinuities
        );
        let mut head = HeadState::default();
        for (i, seg) in listed.iter().enumerate() {
            seg.write_head(&mut s, i == 0, &mut head, keys);
            if seg.gap {
                s.push_str("#EXT-X-GAP\n");
            }
            let _ = writeln!(s, "#EXTINF:{:.5},\n{}", seg.duration, MediaFile::Segment(seg.msn));
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }

    fn close_open_segment(&mut self) {
        if self.segments.back().is_some_and(|s| !s.complete && !s.parts.is_empty()) {
            self.close_segment();
        }
    }

    /// The stream ended: the playlist gets `EXT-X-ENDLIST`.
    pub fn end(&mut self) {
        self.close_open_segment();
        self.ended = true;
    }

    /// The oldest msn whose bytes must still be served.
    pub fn oldest_retained_msn(&self) -> u64 {
        self.segments.front().map_or(0, |s| s.msn).saturating_sub(self.config.retained_segments as u64)
    }

    pub fn first_msn(&self) -> u64 {
        self.segments.front().map_or(self.next_msn, |s| s.msn)
    }

    /// The msn of the newest segment (open or complete), if any.
    pub fn last_msn(&self) -> Option<u64> {
        self.segments.back().map(|s| s.msn)
    }

    /// Where a blocking request stands.
    pub fn block_state(&self, req: BlockRequest) -> BlockState {
        let last = self.last_msn();
        let last_complete = self.segments.iter().rev().find(|s| s.complete).map(|s| s.msn);
        if req.msn > last.map_or(1, |m| m + 2) {
            return BlockState::TooFarAhead;
        }
        if self.ended {
            return BlockState::Ready;
        }
        let ready = match req.part {
            None => last_complete.is_some_and(|c| c >= req.msn),
            Some(p) => match self.segments.iter().find(|s| s.msn == req.msn) {
                Some(s) if s.gap || (p as usize) < s.parts.len() => true,
                // Past the last part of a completed segment: the first part of the next.
                Some(s) if s.complete => {
                    self.segments.iter().any(|n| n.msn == req.msn + 1 && !n.parts.is_empty())
                        || self.segments.back().is_some_and(|b| b.msn > req.msn + 1)
                }
                Some(_) => false,
                None => last.is_some_and(|l| l > req.msn) || self.first_msn() > req.msn,
            },
        };
        if ready {
            BlockState::Ready
        } else {
            BlockState::Wait
        }
    }

    /// Renders the media playlist. `skip` asks for a delta update (`_HLS_skip=YES`);
    /// `reports` are the other renditions' positions.
    /// The media playlist; with `keys`, the segments are said to be encrypted with them
    /// (`EXT-X-KEY`), each from its `from_msn` on.
    pub fn render(&self, skip: bool, reports: &[RenditionReport], keys: &[SegmentKey]) -> String {
        // An ended playlist is always sent whole: a player finishing a stream (hls.js among
        // them) wants the complete list to end on.
        let skip = skip && !self.ended;
        let td = self.target_duration;
        let part_target = self.part_target();
        let skip_until = 6.0 * td as f64;
        let mut s = String::with_capacity(4096);
        s.push_str("#EXTM3U\n#EXT-X-VERSION:9\n");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{td}");
        let _ = writeln!(
            s,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until:.1},PART-HOLD-BACK={:.3},HOLD-BACK={:.1}",
            3.0 * part_target,
            3.0 * td as f64
        );
        let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={part_target:.5}");
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.first_msn());
        let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);

        // Segments older than CAN-SKIP-UNTIL from the end may be skipped.
        // Measured over complete segments only: the conservative reading of "the end of the
        // playlist", which every client agrees with.
        let total: f64 = self.segments.iter().filter(|s| s.complete).map(|s| s.duration).sum();
        let mut skipped = 0;
        if skip {
            let mut start = 0.0;
            // Only segments that end before the skip boundary are skipped.
            for seg in &self.segments {
                if !seg.complete || total - (start + seg.duration) < skip_until - 1e-9 {
                    break;
                }
                start += seg.duration;
                skipped += 1;
            }
            if skipped > 0 {
                let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
            }
        }
        // EXT-X-PART tags for the segments within three target durations of the end.
        let mut parts_from = self.segments.len();
        let mut acc = 0.0;
        for (i, seg) in self.segments.iter().enumerate().rev() {
            acc += seg.duration;
            if acc > 3.0 * td as f64 + 1e-6 {
                break;
            }
            parts_from = i;
        }
        let mut head = HeadState::default();
        for (i, seg) in self.segments.iter().enumerate().skip(skipped) {
            seg.write_head(&mut s, i == 0, &mut head, keys);
            if seg.gap {
                s.push_str("#EXT-X-GAP\n");
            } else if i >= parts_from || !seg.complete {
                for p in &seg.parts {
                    let _ = write!(s, "#EXT-X-PART:DURATION={:.5},URI=\"{}\"", p.duration, MediaFile::Part(p.seq));
                    if p.independent {
                        s.push_str(",INDEPENDENT=YES");
                    }
                    s.push('\n');
                }
            }
            if seg.complete {
                let _ = writeln!(s, "#EXTINF:{:.5},\n{}", seg.duration, MediaFile::Segment(seg.msn));
            }
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        } else if !self.segments.is_empty() {
            let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", MediaFile::Part(self.next_part_seq));
        }
        for r in reports {
            let _ = write!(s, "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}", r.uri, r.last_msn);
            if let Some(p) = r.last_part {
                let _ = write!(s, ",LAST-PART={p}");
            }
            s.push('\n');
        }
        s
    }
}

/// ISO 8601 with milliseconds, UTC.
pub fn format_program_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, sec) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{sec:02}.{millis:03}Z")
}

/// One variant of the multivariant playlist.
#[derive(Debug, Clone)]
pub struct Variant {
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

/// Renders a multivariant playlist; `notes` become comment lines (what an operator reading
/// the playlist should know, such as a rendition dropped for load), ignored by players.
pub fn render_multivariant(variants: &[Variant], notes: &[String]) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for n in notes {
        let _ = writeln!(s, "# {}", n.replace('\n', " "));
    }
    for v in variants {
        let _ = write!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
            v.bandwidth, v.average_bandwidth, v.codecs
        );
        if let Some((w, h)) = v.resolution {
            let _ = write!(s, ",RESOLUTION={w}x{h}");
        }
        if let Some(f) = v.frame_rate {
            let _ = write!(s, ",FRAME-RATE={f:.3}");
        }
        let _ = writeln!(s, "\n{}", v.uri);
    }
    s
}

#[cfg(test)]
pub(crate) mod tests;
