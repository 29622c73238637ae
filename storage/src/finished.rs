//! A file a live rendition finished (an init segment or a segment), and who hears of it
//! besides the tiers: a recording of the stream.

use bytes::Bytes;
use tessera_ingest::TrackInfo;

/// A file a rendition finished, for the storage tiers and a recording.
#[derive(Debug, Clone)]
pub struct FinishedFile {
    /// `init-N.mp4` or `seg-MSN.m4s`.
    pub file: String,
    pub data: Bytes,
    pub kind: FinishedKind,
}

#[derive(Debug, Clone)]
pub enum FinishedKind {
    Init {
        id: u32,
        tracks: Vec<TrackInfo>,
    },
    /// `discontinuity`: its timeline does not follow the segment before it (a new publish).
    Segment {
        msn: u64,
        seconds: f64,
        init: u32,
        discontinuity: bool,
    },
}

/// Told of the files a stream's renditions finish on its origin, and of the stream's end
/// (its publisher gone for longer than the reconnect grace). Must not block: the segment
/// store's locks are held.
pub trait Recorder: Send + Sync {
    fn finished(&self, stream: &str, rendition: &str, file: &FinishedFile);
    fn ended(&self, stream: &str);
}
