//! Tessera's packager: the sans-IO segmenter, the CMAF/fMP4 muxer, the LL-HLS playlist
//! writer and content encryption ([`encrypt`]: HLS AES-128 and CENC `cbcs`).
//!
//! # Contract
//! - No I/O, no clocks, no threads: [`segmenter::Segmenter`] takes frames and the wall-clock
//!   time they arrived (`now`, milliseconds since the Unix epoch) and returns events;
//!   [`fmp4`] turns events into bytes; [`playlist::PlaylistState`] records what was
//!   published and renders playlists as pure functions of that state.
//! - Times inside are 90 kHz ticks (as produced by `tessera-ingest`). In fMP4, video tracks
//!   use a 90 kHz timescale and audio tracks their sample rate.
//! - A segment's bytes are the concatenation of its parts' bytes.

pub mod directives;
pub mod encrypt;
pub mod fmp4;
pub mod names;
pub mod playlist;
pub mod segmenter;
pub mod sink;
pub mod vod;

pub use directives::{DirectiveError, Directives};
pub use names::MediaFile;
pub use playlist::{BlockRequest, BlockState, PlaylistConfig, PlaylistState, SegmentKey};
pub use segmenter::{PartOut, Segmenter, SegmenterConfig, SegmenterEvent};
pub use sink::{MediaSink, PlannedRendition, Published, SessionEnd, TranscoderStatus};
pub mod check;
