//! Tessera's actors: thin ractor wrappers around the sans-IO cores.
//!
//! # Contract
//! - One [`pipeline::StreamPipeline`] supervisor per publisher session, with linked
//!   children: [`ingest_session::IngestSession`] (TS or FLV bytes to frames), the source's
//!   [`segmenter::SegmenterActor`] (frames to parts; the *leader*, which decides segment
//!   boundaries), its [`packager::PackagerActor`] (parts to fMP4 bytes, handed to a
//!   [`MediaSink`](tessera_packager::MediaSink)) when the ladder has a passthrough, and the
//!   [`encoder::EncoderActor`] when it transcodes.
//! - The encoder supervises a codec worker *process* and one follower segmenter and
//!   packager per transcoded rung. A worker crash is restarted and shows as gaps in the
//!   transcoded renditions only; a rung whose actors fail is dropped alone.
//! - Any other failure ends that pipeline only: the supervisor stops its children, reports
//!   the session as failed to the sink, and stops. Nothing is shared between pipelines but
//!   the sink.
//! - Media mailboxes are bounded ([`mailbox::BoundedRef`]): when a consumer lags, the
//!   producer drops the newest-but-undecodable data (video until the next keyframe, parts
//!   until the next segment) rather than queueing without limit, and counts what it drops.
//! - Handlers never block: all I/O stays in the node's drivers.

pub mod encoder;
pub mod ingest_session;
pub mod mailbox;
pub mod packager;
pub mod pipeline;
pub mod segmenter;
pub mod stream_metrics;

pub use encoder::launch::{LaunchError, LaunchRequest, Launching, WorkerEvents, WorkerLink, WorkerPlace};
pub use encoder::{source_format, SourceFormat, TranscodeSettings, WorkerCommand, WorkerEvent, WorkerLauncher};
pub use pipeline::{start_pipeline, PipelineConfig, PipelineHandle};

/// The span an actor of a stream's pipeline handles its messages in: the stream, the
/// publisher session, and for the actors of one rendition, the rendition.
pub(crate) fn stream_span(stream: &str, session: u64, rendition: Option<&str>) -> tracing::Span {
    match rendition {
        Some(rendition) => tracing::info_span!("stream", stream, session, rendition),
        None => tracing::info_span!("stream", stream, session),
    }
}
