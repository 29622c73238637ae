//! Cuts frames into segments and parts.
//!
//! - A segment starts at a keyframe of the primary track (video, or audio for audio-only
//!   streams) and is cut at the first keyframe at or after the segment target.
//! - A part is cut before the frame that would take it past the effective part target: the
//!   configured target rounded up to a whole number of frames (so 29.97 fps gets 6-frame
//!   parts of 200.2 ms rather than alternating lengths). A part that starts with a keyframe
//!   is independent.
//! - Before the first output, frames are held until every track's configuration is known
//!   (at most `start_wait`), so the first init segment describes every track.
//! - Secondary tracks (audio) are placed by decode time: a secondary frame waits until a
//!   primary frame at or after its DTS arrives, then joins the part open before that primary
//!   frame is placed. Every rendition of a ladder therefore puts the same audio frames into
//!   the same segment, whatever the arrival order. A secondary frame waits at most
//!   `MAX_WAIT` of media; each track's timeline stays continuous in fMP4 because each carries
//!   its own decode time.
//! - Conversely, a primary frame that would close a part waits while a secondary track is
//!   short of it (its next frame would decode before it), as when a muxer sends audio in
//!   groups behind the video: the audio frame that straddles a cut then ends the part it
//!   starts in, so no part's audio ends before its video (players look for the next part
//!   where the buffered media ends). It waits at most `CUT_WAIT` of primary media, and not
//!   for a track that far behind (stalled or gone).
//! - Segments are numbered from 0 within a session. With [`Cuts::Keyframes`] (the leader,
//!   the source rendition) the segmenter decides where segments start; with
//!   [`Cuts::Boundaries`] (a follower, a transcoded rendition) a segment starts exactly at
//!   each primary frame given a boundary number, and takes that number, so every rendition
//!   cuts at the same presentation time under the same number.
//! - With `forward_frames`, every frame placed into a part is also emitted as
//!   [`SegmenterEvent::Frame`], in placement order, the frame that opens segment `k` with
//!   boundary `Some(k)`: what a transcoder needs to follow the leader.
//! - Timestamp policy (after 33-bit unwrapping): a primary-track DTS equal to the previous one
//!   is a duplicate and is dropped; a DTS that goes backwards, or jumps forward by more than
//!   `max_jump` (and ten frame durations), breaks the timeline: the open part and segment
//!   end, a new `Init` starts a discontinuity, the wall-clock anchor is reset, and frames
//!   are dropped until the next keyframe.

use std::collections::BTreeMap;

use tessera_ingest::media::{Frame, TrackInfo, TrackKind};
use tessera_ingest::timestamp::{TICKS_PER_MS, TICKS_PER_SECOND};

/// Longest a secondary frame waits for the primary track to reach it, 90 kHz ticks.
const MAX_WAIT: i64 = 270_000;

/// Longest a primary frame that closes a part waits for the secondary tracks, 90 kHz ticks.
const CUT_WAIT: i64 = 45_000;

/// A segment start decided by the leader: its number and wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    pub segment: u64,
    /// Program date-time of the segment's first frame, ms since the Unix epoch.
    pub program_time_ms: i64,
}

/// Who decides where segments start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cuts {
    /// At the first primary keyframe at or after the segment target.
    #[default]
    Keyframes,
    /// At primary frames given a boundary number ([`Segmenter::frame_at`]).
    Boundaries,
}

/// Segmenter settings.
#[derive(Debug, Clone)]
pub struct SegmenterConfig {
    /// Target segment duration, 90 kHz ticks.
    pub segment_target: i64,
    /// Target part duration, 90 kHz ticks.
    pub part_target: i64,
    /// How long to wait for all tracks before starting without the missing ones.
    pub start_wait: i64,
    /// A forward DTS step larger than this (and than ten frames) breaks the timeline.
    pub max_jump: i64,
    pub cuts: Cuts,
    /// Emit [`SegmenterEvent::Frame`] for every frame placed into a part.
    pub forward_frames: bool,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            segment_target: 180_000,
            part_target: 18_000,
            start_wait: TICKS_PER_SECOND,
            max_jump: TICKS_PER_SECOND,
            cuts: Cuts::Keyframes,
            forward_frames: false,
        }
    }
}

/// One sample with its duration (90 kHz ticks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub dts: i64,
    pub pts: i64,
    pub duration: i64,
    pub keyframe: bool,
    pub data: bytes::Bytes,
}

/// A finished part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartOut {
    /// Number of the segment the part belongs to (from 0 within the session).
    pub segment: u64,
    /// Index of the part within its segment.
    pub index: u32,
    pub independent: bool,
    /// Duration of the primary track's samples, 90 kHz ticks.
    pub duration: i64,
    /// Wall-clock time of the first primary sample, ms since the Unix epoch.
    pub program_time_ms: i64,
    /// Samples per track, in track-id order.
    pub tracks: Vec<(u16, Vec<Sample>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmenterEvent {
    /// The tracks of the init segment that applies to the parts that follow.
    Init(Vec<TrackInfo>),
    Part(PartOut),
    /// The segment made of the parts since the last `SegmentEnd` is complete.
    SegmentEnd {
        segment: u64,
        duration: i64,
    },
    /// A frame placed into a part (with `forward_frames`); `boundary` is set on the frame
    /// that opens a segment.
    Frame {
        frame: Frame,
        boundary: Option<Boundary>,
    },
}

struct Open {
    segment: u64,
    start_dts: i64,
    index: u32,
    program_time_ms: i64,
    /// Primary samples whose duration is known only once the next one arrives.
    tracks: BTreeMap<u16, Vec<Frame>>,
}

/// The segmenter for one stream session.
pub struct Segmenter {
    config: SegmenterConfig,
    tracks: BTreeMap<u16, TrackInfo>,
    primary: Option<u16>,
    started: bool,
    held: Vec<(Frame, Option<Boundary>)>,
    held_since_ms: Option<i64>,
    /// Effective part target in ticks, set when the frame duration is known.
    part_target: Option<i64>,
    segment_start: i64,
    segment_duration: i64,
    part: Option<Open>,
    part_index: u32,
    /// Number of the open segment, and of the next one to open.
    segment: u64,
    next_segment: u64,
    /// Secondary frames waiting for the primary track to reach them.
    queued: std::collections::VecDeque<Frame>,
    /// Primary frames (with their arrival time) held at a cut until the secondary tracks
    /// reach it, and those behind them.
    at_cut: std::collections::VecDeque<(Frame, Option<Boundary>, i64)>,
    /// Per secondary track, the decode time of its last frame and the step before it.
    secondary_reach: BTreeMap<u16, (i64, i64)>,
    last_primary_duration: i64,
    pending_init: bool,
    /// Anchor between stream time and wall-clock time.
    anchor: Option<(i64, i64)>,
    /// After a timeline break, primary frames are dropped until a keyframe.
    need_keyframe: bool,
    last_primary_dts: Option<i64>,
    /// Timeline breaks seen (backwards or large forward steps).
    pub timeline_breaks: u64,
    /// Duplicate primary frames dropped.
    pub duplicates: u64,
}

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        Segmenter {
            config,
            tracks: BTreeMap::new(),
            primary: None,
            started: false,
            held: Vec::new(),
            held_since_ms: None,
            part_target: None,
            segment_start: 0,
            segment_duration: 0,
            part: None,
            part_index: 0,
            segment: 0,
            next_segment: 0,
            queued: Default::default(),
            at_cut: Default::default(),
            secondary_reach: BTreeMap::new(),
            last_primary_duration: 3600,
            pending_init: false,
            anchor: None,
            need_keyframe: false,
            last_primary_dts: None,
            timeline_breaks: 0,
            duplicates: 0,
        }
    }

    /// The part target actually used (a whole number of frames), once known.
    pub fn effective_part_target(&self) -> Option<i64> {
        self.part_target
    }

    /// A track appeared or changed.
    pub fn track(&mut self, info: TrackInfo) -> Vec<SegmenterEvent> {
        let changed = self.tracks.get(&info.id) != Some(&info);
        self.tracks.insert(info.id, info);
        if changed && self.started {
            self.pending_init = true;
        }
        self.primary = self
            .tracks
            .values()
            .find(|t| t.kind() == TrackKind::Video)
            .or_else(|| self.tracks.values().next())
            .map(|t| t.id);
        Vec::new()
    }

    /// A frame arrived at wall-clock `now_ms`.
    pub fn frame(&mut self, frame: Frame, now_ms: i64) -> Vec<SegmenterEvent> {
        self.frame_at(frame, now_ms, None)
    }

    /// A frame arrived at wall-clock `now_ms`; with [`Cuts::Boundaries`], `boundary` says
    /// that this primary frame starts that segment, numbered and timed as the leader did.
    pub fn frame_at(&mut self, frame: Frame, now_ms: i64, boundary: Option<Boundary>) -> Vec<SegmenterEvent> {
        let mut out = Vec::new();
        if !self.tracks.contains_key(&frame.track) {
            return out;
        }
        if !self.started {
            self.held_since_ms.get_or_insert(now_ms);
            self.held.push((frame, boundary));
            if self.ready_to_start(now_ms) {
                self.start(now_ms, &mut out);
            }
            return out;
        }
        self.push(frame, boundary, now_ms, &mut out);
        out
    }

    /// The input was interrupted (a transcoder died): forgets the open part and segment
    /// without emitting them, so the next boundary starts cleanly, with no discontinuity.
    pub fn abandon(&mut self) {
        self.part = None;
        self.queued.clear();
        self.at_cut.clear();
        self.secondary_reach.clear();
        self.held.clear();
        self.segment_duration = 0;
        self.part_index = 0;
        self.last_primary_dts = None;
    }

    /// The input ended: completes the open part and segment.
    pub fn flush(&mut self) -> Vec<SegmenterEvent> {
        let mut out = Vec::new();
        while let Some((f, b, now_ms)) = self.at_cut.pop_front() {
            self.place_primary(f, b, now_ms, &mut out);
        }
        self.release_queued(i64::MAX, &mut out);
        if let Some(open) = self.part.take() {
            let end = self.primary_end(&open).unwrap_or(open.start_dts);
            self.close_part(open, end, &mut out);
        }
        if self.segment_duration > 0 {
            out.push(SegmenterEvent::SegmentEnd { segment: self.segment, duration: self.segment_duration });
            self.segment_duration = 0;
        }
        self.part_index = 0;
        out
    }

    /// Whether a held primary frame can open the first segment.
    fn can_open(&self, f: &Frame, boundary: Option<Boundary>) -> bool {
        match self.config.cuts {
            Cuts::Keyframes => f.keyframe,
            Cuts::Boundaries => boundary.is_some(),
        }
    }

    fn ready_to_start(&self, now_ms: i64) -> bool {
        let Some(primary) = self.primary else { return false };
        let Some((first_key, _)) = self.held.iter().find(|(f, b)| f.track == primary && self.can_open(f, *b)) else {
            return false;
        };
        let primary_is_video = self.tracks.get(&primary).is_some_and(|t| t.kind() == TrackKind::Video);
        let all_seen = self.tracks.keys().all(|id| self.held.iter().any(|(f, _)| f.track == *id));
        // A video stream almost always has sound whose track is announced a little later.
        let complete = all_seen && (!primary_is_video || self.tracks.len() > 1);
        let span =
            self.held.iter().filter(|(f, _)| f.track == primary).map(|(f, _)| f.dts).max().unwrap_or(first_key.dts)
                - first_key.dts;
        let waited = now_ms - self.held_since_ms.unwrap_or(now_ms);
        complete || span >= self.config.start_wait || waited * TICKS_PER_MS >= self.config.start_wait * 2
    }

    fn start(&mut self, now_ms: i64, out: &mut Vec<SegmenterEvent>) {
        let primary = self.primary.expect("ready_to_start checked");
        let start = self
            .held
            .iter()
            .find(|(f, b)| f.track == primary && self.can_open(f, *b))
            .map(|(f, _)| f.dts)
            .expect("checked");
        self.started = true;
        let present: Vec<u16> = self.held.iter().map(|(f, _)| f.track).collect();
        self.tracks.retain(|id, _| present.contains(id));
        out.push(SegmenterEvent::Init(self.tracks.values().cloned().collect()));
        self.anchor = Some((
            start,
            now_ms
                - self
                    .held
                    .iter()
                    .filter(|(f, _)| f.track == primary)
                    .map(|(f, _)| f.dts)
                    .max()
                    .map_or(0, |d| (d - start) / TICKS_PER_MS),
        ));
        let held = std::mem::take(&mut self.held);
        for (f, b) in held {
            if f.dts >= start || (f.track != primary && f.pts >= start) {
                self.push(f, b, now_ms, out);
            }
        }
    }

    fn program_time(&self, dts: i64) -> i64 {
        let (a_dts, a_ms) = self.anchor.unwrap_or((dts, 0));
        a_ms + (dts - a_dts) / TICKS_PER_MS
    }

    fn primary_end(&self, open: &Open) -> Option<i64> {
        let p = self.primary?;
        open.tracks.get(&p).and_then(|v| v.last()).map(|f| f.dts + self.last_primary_duration)
    }

    fn push(&mut self, frame: Frame, boundary: Option<Boundary>, now_ms: i64, out: &mut Vec<SegmenterEvent>) {
        let primary = self.primary.expect("started");
        if frame.track != primary {
            let reach = self.secondary_reach.entry(frame.track).or_insert((frame.dts, 0));
            if frame.dts > reach.0 {
                *reach = (frame.dts, (frame.dts - reach.0).min(TICKS_PER_SECOND));
            }
            if self.pending_init || self.need_keyframe {
                self.release_cut(out);
                return; // wait for the cut that applies the new init
            }
            self.queued.push_back(frame);
            // The primary track is not coming (stalled video): let the oldest go.
            while self.queued.back().map(|f| f.dts) > self.queued.front().map(|f| f.dts + MAX_WAIT) {
                let f = self.queued.pop_front().expect("non-empty");
                self.place_secondary(f, out);
            }
            self.release_cut(out);
            return;
        }
        if !self.at_cut.is_empty() || self.waits_for_secondary(&frame, boundary) {
            self.at_cut.push_back((frame, boundary, now_ms));
            self.release_cut(out);
            return;
        }
        self.place_primary(frame, boundary, now_ms, out);
    }

    /// Places the primary frames held at a cut that need wait no longer.
    fn release_cut(&mut self, out: &mut Vec<SegmenterEvent>) {
        while let Some((front, boundary, _)) = self.at_cut.front() {
            let newest = self.at_cut.back().map_or(front.dts, |(f, ..)| f.dts);
            if newest - front.dts <= CUT_WAIT && self.waits_for_secondary(front, *boundary) {
                return;
            }
            let (f, b, now_ms) = self.at_cut.pop_front().expect("checked");
            self.place_primary(f, b, now_ms, out);
        }
    }

    /// Whether `frame` would close the open part while a secondary track not far behind
    /// has yet to send a frame that decodes before it.
    fn waits_for_secondary(&self, frame: &Frame, boundary: Option<Boundary>) -> bool {
        let short = self.secondary_reach.values().any(|&(last, step)| {
            let next = last + step;
            next < frame.dts && frame.dts - next <= CUT_WAIT
        });
        short && self.part.as_ref().is_some_and(|open| self.cuts(open, frame, boundary).1)
    }

    /// Whether `frame` closes the open segment, and the open part.
    fn cuts(&self, open: &Open, frame: &Frame, boundary: Option<Boundary>) -> (bool, bool) {
        let seg_elapsed = self.segment_duration + (frame.dts - open.start_dts);
        let cut_segment = match self.config.cuts {
            Cuts::Keyframes => frame.keyframe && (seg_elapsed >= self.config.segment_target - 90 || self.pending_init),
            Cuts::Boundaries => boundary.is_some(),
        };
        let part_len = frame.dts - open.start_dts;
        let target = self.part_target.unwrap_or(self.config.part_target);
        (cut_segment, cut_segment || part_len + self.last_primary_duration > target + 1)
    }

    fn place_primary(&mut self, frame: Frame, boundary: Option<Boundary>, now_ms: i64, out: &mut Vec<SegmenterEvent>) {
        let primary = self.primary.expect("started");
        if let Some(prev) = self.last_primary_dts {
            let step = frame.dts - prev;
            if step == 0 {
                self.duplicates += 1;
                return;
            }
            if step < 0 || step > self.config.max_jump.max(10 * self.last_primary_duration) {
                self.break_timeline(prev, &frame, now_ms, out);
            }
        }
        self.last_primary_dts = Some(frame.dts);
        if self.need_keyframe {
            if !frame.keyframe {
                return;
            }
            self.need_keyframe = false;
        }
        self.release_queued(frame.dts, out);
        if let (Cuts::Boundaries, Some(b)) = (self.config.cuts, boundary) {
            self.anchor = Some((frame.dts, b.program_time_ms));
        }
        // Frame duration from the previous primary sample.
        let prev_dts = self.part.as_ref().and_then(|o| o.tracks.get(&primary)).and_then(|v| v.last()).map(|f| f.dts);
        if let Some(prev) = prev_dts {
            let d = frame.dts - prev;
            if d > 0 && d < TICKS_PER_SECOND {
                self.last_primary_duration = d;
                if self.part_target.is_none() {
                    let frames = ((self.config.part_target as f64 / d as f64) - 0.01).ceil().max(1.0) as i64;
                    self.part_target = Some(frames * d);
                }
            }
        }
        let mut opened = None;
        if self.part.is_none() {
            opened = self.open_part(&frame, boundary);
        } else {
            let (cut_segment, cut_part) = self.cuts(self.part.as_ref().expect("checked"), &frame, boundary);
            if cut_part {
                let open = self.part.take().expect("checked");
                self.close_part(open, frame.dts, out);
                if cut_segment {
                    out.push(SegmenterEvent::SegmentEnd { segment: self.segment, duration: self.segment_duration });
                    self.segment_duration = 0;
                    self.part_index = 0;
                    self.segment_start = frame.dts;
                    if self.pending_init {
                        self.pending_init = false;
                        out.push(SegmenterEvent::Init(self.tracks.values().cloned().collect()));
                    }
                }
                opened = self.open_part(&frame, boundary);
            }
        }
        if self.config.forward_frames {
            let boundary = opened.map(|segment| Boundary { segment, program_time_ms: self.program_time(frame.dts) });
            out.push(SegmenterEvent::Frame { frame: frame.clone(), boundary });
        }
        self.part.as_mut().expect("open").tracks.entry(primary).or_default().push(frame);
    }

    /// Places the queued secondary frames that decode before `dts`.
    fn release_queued(&mut self, dts: i64, out: &mut Vec<SegmenterEvent>) {
        while self.queued.front().is_some_and(|f| f.dts < dts) {
            let f = self.queued.pop_front().expect("checked");
            self.place_secondary(f, out);
        }
    }

    fn place_secondary(&mut self, frame: Frame, out: &mut Vec<SegmenterEvent>) {
        let Some(open) = self.part.as_mut() else { return };
        if self.config.forward_frames {
            out.push(SegmenterEvent::Frame { frame: frame.clone(), boundary: None });
        }
        open.tracks.entry(frame.track).or_default().push(frame);
    }

    /// Ends the open part and segment and starts a discontinuity at `frame`.
    fn break_timeline(&mut self, prev: i64, frame: &Frame, now_ms: i64, out: &mut Vec<SegmenterEvent>) {
        self.timeline_breaks += 1;
        self.release_queued(prev + 1, out);
        self.queued.clear();
        if let Some(open) = self.part.take() {
            self.close_part(open, prev + self.last_primary_duration, out);
        }
        if self.segment_duration > 0 {
            out.push(SegmenterEvent::SegmentEnd { segment: self.segment, duration: self.segment_duration });
        }
        self.segment_duration = 0;
        self.part_index = 0;
        self.pending_init = false;
        out.push(SegmenterEvent::Init(self.tracks.values().cloned().collect()));
        self.anchor = Some((frame.dts, now_ms));
        self.need_keyframe = true;
    }

    /// Opens a part at `first`; returns the segment number if it opens a segment too.
    fn open_part(&mut self, first: &Frame, boundary: Option<Boundary>) -> Option<u64> {
        let opens_segment = self.segment_duration == 0 && self.part_index == 0;
        if opens_segment {
            self.segment_start = first.dts;
            self.segment = boundary.map_or(self.next_segment, |b| b.segment);
            self.next_segment = self.segment + 1;
        }
        self.part = Some(Open {
            segment: self.segment,
            start_dts: first.dts,
            index: self.part_index,
            program_time_ms: self.program_time(first.dts),
            tracks: BTreeMap::new(),
        });
        self.part_index += 1;
        opens_segment.then_some(self.segment)
    }

    fn close_part(&mut self, open: Open, end_dts: i64, out: &mut Vec<SegmenterEvent>) {
        let primary = self.primary.expect("started");
        let independent = open.tracks.get(&primary).and_then(|v| v.first()).is_some_and(|f| f.keyframe);
        // A timestamp gap before the frame that closes the part (a feed looped, frames
        // dropped upstream) is not media: the last frame lasts no longer than keeps the part
        // within its target, or than a usual frame.
        let target = self.part_target.unwrap_or(self.config.part_target);
        let mut end_dts = end_dts;
        let mut tracks = Vec::new();
        for (id, frames) in open.tracks {
            let end = if id == primary { end_dts } else { i64::MAX };
            let mut samples: Vec<Sample> = Vec::with_capacity(frames.len());
            for (i, f) in frames.iter().enumerate() {
                let next = frames.get(i + 1).map(|n| n.dts);
                let duration = match next {
                    Some(n) => n - f.dts,
                    None if end != i64::MAX => {
                        let limit = (target - (f.dts - open.start_dts)).max(self.last_primary_duration);
                        let d = (end - f.dts).min(limit);
                        end_dts = f.dts + d;
                        d
                    }
                    None => samples.last().map_or(1920, |s: &Sample| s.duration),
                };
                samples.push(Sample {
                    dts: f.dts,
                    pts: f.pts,
                    duration: duration.max(1),
                    keyframe: f.keyframe,
                    data: f.data.clone(),
                });
            }
            tracks.push((id, samples));
        }
        let duration = end_dts - open.start_dts;
        self.segment_duration += duration;
        out.push(SegmenterEvent::Part(PartOut {
            segment: open.segment,
            index: open.index,
            independent,
            duration,
            program_time_ms: open.program_time_ms,
            tracks,
        }));
    }
}

#[cfg(test)]
mod tests;
