//! The packager actor: one rendition's parts to fMP4 bytes, published to the sink.

use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_packager::fmp4::CmafMuxer;
use tessera_packager::segmenter::{PartOut, SegmenterEvent};
use tracing::Instrument;

use tessera_ingest::timestamp::TICKS_PER_SECOND;

use crate::mailbox::Inflight;
use tessera_packager::sink::{MediaSink, Published};

pub struct PackagerActor;

pub struct PackagerActorConfig {
    pub stream: String,
    pub session: u64,
    pub rendition: String,
    pub inflight: Inflight,
    pub sink: Arc<dyn MediaSink>,
}

#[derive(Debug)]
pub enum PackagerMsg {
    /// A part, with the effective part target in seconds and the arrival of its last frame.
    Part(PartOut, f64, Option<Instant>),
    /// Init and segment boundaries.
    Event(SegmenterEvent),
    /// No media for this segment (seconds).
    Gap {
        segment: u64,
        duration: f64,
    },
    End,
}

pub struct PackagerState {
    cfg: PackagerActorConfig,
    /// The span every message is handled in: the stream, session and rendition.
    span: tracing::Span,
    muxer: CmafMuxer,
}

impl Actor for PackagerActor {
    type Msg = PackagerMsg;
    type State = PackagerState;
    type Arguments = PackagerActorConfig;

    async fn pre_start(
        &self,
        _myself: ActorRef<PackagerMsg>,
        cfg: PackagerActorConfig,
    ) -> Result<PackagerState, ActorProcessingErr> {
        let span = crate::stream_span(&cfg.stream, cfg.session, Some(&cfg.rendition));
        Ok(PackagerState { cfg, span, muxer: CmafMuxer::default() })
    }

    async fn handle(
        &self,
        myself: ActorRef<PackagerMsg>,
        msg: PackagerMsg,
        st: &mut PackagerState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            st.cfg.inflight.done();
            let (stream, session, rendition) = (st.cfg.stream.clone(), st.cfg.session, st.cfg.rendition.clone());
            let (stream, rendition) = (stream.as_str(), rendition.as_str());
            match msg {
                PackagerMsg::Event(SegmenterEvent::Init(tracks)) => {
                    let data = st.muxer.init(tracks.clone());
                    st.cfg.sink.publish(stream, session, rendition, Published::Init { tracks, data });
                }
                PackagerMsg::Event(SegmenterEvent::SegmentEnd { segment, .. }) => {
                    st.cfg.sink.publish(stream, session, rendition, Published::SegmentEnd { segment })
                }
                PackagerMsg::Gap { segment, duration } => {
                    st.cfg.sink.publish(stream, session, rendition, Published::Gap { segment, duration })
                }
                PackagerMsg::Event(SegmenterEvent::Part(p)) | PackagerMsg::Part(p, _, _)
                    if st.muxer.tracks().is_empty() =>
                {
                    tracing::warn!(index = p.index, "part before any init segment dropped");
                }
                PackagerMsg::Part(p, part_target, last_frame_arrived) => {
                    let data = st.muxer.part(&p);
                    st.cfg.sink.publish(
                        stream,
                        session,
                        rendition,
                        Published::Part {
                            segment: p.segment,
                            data,
                            duration: p.duration as f64 / TICKS_PER_SECOND as f64,
                            independent: p.independent,
                            program_time_ms: p.program_time_ms,
                            part_target,
                            completed_at: Instant::now(),
                            last_frame_arrived,
                        },
                    );
                }
                PackagerMsg::Event(SegmenterEvent::Part(_) | SegmenterEvent::Frame { .. }) => {}
                PackagerMsg::End => myself.stop(None),
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}
