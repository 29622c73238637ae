//! FLV audio and video tags (as carried by RTMP) into the shared media vocabulary.
//!
//! Sans-IO: the RTMP driver hands over each tag body with its RTMP timestamp (milliseconds);
//! out come the same [`DemuxEvent`]s the MPEG-TS demuxer produces, with timestamps in
//! 90 kHz ticks. Handles the AVC sequence header (avcC -> SPS/PPS -> [`AvcConfig`](crate::AvcConfig)), AVC
//! NALUs with composition time offsets, the AAC sequence header (AudioSpecificConfig ->
//! [`AacConfig`]) and raw AAC frames. RTMP timestamps are 32-bit milliseconds; they are
//! unwrapped like TS timestamps, around 2^32 ms (49.7 days).

use bytes::Bytes;
use thiserror::Error;

use crate::aac;
use crate::h264;
use crate::media::{AacConfig, CodecConfig, DemuxEvent, Frame, TrackInfo, TrackKind};
use crate::timestamp::{Unwrapper, TICKS_PER_MS};

/// Track ids used for FLV sources (there is one video and one audio track).
pub const VIDEO_TRACK: u16 = 1;
pub const AUDIO_TRACK: u16 = 2;

/// What went wrong with a tag, and at which timestamp.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FlvError {
    #[error("{kind} tag at {timestamp_ms} ms: too short ({len} bytes)")]
    Truncated { kind: &'static str, timestamp_ms: u32, len: usize },
    #[error("{kind} tag at {timestamp_ms} ms: unsupported codec id {codec}")]
    UnsupportedCodec { kind: &'static str, timestamp_ms: u32, codec: u8 },
    #[error("video tag at {timestamp_ms} ms: bad AVC decoder configuration: {what}")]
    BadAvcConfig { timestamp_ms: u32, what: String },
    #[error("video tag at {timestamp_ms} ms: NAL unit length {len} overruns the tag")]
    BadNalLength { timestamp_ms: u32, len: usize },
    #[error("audio tag at {timestamp_ms} ms: bad AudioSpecificConfig")]
    BadAudioConfig { timestamp_ms: u32 },
    #[error("{kind} tag at {timestamp_ms} ms: media before its sequence header")]
    NoSequenceHeader { kind: &'static str, timestamp_ms: u32 },
}

/// The FLV demuxer for one publisher session.
#[derive(Debug)]
pub struct FlvDemuxer {
    video: Option<h264::AvcLengthSize>,
    video_config: Option<CodecConfig>,
    audio_config: Option<AacConfig>,
    need_keyframe: bool,
    /// RTMP timestamps: 32-bit milliseconds.
    clock: Unwrapper,
}

fn ms_to_90k(ms: i64) -> i64 {
    ms * TICKS_PER_MS
}

impl Default for FlvDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvDemuxer {
    pub fn new() -> Self {
        FlvDemuxer {
            video: None,
            video_config: None,
            audio_config: None,
            need_keyframe: true,
            clock: Unwrapper::with_period(1 << 32),
        }
    }

    fn unwrap_ms(&mut self, ts: u32) -> i64 {
        self.clock.unwrap(ts as u64)
    }

    /// A video tag body (FLV VIDEODATA) with its timestamp in milliseconds.
    pub fn video(&mut self, timestamp_ms: u32, data: &[u8]) -> Vec<Result<DemuxEvent, FlvError>> {
        let mut out = Vec::new();
        if data.len() < 5 {
            if !data.is_empty() {
                out.push(Err(FlvError::Truncated { kind: "video", timestamp_ms, len: data.len() }));
            }
            return out;
        }
        let frame_type = data[0] >> 4;
        let codec = data[0] & 0x0f;
        if codec != 7 {
            out.push(Err(FlvError::UnsupportedCodec { kind: "video", timestamp_ms, codec }));
            return out;
        }
        let packet_type = data[1];
        let cts = (((data[2] as i32) << 24 | (data[3] as i32) << 16 | (data[4] as i32) << 8) >> 8) as i64;
        let body = &data[5..];
        match packet_type {
            0 if body.is_empty() => {}
            0 => match h264::parse_avcc_record(body) {
                Ok((length_size, sps, pps)) => match h264::parse_sps(&sps, pps) {
                    Ok(cfg) => {
                        self.video = Some(length_size);
                        let cfg = CodecConfig::H264(cfg);
                        if self.video_config.as_ref() != Some(&cfg) {
                            self.video_config = Some(cfg.clone());
                            out.push(Ok(DemuxEvent::Track(TrackInfo { id: VIDEO_TRACK, codec: cfg })));
                        }
                    }
                    Err(e) => out.push(Err(FlvError::BadAvcConfig { timestamp_ms, what: e.to_string() })),
                },
                Err(what) => out.push(Err(FlvError::BadAvcConfig { timestamp_ms, what: what.into() })),
            },
            1 => {
                let Some(length_size) = self.video else {
                    out.push(Err(FlvError::NoSequenceHeader { kind: "video", timestamp_ms }));
                    return out;
                };
                let keyframe = frame_type == 1;
                let sample = match crate::media::to_sample(body, length_size.0 as usize, false) {
                    Ok(s) => s,
                    Err(len) => {
                        out.push(Err(FlvError::BadNalLength { timestamp_ms, len }));
                        self.need_keyframe = true;
                        return out;
                    }
                };
                if sample.is_empty() || (self.need_keyframe && !keyframe) {
                    return out;
                }
                self.need_keyframe = false;
                let dts = ms_to_90k(self.unwrap_ms(timestamp_ms));
                out.push(Ok(DemuxEvent::Frame(Frame {
                    track: VIDEO_TRACK,
                    kind: TrackKind::Video,
                    pts: dts + ms_to_90k(cts),
                    dts,
                    keyframe,
                    data: sample,
                })));
            }
            _ => {} // end of sequence
        }
        out
    }

    /// An audio tag body (FLV AUDIODATA) with its timestamp in milliseconds.
    pub fn audio(&mut self, timestamp_ms: u32, data: &[u8]) -> Vec<Result<DemuxEvent, FlvError>> {
        let mut out = Vec::new();
        if data.len() < 2 {
            if !data.is_empty() {
                out.push(Err(FlvError::Truncated { kind: "audio", timestamp_ms, len: data.len() }));
            }
            return out;
        }
        let format = data[0] >> 4;
        if format != 10 {
            out.push(Err(FlvError::UnsupportedCodec { kind: "audio", timestamp_ms, codec: format }));
            return out;
        }
        let body = &data[2..];
        if data[1] == 0 {
            // ffmpeg sends an empty header before the real one when it copies a stream.
            if body.is_empty() {
                return out;
            }
            match aac::parse_asc(body) {
                Some(cfg) => {
                    if self.audio_config.as_ref() != Some(&cfg) {
                        self.audio_config = Some(cfg.clone());
                        out.push(Ok(DemuxEvent::Track(TrackInfo { id: AUDIO_TRACK, codec: CodecConfig::Aac(cfg) })));
                    }
                }
                None => out.push(Err(FlvError::BadAudioConfig { timestamp_ms })),
            }
            return out;
        }
        if self.audio_config.is_none() {
            out.push(Err(FlvError::NoSequenceHeader { kind: "audio", timestamp_ms }));
            return out;
        }
        if body.is_empty() {
            return out;
        }
        let t = ms_to_90k(self.unwrap_ms(timestamp_ms));
        out.push(Ok(DemuxEvent::Frame(Frame {
            track: AUDIO_TRACK,
            kind: TrackKind::Audio,
            pts: t,
            dts: t,
            keyframe: true,
            data: Bytes::copy_from_slice(body),
        })));
        out
    }
}

#[cfg(test)]
mod tests;
