//! CMAF/fMP4 writing: the init segment (`ftyp` + `moov`) and fragments (`moof` + `mdat`).
//!
//! Written by hand on a small box writer: fragmented output with signed composition
//! offsets. Always clear; [`crate::encrypt::cmaf`] protects what this writes.

use bytes::{BufMut, Bytes, BytesMut};
use tessera_ingest::aac::SAMPLES_PER_FRAME;
use tessera_ingest::media::{CodecConfig, TrackInfo, TrackKind};
use tessera_ingest::timestamp::TICKS_PER_SECOND;
use tessera_ingest::{h264, hevc};

use crate::segmenter::{PartOut, Sample};

/// Writes ISO BMFF boxes into a buffer; sizes are patched when a box closes.
#[derive(Default)]
pub struct BoxWriter {
    buf: BytesMut,
    open: Vec<usize>,
}

impl BoxWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn start(&mut self, kind: &[u8; 4]) -> &mut Self {
        self.open.push(self.buf.len());
        self.buf.put_u32(0);
        self.buf.put_slice(kind);
        self
    }

    /// Starts a full box (version and flags).
    pub fn start_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> &mut Self {
        self.start(kind);
        self.buf.put_u32(((version as u32) << 24) | (flags & 0x00ff_ffff));
        self
    }

    pub fn end(&mut self) -> &mut Self {
        let at = self.open.pop().expect("end() matches start()");
        let size = (self.buf.len() - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&size.to_be_bytes());
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.put_u8(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.put_u16(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.put_u32(v);
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.put_u64(v);
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.put_slice(v);
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.put_bytes(0, n);
        self
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn finish(self) -> BytesMut {
        assert!(self.open.is_empty(), "unclosed box");
        self.buf
    }
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// The timescale of a track in fMP4.
pub fn timescale(t: &TrackInfo) -> u32 {
    match &t.codec {
        CodecConfig::Aac(a) => a.sample_rate,
        _ => TICKS_PER_SECOND as u32,
    }
}

/// Writes the init segment for `tracks`; track `i` gets mp4 track id `i + 1`. Clear:
/// [`crate::encrypt::cmaf::protect_init`] makes its protected twin.
pub fn init_segment(tracks: &[TrackInfo]) -> Bytes {
    let mut w = BoxWriter::new();
    w.start(b"ftyp").bytes(b"iso6").u32(0).bytes(b"iso6").bytes(b"cmfc").bytes(b"mp41").bytes(b"dash").end();
    w.start(b"moov");
    w.start_full(b"mvhd", 0, 0).u32(0).u32(0).u32(1000).u32(0).u32(0x0001_0000).u16(0x0100).zeros(10);
    for m in MATRIX {
        w.u32(m);
    }
    w.zeros(24).u32(tracks.len() as u32 + 1).end();
    for (i, t) in tracks.iter().enumerate() {
        trak(&mut w, i as u32 + 1, t);
    }
    w.start(b"mvex");
    for i in 0..tracks.len() {
        w.start_full(b"trex", 0, 0).u32(i as u32 + 1).u32(1).u32(0).u32(0).u32(0).end();
    }
    w.end();
    w.end();
    w.finish().freeze()
}

fn trak(w: &mut BoxWriter, id: u32, t: &TrackInfo) {
    let (width, height) = t.codec.dimensions().unwrap_or((0, 0));
    let audio = matches!(t.codec, CodecConfig::Aac(_));
    w.start(b"trak");
    w.start_full(b"tkhd", 0, 3).u32(0).u32(0).u32(id).u32(0).u32(0).zeros(8).u16(0).u16(0);
    w.u16(if audio { 0x0100 } else { 0 }).u16(0);
    for m in MATRIX {
        w.u32(m);
    }
    w.u32(width << 16).u32(height << 16).end();
    w.start(b"mdia");
    w.start_full(b"mdhd", 0, 0).u32(0).u32(0).u32(timescale(t)).u32(0).u16(0x55c4).u16(0).end();
    let (handler, name): (&[u8; 4], &[u8]) =
        if audio { (b"soun", b"SoundHandler\0") } else { (b"vide", b"VideoHandler\0") };
    w.start_full(b"hdlr", 0, 0).u32(0).bytes(handler).zeros(12).bytes(name).end();
    w.start(b"minf");
    if audio {
        w.start_full(b"smhd", 0, 0).u32(0).end();
    } else {
        w.start_full(b"vmhd", 0, 1).zeros(8).end();
    }
    w.start(b"dinf").start_full(b"dref", 0, 0).u32(1).start_full(b"url ", 0, 1).end().end().end();
    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0).u32(1);
    sample_entry(w, t);
    w.end();
    w.start_full(b"stts", 0, 0).u32(0).end();
    w.start_full(b"stsc", 0, 0).u32(0).end();
    w.start_full(b"stsz", 0, 0).u32(0).u32(0).end();
    w.start_full(b"stco", 0, 0).u32(0).end();
    w.end().end().end().end();
}

fn sample_entry(w: &mut BoxWriter, t: &TrackInfo) {
    match &t.codec {
        CodecConfig::H264(c) => {
            visual_entry(w, b"avc1", c.width, c.height);
            w.start(b"avcC").bytes(&h264::avcc_record(c)).end();
        }
        CodecConfig::Hevc(c) => {
            visual_entry(w, b"hvc1", c.width, c.height);
            w.start(b"hvcC").bytes(&hevc::hvcc_record(c)).end();
        }
        CodecConfig::Aac(a) => {
            w.start(b"mp4a").zeros(6).u16(1).zeros(8).u16(a.channels as u16).u16(16).u16(0).u16(0);
            w.u32(a.sample_rate.min(65535) << 16);
            esds(w, &a.asc);
        }
    }
    w.end();
}

fn visual_entry(w: &mut BoxWriter, kind: &[u8; 4], width: u32, height: u32) {
    w.start(kind).zeros(6).u16(1).zeros(16).u16(width as u16).u16(height as u16);
    w.u32(0x0048_0000).u32(0x0048_0000).u32(0).u16(1).zeros(32).u16(0x0018).u16(0xffff);
}

fn esds(w: &mut BoxWriter, asc: &[u8]) {
    fn descriptor(w: &mut BoxWriter, tag: u8, len: usize) {
        // Four-byte length form, as most muxers write it.
        w.u8(tag)
            .u8(0x80 | ((len >> 21) as u8 & 0x7f))
            .u8(0x80 | ((len >> 14) as u8 & 0x7f))
            .u8(0x80 | ((len >> 7) as u8 & 0x7f))
            .u8(len as u8 & 0x7f);
    }
    let dsi_len = asc.len();
    let dcd_len = 13 + 5 + dsi_len;
    let es_len = 3 + 5 + dcd_len + 5 + 1;
    w.start_full(b"esds", 0, 0);
    descriptor(w, 0x03, es_len);
    w.u16(1).u8(0);
    descriptor(w, 0x04, dcd_len);
    w.u8(0x40).u8(0x15).bytes(&[0, 0, 0]).u32(0).u32(0);
    descriptor(w, 0x05, dsi_len);
    w.bytes(asc);
    descriptor(w, 0x06, 1);
    w.u8(0x02);
    w.end();
}

/// One track's run in a fragment.
pub struct TrackRun<'a> {
    /// mp4 track id (1-based position in the init segment).
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
    /// Sample durations and composition offsets are converted from 90 kHz to this.
    pub timescale: u32,
    /// AAC: every sample is 1024 audio samples long.
    pub fixed_duration: Option<u32>,
}

const FLAGS_SYNC: u32 = 0x0200_0000;
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

fn rescale(ticks: i64, timescale: u32) -> i64 {
    if i64::from(timescale) == TICKS_PER_SECOND {
        ticks
    } else {
        (ticks * timescale as i64 + TICKS_PER_SECOND / 2) / TICKS_PER_SECOND
    }
}

/// Writes one fragment (`moof` + `mdat`) with sequence number `seq`. Clear:
/// [`crate::encrypt::cmaf::protect_fragments`] makes its encrypted twin.
pub fn fragment(seq: u32, runs: &[TrackRun]) -> Bytes {
    let mut w = BoxWriter::new();
    w.start(b"moof");
    w.start_full(b"mfhd", 0, 0).u32(seq).end();
    let mut offset_slots = Vec::new();
    for r in runs {
        w.start(b"traf");
        w.start_full(b"tfhd", 0, 0x02_0000).u32(r.track_id).end();
        w.start_full(b"tfdt", 1, 0).u64(r.base_decode_time).end();
        // data offset, duration, size, flags, composition offset
        w.start_full(b"trun", 1, 0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800).u32(r.samples.len() as u32);
        offset_slots.push(w.len());
        w.u32(0);
        for s in r.samples {
            let duration = r.fixed_duration.unwrap_or_else(|| rescale(s.duration, r.timescale).max(1) as u32);
            w.u32(duration).u32(s.data.len() as u32).u32(if s.keyframe { FLAGS_SYNC } else { FLAGS_NON_SYNC });
            w.u32(rescale(s.pts - s.dts, r.timescale) as i32 as u32);
        }
        w.end();
        w.end();
    }
    w.end();
    let moof_len = w.len();
    let mut buf = w.finish();
    let mut data_at = moof_len + 8;
    for (slot, r) in offset_slots.iter().zip(runs) {
        buf[*slot..*slot + 4].copy_from_slice(&(data_at as u32).to_be_bytes());
        data_at += r.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mdat_len = data_at - moof_len;
    buf.put_u32(mdat_len as u32);
    buf.put_slice(b"mdat");
    for r in runs {
        for s in r.samples {
            buf.put_slice(&s.data);
        }
    }
    buf.freeze()
}

/// Decode time 0 lies this far (90 kHz ticks) before the first presented frame, so that
/// nothing before it (B-frame decode times, audio starting a little earlier) goes negative.
pub const ORIGIN_MARGIN: i64 = 10 * TICKS_PER_SECOND;

/// Keeps each track's decode time continuous across fragments.
///
/// The timeline's origin is anchored on the presentation time of the first primary frame
/// after an init segment ([`DecodeClock::anchor`]). Every rendition of a ladder starts a
/// timeline on the same boundary frame, so the same picture gets the same decode and
/// presentation time in every rendition, whatever each encoder's reordering delay.
#[derive(Debug, Default, Clone)]
pub struct DecodeClock {
    /// Stream time (90 kHz) that maps to decode time 0.
    origin: Option<i64>,
    next: std::collections::HashMap<u16, u64>,
}

impl DecodeClock {
    /// Sets the origin from the first primary frame's presentation time, if not yet set.
    pub fn anchor(&mut self, first_pts: i64) {
        self.origin.get_or_insert(first_pts - ORIGIN_MARGIN);
    }

    /// The base decode time for a run of `samples` on `track`, in `timescale` units, and
    /// advances the clock. Resynchronises when the track drifts by more than one sample.
    pub fn base(&mut self, track: u16, samples: &[Sample], timescale: u32, fixed: Option<u32>) -> u64 {
        let first = samples.first().map_or(0, |s| s.dts);
        let origin = *self.origin.get_or_insert(first);
        let from_dts = rescale(first - origin, timescale).max(0) as u64;
        let expected = self.next.get(&track).copied();
        let tolerance = fixed.unwrap_or(0).max(rescale(3600, timescale) as u32) as u64;
        let base = match expected {
            Some(e) if e.abs_diff(from_dts) <= tolerance => e,
            _ => from_dts,
        };
        let total: u64 = match fixed {
            Some(d) => d as u64 * samples.len() as u64,
            None => samples.iter().map(|s| rescale(s.duration, timescale).max(1) as u64).sum(),
        };
        self.next.insert(track, base + total);
        base
    }
}

/// One rendition's fMP4 muxer: the tracks of its init segment, its decode clock and its
/// fragment sequence; the segmenter's parts in, fMP4 bytes out.
#[derive(Debug, Default, Clone)]
pub struct CmafMuxer {
    tracks: Vec<TrackInfo>,
    clock: DecodeClock,
    sequence: u32,
}

impl CmafMuxer {
    /// A new init segment for `tracks`: the timeline starts anew.
    pub fn init(&mut self, tracks: Vec<TrackInfo>) -> Bytes {
        let data = init_segment(&tracks);
        self.tracks = tracks;
        self.clock = DecodeClock::default();
        data
    }

    /// The tracks of the init segment in force (none before the first).
    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// Starts again with nothing carried over: decode times from `origin` (a presentation
    /// time, the film's first picture's), the next fragment numbered `sequence + 1`. A VOD
    /// segment muxed after this is the same whether or not the ones before it were.
    pub fn restart_at(&mut self, origin: i64, sequence: u32) {
        self.clock = DecodeClock::default();
        self.clock.anchor(origin);
        self.sequence = sequence;
    }

    /// One part as a fragment; samples of tracks the init segment does not have are left out.
    pub fn part(&mut self, p: &PartOut) -> Bytes {
        self.sequence = self.sequence.wrapping_add(1);
        // The primary track (video if there is one) anchors the timeline.
        let primary = self.tracks.iter().find(|t| t.kind() == TrackKind::Video).or(self.tracks.first()).map(|t| t.id);
        if let Some(first) = p.tracks.iter().find(|(id, _)| Some(*id) == primary).and_then(|(_, s)| s.first()) {
            self.clock.anchor(first.pts);
        }
        let mut runs = Vec::with_capacity(p.tracks.len());
        for (track, samples) in &p.tracks {
            let Some(pos) = self.tracks.iter().position(|t| t.id == *track) else { continue };
            if samples.is_empty() {
                continue;
            }
            let info = &self.tracks[pos];
            let timescale = timescale(info);
            let fixed = fixed_duration(info);
            let base = self.clock.base(*track, samples, timescale, fixed);
            runs.push(TrackRun {
                track_id: pos as u32 + 1,
                base_decode_time: base,
                samples,
                timescale,
                fixed_duration: fixed,
            });
        }
        fragment(self.sequence, &runs)
    }
}

/// Fixed sample duration of a track in its own timescale, if it has one.
pub fn fixed_duration(t: &TrackInfo) -> Option<u32> {
    matches!(t.codec, CodecConfig::Aac(_)).then_some(SAMPLES_PER_FRAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tessera_ingest::media::AacConfig;

    fn boxes(data: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i + 8 <= data.len() {
            let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
            out.push((String::from_utf8_lossy(&data[i + 4..i + 8]).to_string(), size));
            assert!(size >= 8);
            i += size;
        }
        assert_eq!(i, data.len(), "boxes tile the buffer");
        out
    }

    #[test]
    fn fragment_offsets_point_at_the_samples() {
        let samples = vec![
            Sample { dts: 0, pts: 3600, duration: 3600, keyframe: true, data: Bytes::from_static(b"AAAA") },
            Sample { dts: 3600, pts: 3600, duration: 3600, keyframe: false, data: Bytes::from_static(b"BB") },
        ];
        let audio = vec![Sample { dts: 0, pts: 0, duration: 1920, keyframe: true, data: Bytes::from_static(b"CCC") }];
        let frag = fragment(
            7,
            &[
                TrackRun {
                    track_id: 1,
                    base_decode_time: 0,
                    samples: &samples,
                    timescale: 90_000,
                    fixed_duration: None,
                },
                TrackRun {
                    track_id: 2,
                    base_decode_time: 0,
                    samples: &audio,
                    timescale: 48_000,
                    fixed_duration: Some(1024),
                },
            ],
        );
        let b = boxes(&frag);
        assert_eq!(b.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), vec!["moof", "mdat"]);
        let mdat_at = b[0].1;
        assert_eq!(&frag[mdat_at + 8..], b"AAAABBCCC");
        // The first trun's data offset is relative to the moof start.
        let trun = frag.windows(4).position(|w| w == b"trun").unwrap();
        let off = u32::from_be_bytes(frag[trun + 12..trun + 16].try_into().unwrap()) as usize;
        assert_eq!(off, mdat_at + 8);
    }

    #[test]
    fn init_segment_is_well_formed() {
        let t = TrackInfo {
            id: 1,
            codec: CodecConfig::Aac(AacConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 2,
                asc: Bytes::from_static(&[0x12, 0x10]),
            }),
        };
        let init = init_segment(&[t]);
        let b = boxes(&init);
        assert_eq!(b.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), vec!["ftyp", "moov"]);
        let at = init.windows(4).position(|w| w == b"esds").unwrap();
        assert!(init[at..].windows(2).any(|w| w == [0x12, 0x10]));
    }

    #[test]
    fn decode_clock_is_continuous_and_resyncs_on_gaps() {
        let mut c = DecodeClock::default();
        let s = |dts| vec![Sample { dts, pts: dts, duration: 1920, keyframe: true, data: Bytes::new() }];
        assert_eq!(c.base(2, &s(1000), 48_000, Some(1024)), 0);
        assert_eq!(c.base(2, &s(2920), 48_000, Some(1024)), 1024);
        // Rounding jitter within one frame keeps the running clock.
        assert_eq!(c.base(2, &s(4850), 48_000, Some(1024)), 2048);
        // A real gap (1 s) resynchronises to the timestamps.
        assert_eq!(c.base(2, &s(1000 + 90_000), 48_000, Some(1024)), 48_000);
    }
}
