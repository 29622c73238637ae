//! The media vocabulary shared by every crate: tracks, codec configurations and frames.

use bytes::{BufMut, Bytes, BytesMut};

/// Whether a track carries pictures or sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum TrackKind {
    Video,
    Audio,
}

/// H.264 decoder configuration, taken from the stream's SPS and PPS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AvcConfig {
    pub sps: Bytes,
    pub pps: Vec<Bytes>,
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    pub width: u32,
    pub height: u32,
    /// Frame rate from the SPS timing info, when present, as (numerator, denominator).
    pub frame_rate: Option<(u32, u32)>,
}

/// HEVC decoder configuration, taken from the stream's VPS, SPS and PPS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HevcConfig {
    pub vps: Bytes,
    pub sps: Bytes,
    pub pps: Vec<Bytes>,
    pub profile_space: u8,
    pub tier_flag: bool,
    pub profile_idc: u8,
    pub profile_compatibility: u32,
    /// The 48 bits of constraint indicator flags.
    pub constraint_flags: [u8; 6],
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    pub width: u32,
    pub height: u32,
}

/// AAC configuration: the AudioSpecificConfig and what it says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AacConfig {
    /// MPEG-4 Audio Object Type (2 = AAC-LC).
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
    /// The AudioSpecificConfig bytes, as carried in `esds`.
    pub asc: Bytes,
}

/// Codec and decoder configuration of one track.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CodecConfig {
    H264(AvcConfig),
    Hevc(HevcConfig),
    Aac(AacConfig),
}

impl CodecConfig {
    pub fn kind(&self) -> TrackKind {
        match self {
            CodecConfig::H264(_) | CodecConfig::Hevc(_) => TrackKind::Video,
            CodecConfig::Aac(_) => TrackKind::Audio,
        }
    }

    /// The RFC 6381 codec string used in HLS `CODECS` attributes.
    pub fn rfc6381(&self) -> String {
        match self {
            CodecConfig::H264(c) => {
                format!("avc1.{:02x}{:02x}{:02x}", c.profile_idc, c.constraint_flags, c.level_idc)
            }
            CodecConfig::Hevc(c) => {
                let space = match c.profile_space {
                    1 => "A",
                    2 => "B",
                    3 => "C",
                    _ => "",
                };
                // Compatibility flags are written bit-reversed, in hex, without leading zeros.
                let compat = c.profile_compatibility.reverse_bits();
                let tier = if c.tier_flag { 'H' } else { 'L' };
                let mut s = format!("hvc1.{space}{}.{compat:X}.{tier}{}", c.profile_idc, c.level_idc);
                // Constraint bytes, trailing zero bytes omitted.
                let last = c.constraint_flags.iter().rposition(|b| *b != 0);
                if let Some(last) = last {
                    for b in &c.constraint_flags[..=last] {
                        s.push_str(&format!(".{b:X}"));
                    }
                } else {
                    s.push_str(".B0");
                }
                s
            }
            CodecConfig::Aac(c) => format!("mp4a.40.{}", c.object_type),
        }
    }

    /// Picture size, for video tracks.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        match self {
            CodecConfig::H264(c) => Some((c.width, c.height)),
            CodecConfig::Hevc(c) => Some((c.width, c.height)),
            CodecConfig::Aac(_) => None,
        }
    }
}

/// A track announced by a demuxer, before its first frame and again whenever its
/// configuration changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackInfo {
    /// Stable identifier within one ingest session (the MPEG-TS PID for TS sources).
    pub id: u16,
    pub codec: CodecConfig,
}

impl TrackInfo {
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

/// One access unit: a picture or an audio frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub track: u16,
    pub kind: TrackKind,
    /// Presentation time, 90 kHz ticks, unwrapped.
    pub pts: i64,
    /// Decode time, 90 kHz ticks, unwrapped. Equal to `pts` without B-frames.
    pub dts: i64,
    /// A random access point: an IDR/IRAP picture, or any audio frame.
    pub keyframe: bool,
    pub data: Bytes,
}

/// What a demuxer produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemuxEvent {
    /// A track appeared or its codec configuration changed.
    Track(TrackInfo),
    Frame(Frame),
}

/// Rewrites length-prefixed NAL units (any length size) as 4-byte length-prefixed ones,
/// dropping parameter sets, AUDs and filler (they belong to the configuration). Err
/// carries the offending length.
pub fn to_sample(body: &[u8], length_size: usize, hevc: bool) -> Result<Bytes, usize> {
    let n = length_size.clamp(1, 4);
    let mut out = BytesMut::with_capacity(body.len() + 16);
    let mut i = 0;
    while i + n <= body.len() {
        let len = body[i..i + n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        i += n;
        if len == 0 || i + len > body.len() {
            return Err(len);
        }
        let nal = &body[i..i + len];
        let dropped = if hevc {
            matches!(crate::hevc::nal_type(nal[0]), 32..=35 | 38)
        } else {
            matches!(
                nal[0] & 0x1f,
                crate::h264::NAL_SPS | crate::h264::NAL_PPS | crate::h264::NAL_AUD | crate::h264::NAL_FILLER
            )
        };
        if !dropped {
            out.put_u32(len as u32);
            out.put_slice(nal);
        }
        i += len;
    }
    Ok(out.freeze())
}
