//! MP4 and QuickTime sources (progressive: `moov` first or last), sans-IO.
//!
//! The driver reads the file; this core says what to read and what it means:
//! 1. [`TopLevel`] takes the top-level box headers, one at a time from offset 0 (16 bytes
//!    each, or fewer at the end of the file), and says where the next one is, until it
//!    knows where `moov` lies — or that the file is not an MP4 (boxes that do not tile it,
//!    no `moov`, two of them).
//! 2. [`SourceIndex::parse`] takes the `moov` box and the file's length: the first H.264 or
//!    HEVC track and the first AAC track, and every sample of both (offset, size, decode and
//!    presentation time in 90 kHz ticks, sync or not) in decode order. Sample tables that
//!    disagree (counts, chunks, a sample past the end of the file) are refused.
//! 3. [`SourceIndex::frame`] turns a sample's bytes into a [`Frame`]: video with 4-byte NAL
//!    lengths and the parameter sets left to the track's configuration, as every other
//!    demuxer here produces it.
//!
//! Timestamps: each track's decode times are the running sum of its `stts` durations from 0,
//! presentation times add `ctts`; both are rescaled from the track's `mdhd` timescale to
//! 90 kHz (rounded down, computed from the running total so rounding never drifts). Edit
//! lists are not applied: tracks start at their first sample.

use bytes::Bytes;
use mp4_atom::{Codec, Decode, Moov, StszSamples, Trak};

use crate::media::{CodecConfig, Frame, TrackInfo, TrackKind};
use crate::timestamp::TICKS_PER_SECOND;
use crate::{aac, h264, hevc};

/// The video track's id in [`SourceIndex`] frames.
pub const VIDEO_TRACK: u16 = 1;
/// The audio track's id.
pub const AUDIO_TRACK: u16 = 2;

/// Why a file is not a usable MP4 source; offsets are from the start of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    #[error("not an MP4/QuickTime file: {0}")]
    NotMp4(String),
    #[error(
        "box `{kind}` at byte {offset} claims {size} bytes, past the end of the file ({file_len} bytes): truncated?"
    )]
    PastEnd { kind: String, offset: u64, size: u64, file_len: u64 },
    #[error("no `moov` box: the file is truncated or not finished")]
    NoMoov,
    #[error("two `moov` boxes (at bytes {0} and {1})")]
    TwoMoov(u64, u64),
    #[error("the `moov` box cannot be read: {0}")]
    Moov(String),
    #[error("no H.264, HEVC or AAC track (tracks: {0})")]
    NoTracks(String),
    #[error("track {track}: {what}")]
    Track { track: u32, what: String },
    #[error(
        "track {track}, sample {sample}: {size} bytes at byte {offset}, past the end of the file ({file_len} bytes)"
    )]
    SampleOutside { track: u32, sample: usize, offset: u64, size: u32, file_len: u64 },
    #[error(
        "track {track}, sample {sample} at byte {offset}: a NAL unit claims {len} bytes, more than the sample holds"
    )]
    BadNal { track: u32, sample: usize, offset: u64, len: usize },
}

/// A top-level box, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopBox {
    pub kind: [u8; 4],
    pub offset: u64,
    pub size: u64,
}

/// Walks the top-level boxes to find `moov`.
#[derive(Debug)]
pub struct TopLevel {
    file_len: u64,
    next: u64,
    moov: Option<TopBox>,
    count: usize,
}

/// What [`TopLevel`] needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopStep {
    /// Read up to 16 bytes at this offset and pass them to [`TopLevel::header`].
    ReadHeader(u64),
    /// Every box is known; the `moov` is this one.
    Done(TopBox),
}

/// Kinds a top-level box of an MP4 or QuickTime file may have; anything else at the start
/// means the file is something else.
const TOP_KINDS: [&[u8; 4]; 10] =
    [b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"pdin", b"udta"];

impl TopLevel {
    pub fn new(file_len: u64) -> Self {
        TopLevel { file_len, next: 0, moov: None, count: 0 }
    }

    /// Where to start.
    pub fn start(&self) -> TopStep {
        TopStep::ReadHeader(0)
    }

    /// The header bytes read at the offset asked for.
    pub fn header(&mut self, bytes: &[u8]) -> Result<TopStep, Mp4Error> {
        let offset = self.next;
        if bytes.len() < 8 {
            return Err(Mp4Error::NotMp4(format!("{} stray bytes at byte {offset}", bytes.len())));
        }
        let kind: [u8; 4] = bytes[4..8].try_into().expect("4 bytes");
        let name = String::from_utf8_lossy(&kind).into_owned();
        if self.count == 0 && !TOP_KINDS.contains(&&kind) {
            return Err(Mp4Error::NotMp4(format!("it starts with {:02x?}", &bytes[..8])));
        }
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(Mp4Error::NotMp4(format!("a box at byte {offset} has no valid type ({:02x?})", kind)));
        }
        let size = match u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) {
            0 => self.file_len - offset,
            1 if bytes.len() >= 16 => u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes")),
            1 => return Err(Mp4Error::NotMp4(format!("box `{name}` at byte {offset} has a cut 64-bit size"))),
            n => n as u64,
        };
        if size < 8 {
            return Err(Mp4Error::NotMp4(format!("box `{name}` at byte {offset} claims {size} bytes")));
        }
        if offset.checked_add(size).is_none_or(|end| end > self.file_len) {
            return Err(Mp4Error::PastEnd { kind: name, offset, size, file_len: self.file_len });
        }
        self.count += 1;
        if &kind == b"moov" {
            if let Some(first) = self.moov {
                return Err(Mp4Error::TwoMoov(first.offset, offset));
            }
            self.moov = Some(TopBox { kind, offset, size });
        }
        self.next = offset + size;
        if self.next < self.file_len {
            return Ok(TopStep::ReadHeader(self.next));
        }
        self.moov.map(TopStep::Done).ok_or(Mp4Error::NoMoov)
    }
}

/// Where one sample lies and when it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    pub track: u16,
    pub offset: u64,
    pub size: u32,
    /// 90 kHz ticks from the track's start.
    pub dts: i64,
    pub pts: i64,
    pub keyframe: bool,
}

/// A source's tracks and samples.
#[derive(Debug, Clone)]
pub struct SourceIndex {
    pub tracks: Vec<TrackInfo>,
    /// Every sample of every track, in decode order (ties: video first).
    pub samples: Vec<SampleRef>,
    /// The longest track, in seconds.
    pub duration_s: f64,
    /// The video track's NAL length size and its mp4 track id, for [`SourceIndex::frame`].
    video: Option<(usize, u32)>,
    audio_track_id: u32,
}

impl SourceIndex {
    /// Indexes a `moov` box (its bytes, header included) of a file of `file_len` bytes.
    pub fn parse(moov: &[u8], file_len: u64) -> Result<Self, Mp4Error> {
        let mut moov = moov.to_vec();
        let entry_kinds = unused::free_unused(&mut moov);
        let moov = Moov::decode(&mut &moov[..]).map_err(|e| Mp4Error::Moov(e.to_string()))?;
        let mut index =
            SourceIndex { tracks: Vec::new(), samples: Vec::new(), duration_s: 0.0, video: None, audio_track_id: 0 };
        let mut seen = Vec::new();
        for (n, trak) in moov.trak.iter().enumerate() {
            let id = trak.tkhd.track_id;
            let Some(codec) = trak.mdia.minf.stbl.stsd.codecs.first() else {
                seen.push(format!("{id}: no sample description"));
                continue;
            };
            let (ours, config, length_size) = match track_config(id, codec)? {
                Some(t) => t,
                None => {
                    let kind = entry_kinds.get(n).map(|k| String::from_utf8_lossy(k).trim_end().to_string());
                    seen.push(format!("{id}: {}", kind.unwrap_or_else(|| "unknown".into())));
                    continue;
                }
            };
            let taken = match config.kind() {
                TrackKind::Video => index.video.is_some(),
                TrackKind::Audio => index.audio_track_id != 0,
            };
            if taken {
                continue;
            }
            let samples = sample_table(trak, ours, file_len)?;
            let timescale = trak.mdia.mdhd.timescale.max(1) as f64;
            let ticks: u64 =
                trak.mdia.minf.stbl.stts.entries.iter().map(|e| e.sample_count as u64 * e.sample_delta as u64).sum();
            index.duration_s = index.duration_s.max(ticks as f64 / timescale);
            match config.kind() {
                TrackKind::Video => index.video = Some((length_size, id)),
                TrackKind::Audio => index.audio_track_id = id,
            }
            index.tracks.push(TrackInfo { id: ours, codec: config });
            index.samples.extend(samples);
        }
        if index.tracks.is_empty() {
            return Err(Mp4Error::NoTracks(if seen.is_empty() { "none".into() } else { seen.join(", ") }));
        }
        index.tracks.sort_by_key(|t| t.id);
        index.samples.sort_by_key(|s| (s.dts, s.track, s.offset));
        Ok(index)
    }

    /// A sample's bytes as a [`Frame`] (`index` is its position in [`SourceIndex::samples`],
    /// for errors).
    pub fn frame(&self, index: usize, data: &[u8]) -> Result<Frame, Mp4Error> {
        let s = self.samples[index];
        let data = match (s.track, self.video) {
            (VIDEO_TRACK, Some((length_size, id))) => {
                let hevc = self.tracks.iter().any(|t| matches!(t.codec, CodecConfig::Hevc(_)));
                crate::media::to_sample(data, length_size, hevc).map_err(|len| Mp4Error::BadNal {
                    track: id,
                    sample: index,
                    offset: s.offset,
                    len,
                })?
            }
            _ => Bytes::copy_from_slice(data),
        };
        let kind = if s.track == VIDEO_TRACK { TrackKind::Video } else { TrackKind::Audio };
        Ok(Frame { track: s.track, kind, pts: s.pts, dts: s.dts, keyframe: s.keyframe, data })
    }
}

/// Our track id, configuration and NAL length size for a sample description; `None` for a
/// codec this does not take (the track is left out).
fn track_config(id: u32, codec: &Codec) -> Result<Option<(u16, CodecConfig, usize)>, Mp4Error> {
    let bad = |what: String| Mp4Error::Track { track: id, what };
    Ok(Some(match codec {
        Codec::Avc1(mp4_atom::Avc1 { avcc, .. }) | Codec::Avc3(mp4_atom::Avc3 { avcc, .. }) => {
            let sps = avcc.sequence_parameter_sets.first().ok_or_else(|| bad("avcC has no SPS".into()))?;
            let pps = avcc.picture_parameter_sets.iter().map(|p| Bytes::copy_from_slice(p)).collect();
            let config = h264::parse_sps(sps, pps).map_err(|e| bad(format!("its SPS: {e}")))?;
            (VIDEO_TRACK, CodecConfig::H264(config), avcc.length_size as usize)
        }
        Codec::Hvc1(mp4_atom::Hvc1 { hvcc, .. }) | Codec::Hev1(mp4_atom::Hev1 { hvcc, .. }) => {
            let nal = |t: u8| hvcc.arrays.iter().find(|a| a.nal_unit_type == t).and_then(|a| a.nalus.first());
            let (Some(vps), Some(sps)) = (nal(32), nal(33)) else {
                return Err(bad("hvcC lacks its VPS or SPS".into()));
            };
            let pps = hvcc.arrays.iter().filter(|a| a.nal_unit_type == 34).flat_map(|a| &a.nalus);
            let pps = pps.map(|p| Bytes::copy_from_slice(p)).collect();
            let config =
                hevc::parse_sps(Bytes::copy_from_slice(vps), sps, pps).map_err(|e| bad(format!("its SPS: {e}")))?;
            (VIDEO_TRACK, CodecConfig::Hevc(config), hvcc.length_size_minus_one as usize + 1)
        }
        Codec::Mp4a(mp4a) => {
            let dsi = mp4a
                .esds
                .es_desc
                .dec_config
                .dec_specific
                .as_ref()
                .ok_or_else(|| bad("AAC without its AudioSpecificConfig".into()))?;
            let config =
                aac::parse_asc(&dsi.raw).ok_or_else(|| bad("an AudioSpecificConfig this cannot read".into()))?;
            (AUDIO_TRACK, CodecConfig::Aac(config), 0)
        }
        _ => return Ok(None),
    }))
}

/// Every sample of a track, checked against its own tables and the file's length.
fn sample_table(trak: &Trak, ours: u16, file_len: u64) -> Result<Vec<SampleRef>, Mp4Error> {
    let id = trak.tkhd.track_id;
    let bad = |what: String| Mp4Error::Track { track: id, what };
    let stbl = &trak.mdia.minf.stbl;
    let timescale = trak.mdia.mdhd.timescale;
    if timescale == 0 {
        return Err(bad("its timescale is 0".into()));
    }
    // Every count in these tables comes from the file: none is trusted with an allocation
    // before it is checked against what a file of this length can hold.
    let sizes: Vec<u32> = match &stbl.stsz.samples {
        StszSamples::Identical { count, size } => {
            if *count > 0 && (*size == 0 || *count as u64 * *size as u64 > file_len) {
                return Err(bad(format!("stsz claims {count} samples of {size} bytes in a file of {file_len} bytes")));
            }
            vec![*size; *count as usize]
        }
        StszSamples::Different { sizes } => sizes.clone(),
    };
    let count = sizes.len();
    let timed: u64 = stbl.stts.entries.iter().map(|e| e.sample_count as u64).sum();
    if timed != count as u64 {
        return Err(bad(format!("stts times {timed} samples, stsz sizes {count}")));
    }
    let chunks: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (Some(c), _) => c.entries.iter().map(|o| *o as u64).collect(),
        (None, Some(c)) => c.entries.clone(),
        (None, None) => return Err(bad("no chunk offsets (stco/co64)".into())),
    };
    // Sample offsets from the chunks.
    let mut offsets = Vec::with_capacity(count);
    let stsc = &stbl.stsc.entries;
    for (i, e) in stsc.iter().enumerate() {
        let first = e.first_chunk as usize;
        let end = stsc.get(i + 1).map_or(chunks.len() + 1, |n| n.first_chunk as usize);
        if first == 0 || end < first || end > chunks.len() + 1 || e.samples_per_chunk == 0 {
            return Err(bad(format!(
                "stsc entry {i} (chunk {first}, {} samples) does not fit {} chunks",
                e.samples_per_chunk,
                chunks.len()
            )));
        }
        for chunk in first..end {
            let mut at = chunks[chunk - 1];
            for _ in 0..e.samples_per_chunk {
                let Some(size) = sizes.get(offsets.len()) else { break };
                offsets.push(at);
                at = at.saturating_add(*size as u64);
            }
        }
    }
    if offsets.len() != count {
        return Err(bad(format!("the chunks hold {} samples, stsz sizes {count}", offsets.len())));
    }
    let mut cts = Vec::with_capacity(count);
    if let Some(ctts) = &stbl.ctts {
        let covered: u64 = ctts.entries.iter().map(|e| e.sample_count as u64).sum();
        if covered != count as u64 {
            return Err(bad(format!("ctts covers {covered} samples of {count}")));
        }
        for e in &ctts.entries {
            cts.extend(std::iter::repeat_n(e.sample_offset, e.sample_count as usize));
        }
        if cts.len() != count {
            return Err(bad(format!("ctts covers {} samples of {count}", cts.len())));
        }
    }
    let sync: Option<std::collections::HashSet<u32>> = stbl.stss.as_ref().map(|s| s.entries.iter().copied().collect());
    let to_90k = |t: i128| (t * TICKS_PER_SECOND as i128).div_euclid(timescale as i128) as i64;
    let mut out = Vec::with_capacity(count);
    let mut dts: i128 = 0;
    let mut n = 0usize;
    for e in &stbl.stts.entries {
        for _ in 0..e.sample_count {
            let (offset, size) = (offsets[n], sizes[n]);
            if offset.checked_add(size as u64).is_none_or(|end| end > file_len) {
                return Err(Mp4Error::SampleOutside { track: id, sample: n, offset, size, file_len });
            }
            let pts = dts + cts.get(n).copied().unwrap_or(0) as i128;
            let keyframe = ours == AUDIO_TRACK || sync.as_ref().is_none_or(|s| s.contains(&(n as u32 + 1)));
            out.push(SampleRef { track: ours, offset, size, dts: to_90k(dts), pts: to_90k(pts), keyframe });
            dts += e.sample_delta as i128;
            n += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
mod unused;
