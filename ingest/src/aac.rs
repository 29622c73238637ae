//! AAC in ADTS: raw frames and the AudioSpecificConfig.

use bytes::Bytes;
use thiserror::Error;

use crate::media::AacConfig;

/// Samples per AAC-LC frame.
pub const SAMPLES_PER_FRAME: u32 = 1024;

const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AdtsError {
    #[error("no ADTS sync word at byte {offset}")]
    NoSync { offset: usize },
    #[error("ADTS frame at byte {offset} claims {claimed} bytes, {available} available")]
    Truncated { offset: usize, claimed: usize, available: usize },
    #[error("ADTS frame at byte {offset} has a reserved sampling frequency index {index}")]
    BadRate { offset: usize, index: u8 },
}

/// One ADTS frame, header removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtsFrame {
    pub config: AacConfig,
    pub payload: Bytes,
}

/// Parses a two-byte (or longer) AudioSpecificConfig.
pub fn parse_asc(b: &[u8]) -> Option<AacConfig> {
    if b.len() < 2 {
        return None;
    }
    let object_type = b[0] >> 3;
    let index = ((b[0] & 7) << 1) | (b[1] >> 7);
    let channels = (b[1] >> 3) & 0x0f;
    let sample_rate = *RATES.get(index as usize)?;
    if object_type == 0 || object_type == 31 || channels == 0 {
        return None;
    }
    Some(AacConfig { object_type, sample_rate, channels, asc: Bytes::copy_from_slice(b) })
}

/// Builds the two-byte AudioSpecificConfig.
pub fn audio_specific_config(object_type: u8, rate_index: u8, channels: u8) -> [u8; 2] {
    [(object_type << 3) | (rate_index >> 1), ((rate_index & 1) << 7) | (channels << 3)]
}

/// The sampling-frequency index of a rate, if it has one.
pub fn rate_index(sample_rate: u32) -> Option<u8> {
    RATES.iter().position(|r| *r == sample_rate).map(|i| i as u8)
}

/// The 7-byte ADTS header (no CRC) for one raw frame of `payload_len` bytes.
pub fn adts_header(config: &AacConfig, payload_len: usize) -> [u8; 7] {
    let len = payload_len + 7;
    let profile = config.object_type.saturating_sub(1) & 3;
    let index = rate_index(config.sample_rate).unwrap_or(3);
    let ch = config.channels & 7;
    [
        0xff,
        0xf1,
        (profile << 6) | (index << 2) | (ch >> 2),
        ((ch & 3) << 6) | ((len >> 11) as u8 & 3),
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1f,
        0xfc,
    ]
}

/// Splits a PES payload of ADTS frames. Frames before the first error are returned with it.
pub fn parse_adts(data: &Bytes) -> (Vec<AdtsFrame>, Option<AdtsError>) {
    let mut frames = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let h = &data[i..];
        if h.len() < 7 || h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
            return (frames, Some(AdtsError::NoSync { offset: i }));
        }
        let protection_absent = h[1] & 1 == 1;
        let profile = h[2] >> 6;
        let rate_index = (h[2] >> 2) & 0x0f;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_len = (((h[3] & 3) as usize) << 11) | ((h[4] as usize) << 3) | ((h[5] >> 5) as usize);
        let header_len = if protection_absent { 7 } else { 9 };
        let Some(&sample_rate) = RATES.get(rate_index as usize) else {
            return (frames, Some(AdtsError::BadRate { offset: i, index: rate_index }));
        };
        if frame_len < header_len || frame_len > h.len() {
            return (frames, Some(AdtsError::Truncated { offset: i, claimed: frame_len, available: h.len() }));
        }
        let object_type = profile + 1;
        let asc = audio_specific_config(object_type, rate_index, channels);
        frames.push(AdtsFrame {
            config: AacConfig { object_type, sample_rate, channels, asc: Bytes::copy_from_slice(&asc) },
            payload: data.slice(i + header_len..i + frame_len),
        });
        i += frame_len;
    }
    (frames, None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ADTS header for AAC-LC, 48 kHz, stereo, around `payload_len` bytes.
    pub(crate) fn adts_header(payload_len: usize) -> [u8; 7] {
        let config = parse_asc(&audio_specific_config(2, 3, 2)).expect("valid");
        super::adts_header(&config, payload_len)
    }

    #[test]
    fn splits_frames_and_builds_asc() {
        let mut d = Vec::new();
        for n in [3usize, 5] {
            d.extend_from_slice(&adts_header(n));
            d.extend(std::iter::repeat_n(0xaa, n));
        }
        let (frames, err) = parse_adts(&Bytes::from(d));
        assert!(err.is_none());
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].payload.len(), 5);
        let c = &frames[0].config;
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48000, 2));
        assert_eq!(&c.asc[..], &[0x11, 0x90]);
    }

    #[test]
    fn lying_length_is_reported_with_offset() {
        let mut d = adts_header(3).to_vec();
        d.extend_from_slice(&[1, 2, 3]);
        d.extend_from_slice(&adts_header(100));
        d.extend_from_slice(&[0; 10]);
        let (frames, err) = parse_adts(&Bytes::from(d));
        assert_eq!(frames.len(), 1);
        assert_eq!(err, Some(AdtsError::Truncated { offset: 10, claimed: 107, available: 17 }));
        let (frames, err) = parse_adts(&Bytes::from_static(&[0x12, 0x34, 0, 0, 0, 0, 0, 0]));
        assert!(frames.is_empty());
        assert_eq!(err, Some(AdtsError::NoSync { offset: 0 }));
    }
}
