//! Where packaged media goes, and the vocabulary of what is published: a packager hands
//! [`Published`] events to a [`MediaSink`] (the node's segment store and relay journal).

use std::time::Instant;

use bytes::Bytes;
use tessera_ingest::media::TrackInfo;

/// How a publisher session ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SessionEnd {
    /// The publisher disconnected or finished.
    Closed,
    /// The pipeline failed (bad input it could not recover from, or a fault).
    Failed(String),
}

/// What a packager publishes, in order, for one rendition of one session.
#[derive(Debug, Clone)]
pub enum Published {
    /// A new init segment; the parts that follow use it.
    Init { tracks: Vec<TrackInfo>, data: Bytes },
    /// A complete part (`moof` + `mdat`).
    Part {
        /// Segment number within the session; the same in every rendition for the same time.
        segment: u64,
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
    /// Segment `segment`, made of the parts since the last one, is complete.
    SegmentEnd { segment: u64 },
    /// This rendition has no media for segment `segment` (its transcoder was down or
    /// behind); `duration` is the source's, in seconds. A segment already open under that
    /// number is closed at that duration.
    Gap { segment: u64, duration: f64 },
}

/// A rendition a session will publish.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlannedRendition {
    pub name: String,
    /// Configured average and peak bitrates (bit/s) of a transcoded rendition; measured for
    /// the passthrough.
    pub bitrate: Option<(u64, u64)>,
    pub resolution: Option<(u32, u32)>,
}

/// The state of a session's transcoding, for operators.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TranscoderStatus {
    /// Process id of the running codec worker.
    pub worker_pid: Option<u32>,
    /// The node the codec worker runs on, when not this one; with its placement epoch.
    pub worker_node: Option<(u64, u64)>,
    pub worker_restarts: u64,
    /// Busy time over media time in the last report (1.0 = just real time).
    pub load: f64,
    /// Renditions dropped for the rest of the session, with why.
    pub dropped: Vec<(String, String)>,
}

/// Receives what pipelines publish. Calls for one rendition of one session arrive in
/// order, from one task; different renditions arrive from different tasks.
pub trait MediaSink: Send + Sync + 'static {
    fn publish(&self, stream: &str, session: u64, rendition: &str, event: Published);

    /// The renditions the session's ladder has for its source, largest first; a session
    /// that does not transcode never calls this and has the passthrough only.
    fn plan(&self, stream: &str, session: u64, renditions: Vec<PlannedRendition>);

    /// The session's transcoding changed state (worker started or restarted, rung dropped).
    fn transcoder(&self, stream: &str, session: u64, status: TranscoderStatus);

    /// The session is over: every rendition has published all it will.
    fn end(&self, stream: &str, session: u64, how: SessionEnd);
}
