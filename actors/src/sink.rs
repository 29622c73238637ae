//! Where packaged media goes: the node's segment store implements [`MediaSink`].

use std::time::Instant;

use bytes::Bytes;
use tessera_ingest::media::TrackInfo;

/// How a publisher session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The publisher disconnected or finished.
    Closed,
    /// The pipeline failed (bad input it could not recover from, or a fault).
    Failed(String),
}

/// What a packager publishes, in order, for one session of one stream.
#[derive(Debug, Clone)]
pub enum Published {
    /// A new init segment; the parts that follow use it.
    Init { tracks: Vec<TrackInfo>, data: Bytes },
    /// A complete part (`moof` + `mdat`).
    Part {
        data: Bytes,
        /// Seconds.
        duration: f64,
        independent: bool,
        program_time_ms: i64,
        /// The segmenter's effective part target, seconds.
        part_target: f64,
        /// When the part was complete, for publish-to-response latency.
        completed_at: Instant,
        /// When the input carrying the part's last frame arrived, for ingest-to-available latency.
        last_frame_arrived: Option<Instant>,
    },
    /// The segment made of the parts since the last one is complete.
    SegmentEnd,
    /// The session is over.
    End(SessionEnd),
}

/// Receives what pipelines publish. Calls for one session arrive in order, from one task.
pub trait MediaSink: Send + Sync + 'static {
    fn publish(&self, stream: &str, session: u64, event: Published);
}
