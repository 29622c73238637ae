//! Tessera's actors: thin ractor wrappers around the sans-IO cores.
//!
//! # Contract
//! - One [`pipeline::StreamPipeline`] supervisor per publisher session, with three linked
//!   children: [`ingest_session::IngestSession`] (TS bytes to frames),
//!   [`segmenter::SegmenterActor`] (frames to parts) and [`packager::PackagerActor`] (parts
//!   to fMP4 bytes, handed to a [`sink::MediaSink`]).
//! - A failure in any of them ends that pipeline only: the supervisor stops its children,
//!   reports the session as failed to the sink, and stops. Nothing is shared between
//!   pipelines but the sink.
//! - Media mailboxes are bounded ([`mailbox::BoundedRef`]): when a consumer lags, the
//!   producer drops the newest-but-undecodable data (video until the next keyframe, parts
//!   until the next segment) rather than queueing without limit, and counts what it drops.
//! - Handlers never block: all I/O stays in the node's drivers.

pub mod ingest_session;
pub mod mailbox;
pub mod packager;
pub mod pipeline;
pub mod segmenter;
pub mod sink;

pub use pipeline::{start_pipeline, PipelineConfig, PipelineHandle};
pub use sink::{MediaSink, Published, SessionEnd};
