//! Tessera's media vocabulary and parsers.
//!
//! This crate owns the shared media vocabulary ([`Frame`], [`TrackInfo`], [`CodecConfig`],
//! timestamps) and the sans-IO parsers that turn bytes into frames (MPEG-TS from SRT, FLV
//! tags from RTMP, MP4 and MPEG-TS files). The sockets that bring those bytes are
//! `tessera-listen`'s.
//!
//! # Contract
//! - The parsers ([`ts::TsDemuxer`], [`flv::FlvDemuxer`], [`h264`], [`hevc`], [`aac`]) never
//!   block and never do I/O:
//!   bytes go in, [`DemuxEvent`]s come out. They never panic on any input; malformed input is
//!   reported as a [`ts::DemuxError`] carrying the PID and byte offset, and the demuxer
//!   resynchronises by itself.
//! - Timestamps are 90 kHz ticks, unwrapped from MPEG-TS's 33-bit field into a monotonic
//!   `i64` (see [`timestamp`]).
//! - Video frame payloads are length-prefixed (4-byte, big-endian) NAL units with parameter
//!   sets, access unit delimiters and filler removed; parameter sets travel in the track's
//!   [`CodecConfig`]. Audio frame payloads are raw AAC access units (no ADTS header).

pub mod aac;
pub mod bits;
pub mod flv;
pub mod h264;
pub mod hevc;
pub mod media;
pub mod mp4;
pub mod streamid;
pub mod timestamp;
pub mod ts;

pub use media::{AacConfig, AvcConfig, CodecConfig, DemuxEvent, Frame, HevcConfig, TrackInfo, TrackKind};
