//! The per-session supervisor: starts the stage actors linked to itself (ingest, the
//! source segmenter, the source packager when the ladder has a passthrough, the encoder
//! when it transcodes), and ends the whole pipeline, alone, when any of them fails. When
//! they have all finished, it tells the sink the session is over.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tessera_packager::segmenter::SegmenterConfig;
use tracing::Instrument;

use tessera_transcode::{LadderSpec, SOURCE};

use crate::encoder::{EncoderActor, EncoderActorConfig, EncoderMsg, TranscodeSettings};
use crate::ingest_session::{IngestMsg, IngestSession, IngestSessionConfig};
use crate::mailbox::{BoundedRef, Inflight};
use crate::packager::{PackagerActor, PackagerActorConfig, PackagerMsg};
use crate::segmenter::{SegmenterActor, SegmenterActorConfig, SegmenterMsg};
use tessera_packager::sink::{MediaSink, SessionEnd};

/// Settings for one publisher session.
#[derive(Clone)]
pub struct PipelineConfig {
    pub stream: String,
    pub session: u64,
    pub segmenter: SegmenterConfig,
    /// Mailbox bounds, in messages.
    pub ingest_capacity: usize,
    pub frame_capacity: usize,
    pub part_capacity: usize,
    /// A frame larger than this ends the session.
    pub max_frame_bytes: usize,
    /// The renditions to make.
    pub ladder: LadderSpec,
    /// How to transcode; `None` serves the passthrough only, whatever the ladder.
    pub transcode: Option<TranscodeSettings>,
    pub sink: Arc<dyn MediaSink>,
}

pub struct StreamPipeline;

pub enum PipelineMsg {
    /// The bounded sender for the ingest stage.
    IngestRef(RpcReplyPort<BoundedRef<IngestMsg>>),
}

pub struct PipelineState {
    cfg: PipelineConfig,
    /// The span every message is handled in: the stream, session and rendition.
    span: tracing::Span,
    ingest: BoundedRef<IngestMsg>,
    failed: bool,
}

/// A running pipeline.
pub struct PipelineHandle {
    pub supervisor: ActorRef<PipelineMsg>,
    pub ingest: BoundedRef<IngestMsg>,
    pub join: tokio::task::JoinHandle<()>,
}

/// Starts a pipeline and returns its ingest sender.
pub async fn start_pipeline(cfg: PipelineConfig) -> Result<PipelineHandle, ActorProcessingErr> {
    let (supervisor, join) = Actor::spawn(None, StreamPipeline, cfg).await?;
    let ingest = ractor::call!(supervisor, PipelineMsg::IngestRef)?;
    Ok(PipelineHandle { supervisor, ingest, join })
}

impl Actor for StreamPipeline {
    type Msg = PipelineMsg;
    type State = PipelineState;
    type Arguments = PipelineConfig;

    async fn pre_start(
        &self,
        myself: ActorRef<PipelineMsg>,
        cfg: PipelineConfig,
    ) -> Result<PipelineState, ActorProcessingErr> {
        let cell = myself.get_cell();
        let transcodes = cfg.transcode.is_some() && cfg.ladder.transcodes();
        let passthrough = cfg.ladder.has_source() || !transcodes;
        let next = if passthrough {
            let packager_inflight = Inflight::default();
            let (packager, _) = Actor::spawn_linked(
                None,
                PackagerActor,
                PackagerActorConfig {
                    stream: cfg.stream.clone(),
                    session: cfg.session,
                    rendition: SOURCE.to_string(),
                    inflight: packager_inflight.clone(),
                    sink: cfg.sink.clone(),
                },
                cell.clone(),
            )
            .await?;
            Some(BoundedRef::<PackagerMsg>::new(packager, packager_inflight, cfg.part_capacity))
        } else {
            None
        };
        let encoder = match (&cfg.transcode, transcodes) {
            (Some(settings), true) => {
                let inflight = Inflight::default();
                let (encoder, _) = Actor::spawn_linked(
                    None,
                    EncoderActor,
                    EncoderActorConfig {
                        stream: cfg.stream.clone(),
                        session: cfg.session,
                        ladder: cfg.ladder.clone(),
                        settings: settings.clone(),
                        segmenter: cfg.segmenter.clone(),
                        frame_capacity: cfg.frame_capacity,
                        part_capacity: cfg.part_capacity,
                        inflight: inflight.clone(),
                        sink: cfg.sink.clone(),
                    },
                    cell.clone(),
                )
                .await?;
                Some(BoundedRef::<EncoderMsg>::new(encoder, inflight, cfg.frame_capacity))
            }
            _ => None,
        };
        let segmenter_inflight = Inflight::default();
        let (segmenter, _) = Actor::spawn_linked(
            None,
            SegmenterActor,
            SegmenterActorConfig {
                stream: cfg.stream.clone(),
                session: cfg.session,
                rendition: SOURCE.to_string(),
                segmenter: SegmenterConfig { forward_frames: encoder.is_some(), ..cfg.segmenter.clone() },
                inflight: segmenter_inflight.clone(),
                next,
                encoder,
            },
            cell.clone(),
        )
        .await?;
        let ingest_inflight = Inflight::default();
        let (ingest, _) = Actor::spawn_linked(
            None,
            IngestSession,
            IngestSessionConfig {
                stream: cfg.stream.clone(),
                session: cfg.session,
                max_frame_bytes: cfg.max_frame_bytes,
                inflight: ingest_inflight.clone(),
                next: BoundedRef::<SegmenterMsg>::new(segmenter, segmenter_inflight, cfg.frame_capacity),
            },
            cell,
        )
        .await?;
        let ingest = BoundedRef::new(ingest, ingest_inflight, cfg.ingest_capacity);
        metrics::gauge!("tessera_pipelines").increment(1.0);
        let span = crate::stream_span(&cfg.stream, cfg.session, None);
        Ok(PipelineState { cfg, span, ingest, failed: false })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PipelineMsg>,
        st: &mut PipelineState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            metrics::gauge!("tessera_pipelines").decrement(1.0);
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn handle(
        &self,
        _myself: ActorRef<PipelineMsg>,
        msg: PipelineMsg,
        st: &mut PipelineState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            match msg {
                PipelineMsg::IngestRef(reply) => {
                    let _ = reply.send(st.ingest.clone());
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<PipelineMsg>,
        evt: SupervisionEvent,
        st: &mut PipelineState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            match evt {
                SupervisionEvent::ActorFailed(cell, err) => {
                    if !st.failed {
                        st.failed = true;
                        tracing::error!(actor = %cell.get_id(), error = %err, "pipeline failed; ending this session only");
                        metrics::counter!("tessera_pipeline_failures_total").increment(1);
                        st.cfg.sink.end(&st.cfg.stream, st.cfg.session, SessionEnd::Failed(err.to_string()));
                    }
                    myself.stop_children(Some("sibling failed".into()));
                    myself.stop(Some("failed".into()));
                }
                SupervisionEvent::ActorTerminated(..) if myself.get_children().is_empty() => {
                    if !st.failed {
                        st.cfg.sink.end(&st.cfg.stream, st.cfg.session, SessionEnd::Closed);
                    }
                    myself.stop(None);
                }
                _ => {}
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}
