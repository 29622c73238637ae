//! VOD packaging, sans-IO: where a film's segments begin ([`plan_segments`]), and its
//! playlists ([`media_playlist`], [`iframe_playlist`]).
//!
//! Segments begin at the source's keyframes, the first keyframe at or past each target
//! duration: a function of the source alone, so every rendition of an asset (the source
//! repackaged, and each transcoded rung, whose encoder is told to place an IDR exactly
//! there) has the same segments, and a transcode that stopped can resume at any segment.
//! Times are 90 kHz ticks of the source's presentation timeline.

use std::collections::BTreeMap;
use std::fmt::Write;

use bytes::{Bytes, BytesMut};
use tessera_ingest::timestamp::TICKS_PER_SECOND;
use tessera_ingest::{Frame, TrackKind};

use crate::fmp4::CmafMuxer;
use crate::playlist::SegmentKey;
use crate::segmenter::{PartOut, Sample};

/// One planned segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPlan {
    pub index: u32,
    /// Presentation time of its first picture (a source keyframe).
    pub start: i64,
    /// Until the next segment's start (or the film's end).
    pub duration: i64,
}

impl SegmentPlan {
    pub fn end(&self) -> i64 {
        self.start + self.duration
    }

    pub fn seconds(&self) -> f64 {
        self.duration as f64 / TICKS_PER_SECOND as f64
    }
}

/// Segments over keyframes at presentation times `keyframes` (in any order) of a film that
/// ends at `end`, each at least `target` long where the keyframes allow (the last may be
/// shorter). Keyframes before the first one's time, or at or past `end`, start nothing.
pub fn plan_segments(keyframes: &[i64], end: i64, target: i64) -> Vec<SegmentPlan> {
    let mut starts: Vec<i64> = keyframes.iter().copied().filter(|k| *k < end).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut cuts: Vec<i64> = Vec::new();
    for k in starts {
        if cuts.last().is_none_or(|last| k - last >= target) {
            cuts.push(k);
        }
    }
    cuts.iter()
        .enumerate()
        .map(|(i, start)| {
            let next = cuts.get(i + 1).copied().unwrap_or(end);
            SegmentPlan { index: i as u32, start: *start, duration: next - start }
        })
        .collect()
}

/// A segment's samples, gathered from frames in decode order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentSamples {
    pub index: u32,
    pub video: Vec<Sample>,
    pub audio: Vec<Sample>,
}

/// Gathers frames (decode order) into the planned segments: video from each planned
/// keyframe to the next, audio by presentation time. A segment is handed out once the next
/// one's keyframe arrives (its last picture's duration is known then), or at the end.
#[derive(Debug)]
pub struct SegmentAssembler {
    starts: Vec<i64>,
    /// The segment whose video is being gathered (`None` before the first keyframe).
    current: Option<u32>,
    video: Vec<Sample>,
    audio: BTreeMap<u32, Vec<Sample>>,
    last_video_duration: i64,
}

impl SegmentAssembler {
    pub fn new(plan: &[SegmentPlan]) -> Self {
        SegmentAssembler {
            starts: plan.iter().map(|p| p.start).collect(),
            current: None,
            video: Vec::new(),
            audio: BTreeMap::new(),
            last_video_duration: 3000,
        }
    }

    /// The segment a presentation time falls in.
    fn segment_of(&self, pts: i64) -> Option<u32> {
        self.starts.partition_point(|s| *s <= pts).checked_sub(1).map(|i| i as u32)
    }

    /// Takes one frame; a finished segment when this frame opens the next.
    pub fn push(&mut self, frame: Frame) -> Option<SegmentSamples> {
        let sample =
            |f: &Frame| Sample { dts: f.dts, pts: f.pts, duration: 0, keyframe: f.keyframe, data: f.data.clone() };
        match frame.kind {
            TrackKind::Audio => {
                if let Some(seg) = self.segment_of(frame.pts) {
                    let list = self.audio.entry(seg).or_default();
                    if let Some(prev) = list.last_mut() {
                        prev.duration = (frame.dts - prev.dts).max(1);
                    }
                    list.push(sample(&frame));
                }
                None
            }
            TrackKind::Video => {
                if let Some(prev) = self.video.last_mut() {
                    prev.duration = (frame.dts - prev.dts).max(1);
                    self.last_video_duration = prev.duration;
                }
                let opens = self.starts.binary_search(&frame.pts).ok().filter(|_| frame.keyframe).map(|i| i as u32);
                let done = match opens {
                    Some(next) if self.current != Some(next) => {
                        let done = self.current.map(|c| self.take(c));
                        self.current = Some(next);
                        done
                    }
                    _ => None,
                };
                if self.current.is_some() {
                    self.video.push(sample(&frame));
                }
                done
            }
        }
    }

    fn take(&mut self, index: u32) -> SegmentSamples {
        let mut video = std::mem::take(&mut self.video);
        if let Some(last) = video.last_mut().filter(|l| l.duration == 0) {
            last.duration = self.last_video_duration;
        }
        let mut audio = self.audio.remove(&index).unwrap_or_default();
        if let [.., before, last] = audio.as_mut_slice() {
            if last.duration == 0 {
                last.duration = before.duration;
            }
        }
        // Audio of segments before this one that never had video is dropped with them.
        self.audio.retain(|k, _| *k > index);
        SegmentSamples { index, video, audio }
    }

    /// The last segment.
    pub fn finish(&mut self) -> Option<SegmentSamples> {
        let current = self.current.take()?;
        Some(self.take(current))
    }
}

/// A packaged segment: its bytes (two fragments: the keyframe alone, then the rest) and the
/// first fragment's length, the I-frame playlist's byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct PackagedSegment {
    pub data: Bytes,
    pub iframe_len: u64,
}

/// Muxes a segment's samples (track ids `video` and `audio` of the muxer's init segment),
/// decode times counted from `origin`: the same bytes whatever was muxed before.
pub fn package_segment(
    muxer: &mut CmafMuxer,
    s: &SegmentSamples,
    origin: i64,
    video: u16,
    audio: u16,
) -> PackagedSegment {
    muxer.restart_at(origin, s.index.saturating_mul(2));
    let part = |tracks: Vec<(u16, Vec<Sample>)>, index: u32| PartOut {
        segment: s.index as u64,
        index,
        independent: index == 0,
        duration: 0,
        program_time_ms: 0,
        tracks,
    };
    let (key, rest) = s.video.split_at(s.video.len().min(1));
    let first = muxer.part(&part(vec![(video, key.to_vec())], 0));
    let mut data = BytesMut::from(&first[..]);
    if !rest.is_empty() || !s.audio.is_empty() {
        data.extend_from_slice(&muxer.part(&part(vec![(video, rest.to_vec()), (audio, s.audio.clone())], 1)));
    }
    PackagedSegment { data: data.freeze(), iframe_len: first.len() as u64 }
}

/// One segment as a playlist lists it, with the init segment it needs (a rendition whose
/// job was resumed on another node may have one per claim).
#[derive(Debug, Clone, PartialEq)]
pub struct VodSegment {
    pub uri: String,
    pub map: String,
    pub seconds: f64,
    /// Its timeline does not follow the segment before it.
    pub discontinuity: bool,
}

/// `EXT-X-MAP` before the first segment and wherever the init segment changes.
fn write_map(s: &mut String, current: &mut Option<String>, map: &str) {
    if current.as_deref() != Some(map) {
        let _ = writeln!(s, "#EXT-X-MAP:URI=\"{map}\"");
        *current = Some(map.to_string());
    }
}

/// The media playlist of a finished rendition: every segment, `EXT-X-ENDLIST`; under
/// `keys` (each from its segment number on) the `EXT-X-KEY` in force, as live playlists
/// write it: AES-128 with clear init segments, or `SAMPLE-AES` (cbcs) before an init
/// segment per key, `init-E-KID.mp4` for `init-E.mp4`.
pub fn media_playlist(segments: &[VodSegment], keys: &[SegmentKey]) -> String {
    let target = segments.iter().map(|s| s.seconds).fold(0.0f64, f64::max).round().max(1.0) as u64;
    let mut s = String::with_capacity(64 + segments.len() * 32);
    s.push_str("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
    s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let (mut map, mut key_in_force): (Option<String>, Option<&str>) = (None, None);
    for (k, seg) in segments.iter().enumerate() {
        if seg.discontinuity {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let key = keys.iter().rev().find(|key| key.from_msn <= k as u64);
        match key.and_then(|key| key.sample_aes.as_deref().map(|kid| (key, kid))) {
            Some((key, kid)) => {
                if key_in_force != Some(key.uri.as_str()) {
                    key.write_sample_aes(&mut s, kid);
                    key_in_force = Some(key.uri.as_str());
                }
                let protected =
                    seg.map.strip_suffix(".mp4").map_or_else(|| seg.map.clone(), |m| format!("{m}-{kid}.mp4"));
                write_map(&mut s, &mut map, &protected);
            }
            None => {
                if map.as_deref() != Some(seg.map.as_str()) && key_in_force.take().is_some() {
                    s.push_str("#EXT-X-KEY:METHOD=NONE\n"); // init segments stay clear
                }
                write_map(&mut s, &mut map, &seg.map);
                let uri = key.map(|key| key.uri.as_str());
                if uri != key_in_force {
                    match uri {
                        Some(uri) => {
                            let _ = writeln!(s, "#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\",KEYFORMAT=\"identity\"");
                        }
                        None => s.push_str("#EXT-X-KEY:METHOD=NONE\n"),
                    }
                    key_in_force = uri;
                }
            }
        }
        let _ = writeln!(s, "#EXTINF:{:.5},\n{}", seg.seconds, seg.uri);
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

/// One keyframe for an I-frame playlist: the bytes of its `moof` and sample within a
/// segment, and how long until the next keyframe listed.
#[derive(Debug, Clone, PartialEq)]
pub struct IFrame {
    pub uri: String,
    pub map: String,
    pub offset: u64,
    pub length: u64,
    pub seconds: f64,
}

/// The I-frame playlist of a rendition (trick play, thumbnails while seeking).
pub fn iframe_playlist(frames: &[IFrame]) -> String {
    let target = frames.iter().map(|f| f.seconds).fold(0.0f64, f64::max).round().max(1.0) as u64;
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
    s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-I-FRAMES-ONLY\n");
    let mut map = None;
    for f in frames {
        write_map(&mut s, &mut map, &f.map);
        let _ = writeln!(s, "#EXTINF:{:.5},\n#EXT-X-BYTERANGE:{}@{}\n{}", f.seconds, f.length, f.offset, f.uri);
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ingest::ts::TsDemuxer;
    use tessera_ingest::{DemuxEvent, TrackInfo};

    const S: i64 = 90_000;

    fn sample() -> (Vec<TrackInfo>, Vec<Frame>) {
        let mut demux = TsDemuxer::new();
        let ts = include_bytes!("../../samples/sample.ts");
        let (mut tracks, mut frames) = (Vec::new(), Vec::new());
        for e in demux.push(ts).into_iter().chain(demux.flush()).flatten() {
            match e {
                DemuxEvent::Track(t) => tracks.push(t),
                DemuxEvent::Frame(f) => frames.push(f),
            }
        }
        tracks.sort_by_key(|t| t.kind() != TrackKind::Video);
        (tracks, frames)
    }

    #[test]
    fn frames_gather_into_the_planned_segments_and_a_segment_muxes_the_same_alone_or_after_others() {
        let (tracks, frames) = sample();
        let video: Vec<&Frame> = frames.iter().filter(|f| f.kind == TrackKind::Video).collect();
        let keys: Vec<i64> = video.iter().filter(|f| f.keyframe).map(|f| f.pts).collect();
        let end = video.iter().map(|f| f.pts).max().unwrap() + 3600;
        let plan = plan_segments(&keys, end, 2 * S);
        assert!(plan.len() >= 3, "{plan:?}");
        let mut assembler = SegmentAssembler::new(&plan);
        let mut segments: Vec<SegmentSamples> = frames.iter().cloned().filter_map(|f| assembler.push(f)).collect();
        segments.extend(assembler.finish());
        assert_eq!(segments.len(), plan.len());
        let first_key = keys.iter().min().unwrap();
        let expected_video =
            video.iter().filter(|f| f.dts >= video.iter().find(|v| v.pts == *first_key).unwrap().dts).count();
        assert_eq!(segments.iter().map(|s| s.video.len()).sum::<usize>(), expected_video, "every picture once");
        for (s, p) in segments.iter().zip(&plan) {
            assert_eq!(s.index, p.index);
            assert!(s.video[0].keyframe && s.video[0].pts == p.start, "segment {} opens on its keyframe", s.index);
            assert!(s.audio.iter().all(|a| a.pts >= p.start && a.pts < p.end()), "audio by time");
            assert!(s.video.iter().chain(&s.audio).all(|x| x.duration > 0), "every sample has a duration");
        }

        let ids = (tracks[0].id, tracks[1].id);
        let origin = *first_key;
        let mut through = CmafMuxer::default();
        let _ = through.init(tracks.clone());
        let all: Vec<PackagedSegment> =
            segments.iter().map(|s| package_segment(&mut through, s, origin, ids.0, ids.1)).collect();
        let mut alone = CmafMuxer::default();
        let _ = alone.init(tracks.clone());
        let last = segments.last().unwrap();
        assert_eq!(
            package_segment(&mut alone, last, origin, ids.0, ids.1),
            all[all.len() - 1],
            "resumable at any segment"
        );
        // The first fragment is the keyframe alone: one sample in its trun.
        let first = &all[0].data[..all[0].iframe_len as usize];
        let trun = first.windows(4).position(|w| w == b"trun").unwrap();
        assert_eq!(u32::from_be_bytes(first[trun + 8..trun + 12].try_into().unwrap()), 1);
    }

    #[test]
    fn segments_start_at_the_first_keyframe_past_each_target() {
        // Keyframes every 2 s but one long GOP (10 s to 15 s); the film ends at 21 s.
        let keys = [0, 2, 4, 6, 8, 10, 15, 17, 19].map(|s| s * S);
        let plan = plan_segments(&keys, 21 * S, 6 * S);
        let starts: Vec<i64> = plan.iter().map(|p| p.start / S).collect();
        assert_eq!(starts, [0, 6, 15], "{plan:?}");
        assert_eq!(plan.iter().map(|p| p.duration / S).collect::<Vec<_>>(), [6, 9, 6]);
        assert_eq!(plan.last().unwrap().end(), 21 * S, "the last runs to the end");
        assert_eq!(plan.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1, 2]);
        // The same keyframes in another order plan the same: decode order does not matter.
        let mut shuffled = keys;
        shuffled.reverse();
        assert_eq!(plan_segments(&shuffled, 21 * S, 6 * S), plan);
        assert!(plan_segments(&[], 10 * S, 6 * S).is_empty());
        assert_eq!(plan_segments(&[0, 30 * S], 21 * S, 6 * S).len(), 1, "a keyframe past the end starts nothing");
    }

    #[test]
    fn playlists_are_vod_with_every_segment_and_an_end() {
        let segs: Vec<VodSegment> = [6.0, 9.0, 5.96]
            .iter()
            .enumerate()
            .map(|(i, s)| VodSegment {
                uri: format!("seg-{i}.m4s"),
                map: if i < 2 { "init-1.mp4" } else { "init-2.mp4" }.into(),
                seconds: *s,
                discontinuity: i == 2,
            })
            .collect();
        let p = media_playlist(&segs, &[]);
        assert!(p.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:9\n#EXT-X-PLAYLIST-TYPE:VOD\n"), "{p}");
        assert!(p.contains("#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXTINF:6.00000,\nseg-0.m4s\n"), "{p}");
        assert!(
            p.contains("seg-1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n#EXTINF:5.96000,\nseg-2.m4s\n"),
            "{p}"
        );
        assert_eq!(p.matches("#EXT-X-MAP").count(), 2, "a map only where it changes: {p}");
        assert!(p.ends_with("#EXTINF:5.96000,\nseg-2.m4s\n#EXT-X-ENDLIST\n"), "{p}");
        let aes =
            [SegmentKey { from_msn: 0, uri: "/license/vod/f/k1".into(), sample_aes: None, drm_tags: String::new() }];
        let p = media_playlist(&segs, &aes);
        assert!(
            p.contains("#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"/license/vod/f/k1\""),
            "{p}"
        );
        assert!(
            p.contains("#EXT-X-KEY:METHOD=NONE\n#EXT-X-MAP:URI=\"init-2.mp4\"\n#EXT-X-KEY:METHOD=AES-128"),
            "init segments stay clear: {p}"
        );
        let kid = "0123456789abcdef0123456789abcdef";
        let cbcs = [SegmentKey {
            from_msn: 0,
            uri: "/license/clearkey/vod/f/k1".into(),
            sample_aes: Some(kid.into()),
            drm_tags: String::new(),
        }];
        let p = media_playlist(&segs, &cbcs);
        assert_eq!(p.matches("#EXT-X-KEY:METHOD=SAMPLE-AES").count(), 1, "{p}");
        assert!(p.contains(&format!("KEYID=0x{kid}\n#EXT-X-MAP:URI=\"init-1-{kid}.mp4\"")), "{p}");
        assert!(p.contains(&format!("#EXT-X-MAP:URI=\"init-2-{kid}.mp4\"")), "{p}");
        assert!(!p.contains("METHOD=NONE"), "{p}");
        let frames =
            [IFrame { uri: "seg-0.m4s".into(), map: "init-1.mp4".into(), offset: 0, length: 4000, seconds: 2.0 }];
        let i = iframe_playlist(&frames);
        assert!(i.contains("#EXT-X-I-FRAMES-ONLY\n"), "{i}");
        assert!(i.contains("#EXTINF:2.00000,\n#EXT-X-BYTERANGE:4000@0\nseg-0.m4s\n"), "{i}");
        assert!(i.ends_with("#EXT-X-ENDLIST\n"));
    }
}
