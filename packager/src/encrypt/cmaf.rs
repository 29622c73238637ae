//! `cbcs` applied to CMAF already written: a clear init segment becomes its protected twin
//! ([`protect_init`]), a clear fragment (or a segment, fragments end to end) becomes its
//! encrypted twin ([`protect_fragments`]). Sans-IO and deterministic: the same clear bytes
//! and key give the same output on every node, so a segment encrypted whole equals its
//! parts encrypted one by one, end to end.
//!
//! - **Init**: every `avc1`/`avc3`/`hvc1`/`hev1` sample entry becomes `encv`, every `mp4a`
//!   becomes `enca`, each carrying `sinf` (`frma` with the original format, `schm` `cbcs`
//!   1.0, `tenc` with the track's pattern, the key id and the constant IV); `moov` gains a
//!   `pssh` of the common system (W3C `cenc` init data naming the key id), which is what an
//!   EME ClearKey player starts its license request from.
//! - **Fragments**: samples are encrypted in place (sizes do not change: a partial block
//!   stays clear), each `traf` gains `senc` (subsamples for video), `saiz` and `saio`, and
//!   every `trun` data offset moves by the growth of its `moof`.
//!
//! Errors name the box and its byte offset in the input.

use bytes::{BufMut, Bytes, BytesMut};

use super::cbcs::{self, CbcsError, NalSyntax, Pattern, Subsample};

/// A content key for `cbcs`: its id, the key, and the constant IV every sample starts from.
#[derive(Clone, PartialEq, Eq)]
pub struct CbcsKey {
    pub kid: [u8; 16],
    pub key: [u8; 16],
    pub iv: [u8; 16],
    /// `pssh` boxes of other DRM systems (a key provider's Widevine and PlayReady ones),
    /// written whole into protected init segments after the common one.
    pub pssh: Vec<bytes::Bytes>,
}

impl CbcsKey {
    /// The key with its constant IV: the key id encrypted under the key. Every node derives
    /// the same IV, every key has its own, and it cannot be told without the key.
    pub fn new(kid: [u8; 16], key: [u8; 16]) -> Self {
        use aes::cipher::BlockEncrypt;
        let mut iv = kid;
        super::cipher(&key).encrypt_block((&mut iv).into());
        CbcsKey { kid, key, iv, pssh: Vec::new() }
    }
}

impl std::fmt::Debug for CbcsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CbcsKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// How one track is encrypted: its id, and for video how its NAL units are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackCrypt {
    pub track_id: u32,
    /// Video: the NAL syntax and the size of each NAL unit's length field.
    pub video: Option<(NalSyntax, usize)>,
}

impl TrackCrypt {
    fn pattern(&self) -> Pattern {
        if self.video.is_some() {
            cbcs::VIDEO_PATTERN
        } else {
            cbcs::AUDIO_PATTERN
        }
    }
}

/// Why CMAF could not be protected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectError {
    #[error("box `{kind}` at byte {offset} is truncated or its size is wrong")]
    Truncated { kind: String, offset: usize },
    #[error("box `{kind}` at byte {offset}: {what}")]
    Unsupported { kind: String, offset: usize, what: &'static str },
    #[error("track {track} has no sample entry this can protect")]
    UnknownTrack { track: u32 },
    #[error("sample {sample} of track {track} lies outside the mdat after the moof at byte {offset}")]
    SampleOutsideMdat { track: u32, sample: usize, offset: usize },
    #[error("sample {sample} of track {track} (moof at byte {offset}): {source}")]
    Sample { track: u32, sample: usize, offset: usize, source: CbcsError },
}

/// The W3C common system id (`1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`).
const COMMON_SYSTEM: [u8; 16] =
    [0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b];

/// One box of a buffer: kind, where it starts, its header length and its whole length.
#[derive(Debug, Clone, Copy)]
struct BoxAt {
    kind: [u8; 4],
    at: usize,
    header: usize,
    len: usize,
}

impl BoxAt {
    fn body<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.at + self.header..self.at + self.len]
    }

    fn name(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }

    fn truncated(&self) -> ProtectError {
        ProtectError::Truncated { kind: self.name(), offset: self.at }
    }

    fn unsupported(&self, what: &'static str) -> ProtectError {
        ProtectError::Unsupported { kind: self.name(), offset: self.at, what }
    }
}

/// The boxes laid end to end in `data[from..to]` (offsets in `data`).
fn boxes(data: &[u8], from: usize, to: usize) -> Result<Vec<BoxAt>, ProtectError> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let truncated = || ProtectError::Truncated { kind: "?".into(), offset: at };
        let head = data.get(at..at + 8).filter(|_| at + 8 <= to).ok_or_else(truncated)?;
        let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
        let (header, len) = match u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) {
            0 => (8, to - at),
            1 => {
                let large = data.get(at + 8..at + 16).ok_or_else(truncated)?;
                (16, u64::from_be_bytes(large.try_into().expect("8 bytes")) as usize)
            }
            n => (8, n as usize),
        };
        let b = BoxAt { kind, at, header, len };
        if len < header || at.checked_add(len).is_none_or(|end| end > to) {
            return Err(b.truncated());
        }
        out.push(b);
        at += len;
    }
    Ok(out)
}

fn be(data: &[u8], at: usize, n: usize) -> Option<u64> {
    data.get(at..at + n).map(|b| b.iter().fold(0u64, |v, x| (v << 8) | *x as u64))
}

/// Writes a box: `body` fills it, its size is patched after.
fn put_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    body: impl FnOnce(&mut BytesMut) -> Result<(), ProtectError>,
) -> Result<(), ProtectError> {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out)?;
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The protected twin of a clear init segment, and how each of its tracks is encrypted.
pub fn protect_init(clear: &[u8], key: &CbcsKey) -> Result<(Bytes, Vec<TrackCrypt>), ProtectError> {
    let mut out = BytesMut::with_capacity(clear.len() + 256);
    let mut tracks = Vec::new();
    let mut moov = false;
    for b in boxes(clear, 0, clear.len())? {
        if &b.kind == b"moov" {
            moov = true;
            put_box(&mut out, b"moov", |out| {
                init_children(clear, b, out, key, &mut tracks, &mut 0)?;
                put_pssh(out, &key.kid);
                for other in &key.pssh {
                    out.put_slice(other);
                }
                Ok(())
            })?;
        } else {
            out.put_slice(&clear[b.at..b.at + b.len]);
        }
    }
    if !moov || tracks.is_empty() {
        return Err(ProtectError::Unsupported { kind: "moov".into(), offset: 0, what: "no track to protect" });
    }
    Ok((out.freeze(), tracks))
}

/// Copies the children of a container, protecting sample entries on the way.
fn init_children(
    data: &[u8],
    parent: BoxAt,
    out: &mut BytesMut,
    key: &CbcsKey,
    tracks: &mut Vec<TrackCrypt>,
    track_id: &mut u32,
) -> Result<(), ProtectError> {
    for b in boxes(data, parent.at + parent.header, parent.at + parent.len)? {
        match &b.kind {
            b"trak" | b"mdia" | b"minf" | b"stbl" => {
                put_box(out, &b.kind, |out| init_children(data, b, out, key, tracks, track_id))?
            }
            b"tkhd" => {
                let body = b.body(data);
                let id_at = if body.first() == Some(&1) { 20 } else { 12 };
                *track_id = be(body, id_at, 4).ok_or_else(|| b.truncated())? as u32;
                out.put_slice(&data[b.at..b.at + b.len]);
            }
            b"stsd" => put_box(out, b"stsd", |out| {
                let body = b.body(data);
                out.put_slice(body.get(..8).ok_or_else(|| b.truncated())?);
                let first = b.at + b.header + 8;
                for entry in boxes(data, first, b.at + b.len)? {
                    tracks.push(sample_entry(data, entry, out, key, *track_id)?);
                }
                Ok(())
            })?,
            _ => out.put_slice(&data[b.at..b.at + b.len]),
        }
    }
    Ok(())
}

/// Protects one sample entry: renamed, `sinf` appended.
fn sample_entry(
    data: &[u8],
    e: BoxAt,
    out: &mut BytesMut,
    key: &CbcsKey,
    track_id: u32,
) -> Result<TrackCrypt, ProtectError> {
    // Fields before the child boxes: 78 bytes in a visual entry, 28 in an audio one.
    let (protected, fields, syntax): (&[u8; 4], usize, Option<NalSyntax>) = match &e.kind {
        b"avc1" | b"avc3" => (b"encv", 78, Some(NalSyntax::H264)),
        b"hvc1" | b"hev1" => (b"encv", 78, Some(NalSyntax::Hevc)),
        b"mp4a" => (b"enca", 28, None),
        b"encv" | b"enca" => return Err(e.unsupported("already protected")),
        _ => return Err(e.unsupported("a sample entry of a codec this cannot protect")),
    };
    let body = e.body(data);
    if body.len() < fields {
        return Err(e.truncated());
    }
    let video = match syntax {
        None => None,
        Some(syntax) => {
            let children = boxes(data, e.at + e.header + fields, e.at + e.len)?;
            let (config, at) = match syntax {
                NalSyntax::H264 => (b"avcC", 4),
                NalSyntax::Hevc => (b"hvcC", 21),
            };
            let config =
                children.iter().find(|c| &c.kind == config).ok_or(e.unsupported("no decoder configuration"))?;
            let size = be(config.body(data), at, 1).ok_or_else(|| config.truncated())? as usize;
            Some((syntax, (size & 3) + 1))
        }
    };
    let track = TrackCrypt { track_id, video };
    put_box(out, protected, |out| {
        out.put_slice(body);
        put_sinf(out, &e.kind, key, track.pattern());
        Ok(())
    })?;
    Ok(track)
}

/// `sinf`: the original format, `cbcs` 1.0, and the track's defaults — its pattern, key id
/// and constant IV (ISO/IEC 23001-7, 8.12).
fn put_sinf(out: &mut BytesMut, original: &[u8; 4], key: &CbcsKey, pattern: Pattern) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(b"sinf");
    out.put_u32(12);
    out.put_slice(b"frma");
    out.put_slice(original);
    out.put_u32(20);
    out.put_slice(b"schm");
    out.put_u32(0);
    out.put_slice(b"cbcs");
    out.put_u32(0x0001_0000);
    const TENC: u32 = 8 + 4 + 4 + 16 + 1 + 16;
    out.put_u32(8 + TENC);
    out.put_slice(b"schi");
    out.put_u32(TENC);
    out.put_slice(b"tenc");
    out.put_u32(0x0100_0000); // version 1, no flags
    out.put_u8(0);
    out.put_u8((pattern.crypt << 4) | (pattern.skip & 0x0f));
    out.put_u8(1); // protected
    out.put_u8(0); // no per-sample IV: the constant one follows
    out.put_slice(&key.kid);
    out.put_u8(16);
    out.put_slice(&key.iv);
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// `pssh` version 1 of the common system, naming the key id.
fn put_pssh(out: &mut BytesMut, kid: &[u8; 16]) {
    out.put_u32(8 + 4 + 16 + 4 + 16 + 4);
    out.put_slice(b"pssh");
    out.put_u32(0x0100_0000);
    out.put_slice(&COMMON_SYSTEM);
    out.put_u32(1);
    out.put_slice(kid);
    out.put_u32(0);
}

/// The encrypted twin of clear fragments (`moof` + `mdat`, end to end; other top-level
/// boxes are copied).
pub fn protect_fragments(clear: &[u8], tracks: &[TrackCrypt], key: &CbcsKey) -> Result<Bytes, ProtectError> {
    let mut out = BytesMut::with_capacity(clear.len() + clear.len() / 16 + 256);
    let top = boxes(clear, 0, clear.len())?;
    let mut i = 0;
    while i < top.len() {
        let b = top[i];
        if &b.kind == b"moof" {
            let mdat = top.get(i + 1).filter(|m| &m.kind == b"mdat").ok_or(b.unsupported("not followed by mdat"))?;
            fragment(clear, b, *mdat, tracks, key, &mut out)?;
            i += 2;
        } else {
            if &b.kind == b"mdat" {
                return Err(b.unsupported("media data without a moof"));
            }
            out.put_slice(&clear[b.at..b.at + b.len]);
            i += 1;
        }
    }
    Ok(out.freeze())
}

/// Where one track's samples are, from the `moof`'s start.
struct TrafSamples {
    track: TrackCrypt,
    /// (offset from the moof start, size) of every sample, in order.
    samples: Vec<(usize, usize)>,
}

/// Encrypts one `moof` + `mdat` into `out`.
fn fragment(
    data: &[u8],
    moof: BoxAt,
    mdat: BoxAt,
    tracks: &[TrackCrypt],
    key: &CbcsKey,
    out: &mut BytesMut,
) -> Result<(), ProtectError> {
    let start = out.len();
    let mut offsets = Vec::new(); // positions (in `out`) of trun data offsets
    let mut trafs = Vec::new();
    put_box(out, b"moof", |out| {
        for b in boxes(data, moof.at + moof.header, moof.at + moof.len)? {
            if &b.kind != b"traf" {
                out.put_slice(&data[b.at..b.at + b.len]);
                continue;
            }
            put_box(out, b"traf", |out| {
                let t = traf(data, b, tracks, out, &mut offsets)?;
                let subsamples = subsamples(data, moof, mdat, &t)?;
                put_aux_info(out, &subsamples, start);
                trafs.push((t, subsamples));
                Ok(())
            })?;
        }
        Ok(())
    })?;
    let growth = (out.len() - start) as i64 - moof.len as i64;
    for at in offsets {
        let old = i32::from_be_bytes(out[at..at + 4].try_into().expect("4 bytes")) as i64;
        out[at..at + 4].copy_from_slice(&((old + growth) as i32).to_be_bytes());
    }
    let mdat_out = out.len();
    out.put_slice(&data[mdat.at..mdat.at + mdat.len]);
    for (t, subsamples) in &trafs {
        for (n, ((offset, size), subs)) in t.samples.iter().zip(subsamples).enumerate() {
            let at = mdat_out + (moof.at + offset - mdat.at);
            let sample = &mut out[at..at + size];
            cbcs::encrypt(&key.key, &key.iv, sample, subs, t.track.pattern()).map_err(|source| {
                ProtectError::Sample { track: t.track.track_id, sample: n, offset: moof.at, source }
            })?;
        }
    }
    Ok(())
}

/// Copies a `traf`'s boxes, noting where each sample lies.
fn traf(
    data: &[u8],
    b: BoxAt,
    tracks: &[TrackCrypt],
    out: &mut BytesMut,
    offsets: &mut Vec<usize>,
) -> Result<TrafSamples, ProtectError> {
    let children = boxes(data, b.at + b.header, b.at + b.len)?;
    let tfhd = children.iter().find(|c| &c.kind == b"tfhd").ok_or(b.unsupported("no tfhd"))?;
    let body = tfhd.body(data);
    let flags = be(body, 0, 4).ok_or_else(|| tfhd.truncated())? as u32 & 0xff_ffff;
    let track_id = be(body, 4, 4).ok_or_else(|| tfhd.truncated())? as u32;
    if flags & 0x1 != 0 {
        return Err(tfhd.unsupported("an explicit base data offset"));
    }
    // Optional fields after the track id: base offset (excluded), description index,
    // default duration, default size.
    let mut at = 8;
    at += if flags & 0x2 != 0 { 4 } else { 0 };
    at += if flags & 0x8 != 0 { 4 } else { 0 };
    let default_size = if flags & 0x10 != 0 { be(body, at, 4).map(|s| s as usize) } else { None };
    let track =
        *tracks.iter().find(|t| t.track_id == track_id).ok_or(ProtectError::UnknownTrack { track: track_id })?;
    let mut samples = Vec::new();
    for c in children {
        match &c.kind {
            b"senc" | b"saiz" | b"saio" | b"sbgp" | b"sgpd" => return Err(c.unsupported("already protected")),
            b"trun" => {
                let body = c.body(data);
                let flags = be(body, 0, 4).ok_or_else(|| c.truncated())? as u32 & 0xff_ffff;
                let count = be(body, 4, 4).ok_or_else(|| c.truncated())? as usize;
                if flags & 0x1 == 0 {
                    return Err(c.unsupported("a run without a data offset"));
                }
                let mut offset = be(body, 8, 4).ok_or_else(|| c.truncated())? as i32 as i64;
                offsets.push(out.len() + c.header + 8);
                let mut at = 12 + if flags & 0x4 != 0 { 4 } else { 0 };
                let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
                if body.len() < at + count.saturating_mul(per_sample) {
                    return Err(c.truncated());
                }
                for _ in 0..count {
                    let size_at = at + if flags & 0x100 != 0 { 4 } else { 0 };
                    let size = if flags & 0x200 != 0 { be(body, size_at, 4).map(|s| s as usize) } else { default_size };
                    let size = size.ok_or(c.unsupported("no sample size"))?;
                    samples.push((usize::try_from(offset).map_err(|_| c.unsupported("a negative data offset"))?, size));
                    offset += size as i64;
                    at += per_sample;
                }
                out.put_slice(&data[c.at..c.at + c.len]);
            }
            _ => out.put_slice(&data[c.at..c.at + c.len]),
        }
    }
    Ok(TrafSamples { track, samples })
}

/// Each sample's subsamples (none for audio), checking that it lies in the `mdat`.
fn subsamples(data: &[u8], moof: BoxAt, mdat: BoxAt, t: &TrafSamples) -> Result<Vec<Vec<Subsample>>, ProtectError> {
    let track = t.track.track_id;
    let mut out = Vec::with_capacity(t.samples.len());
    for (n, (offset, size)) in t.samples.iter().enumerate() {
        let from = moof.at + offset;
        if from < mdat.at + mdat.header || from + size > mdat.at + mdat.len {
            return Err(ProtectError::SampleOutsideMdat { track, sample: n, offset: moof.at });
        }
        let sample = &data[from..from + size];
        out.push(match t.track.video {
            Some((syntax, length_size)) => cbcs::video_subsamples(sample, length_size, syntax)
                .map_err(|source| ProtectError::Sample { track, sample: n, offset: moof.at, source })?,
            None => Vec::new(),
        });
    }
    Ok(out)
}

/// `senc`, `saiz` and `saio` for one track's samples: no per-sample IV (the constant IV of
/// `tenc`), the subsamples where there are any; `saio` points at `senc`'s first entry,
/// relative to the `moof` (which starts at `moof_out` in `out`).
fn put_aux_info(out: &mut BytesMut, samples: &[Vec<Subsample>], moof_out: usize) {
    let subsampled = samples.iter().any(|s| !s.is_empty());
    let start = out.len();
    out.put_u32(0);
    out.put_slice(b"senc");
    out.put_u32(if subsampled { 0x2 } else { 0 });
    out.put_u32(samples.len() as u32);
    let first_entry = out.len() - moof_out;
    if subsampled {
        for subs in samples {
            out.put_u16(subs.len() as u16);
            for s in subs {
                out.put_u16(s.clear);
                out.put_u32(s.protected);
            }
        }
    }
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out.put_u32(8 + 4 + 1 + 4 + samples.len() as u32);
    out.put_slice(b"saiz");
    out.put_u32(0);
    out.put_u8(0);
    out.put_u32(samples.len() as u32);
    for subs in samples {
        out.put_u8(if subsampled { (2 + 6 * subs.len()).min(255) as u8 } else { 0 });
    }
    out.put_u32(8 + 4 + 4 + 4);
    out.put_slice(b"saio");
    out.put_u32(0);
    out.put_u32(1);
    out.put_u32(first_entry as u32);
}

#[cfg(test)]
mod tests;
