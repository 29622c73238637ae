//! The ingest session actor: MPEG-TS bytes from a publisher connection to frames.

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_ingest::flv::FlvDemuxer;
use tessera_ingest::ts::TsDemuxer;
use tessera_ingest::{DemuxEvent, TrackKind};
use tracing::Instrument;

use crate::mailbox::{BoundedRef, Inflight, SendError};
use crate::segmenter::SegmenterMsg;

pub struct IngestSession;

pub struct IngestSessionConfig {
    pub stream: String,
    pub session: u64,
    pub max_frame_bytes: usize,
    pub inflight: Inflight,
    pub next: BoundedRef<SegmenterMsg>,
}

#[derive(Debug)]
pub enum IngestMsg {
    /// Bytes received from the publisher, and when they arrived.
    Data(bytes::Bytes, std::time::Instant),
    /// An FLV tag from an RTMP publisher (video or audio), with its timestamp and arrival.
    Flv { video: bool, timestamp_ms: u32, data: bytes::Bytes, arrived: std::time::Instant },
    /// The connection closed; the reason is logged.
    Closed(String),
}

pub struct IngestState {
    cfg: IngestSessionConfig,
    /// The span every message is handled in: the stream, session and rendition.
    span: tracing::Span,
    demuxer: TsDemuxer,
    flv: FlvDemuxer,
    /// Video is being dropped until the next keyframe because the segmenter lagged.
    dropping_video: bool,
    /// `tessera_ingest_bytes_total`, labelled as [`crate::stream_metrics`] says.
    received: metrics::Counter,
}

impl Actor for IngestSession {
    type Msg = IngestMsg;
    type State = IngestState;
    type Arguments = IngestSessionConfig;

    async fn pre_start(
        &self,
        _myself: ActorRef<IngestMsg>,
        cfg: IngestSessionConfig,
    ) -> Result<IngestState, ActorProcessingErr> {
        let span = crate::stream_span(&cfg.stream, cfg.session, None);
        let received = metrics::counter!("tessera_ingest_bytes_total", crate::stream_metrics::labels(&cfg.stream, &[]));
        Ok(IngestState {
            cfg,
            span,
            demuxer: TsDemuxer::new(),
            flv: FlvDemuxer::new(),
            dropping_video: false,
            received,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<IngestMsg>,
        msg: IngestMsg,
        st: &mut IngestState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            st.cfg.inflight.done();
            match msg {
                IngestMsg::Data(bytes, arrived) => {
                    st.received.increment(bytes.len() as u64);
                    let out = st.demuxer.push(&bytes);
                    forward(st, out, arrived)?;
                }
                IngestMsg::Flv { video, timestamp_ms, data, arrived } => {
                    st.received.increment(data.len() as u64);
                    let out = if video { st.flv.video(timestamp_ms, &data) } else { st.flv.audio(timestamp_ms, &data) };
                    forward(st, out, arrived)?;
                }
                IngestMsg::Closed(reason) => {
                    let out = st.demuxer.flush();
                    forward(st, out, std::time::Instant::now())?;
                    let s = st.demuxer.stats();
                    tracing::info!(%reason, bytes = s.bytes, frames = s.frames,
                        continuity_errors = s.continuity_errors, dropped_frames = s.dropped_frames, "publisher session closed");
                    let _ = st.cfg.next.send(SegmenterMsg::End);
                    myself.stop(Some(reason));
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// What the two demuxers' errors have in common, for logging and metrics.
trait InputError: std::fmt::Display {
    fn kind(&self) -> &'static str;
    fn is_fatal(&self) -> bool;
}

impl InputError for tessera_ingest::ts::DemuxError {
    fn kind(&self) -> &'static str {
        use tessera_ingest::ts::DemuxError::*;
        match self {
            LostSync { .. } => "lost_sync",
            NotMpegTs(_) => "not_ts",
            TransportError { .. } => "transport_error",
            Continuity { .. } => "continuity",
            Psi { .. } => "psi",
            Pes { .. } => "pes",
            Codec { .. } => "codec",
        }
    }
    fn is_fatal(&self) -> bool {
        tessera_ingest::ts::DemuxError::is_fatal(self)
    }
}

impl InputError for tessera_ingest::flv::FlvError {
    fn kind(&self) -> &'static str {
        "flv"
    }
    fn is_fatal(&self) -> bool {
        false
    }
}

fn forward<E: InputError>(
    st: &mut IngestState,
    out: Vec<Result<DemuxEvent, E>>,
    arrived: std::time::Instant,
) -> Result<(), ActorProcessingErr> {
    for r in out {
        match r {
            Ok(DemuxEvent::Track(t)) => {
                tracing::info!(track = t.id, codec = %t.codec.rfc6381(), dimensions = ?t.codec.dimensions(), "track");
                let _ = st.cfg.next.send(SegmenterMsg::Track(t));
            }
            Ok(DemuxEvent::Frame(f)) if f.data.len() > st.cfg.max_frame_bytes => {
                metrics::counter!("tessera_ingest_limit_cuts_total", "limit" => "frame_size").increment(1);
                tracing::error!(
                    bytes = f.data.len(),
                    limit = st.cfg.max_frame_bytes,
                    "closing publisher: frame larger than the limit"
                );
                return Err(
                    format!("frame of {} bytes exceeds the limit of {}", f.data.len(), st.cfg.max_frame_bytes).into()
                );
            }
            Ok(DemuxEvent::Frame(f)) => {
                metrics::counter!("tessera_ingest_frames_total", "kind" => if f.kind == TrackKind::Video { "video" } else { "audio" }).increment(1);
                if f.kind == TrackKind::Video {
                    if st.dropping_video && !f.keyframe {
                        metrics::counter!("tessera_ingest_frames_dropped_total", "reason" => "lagging").increment(1);
                        continue;
                    }
                    st.dropping_video = false;
                }
                match st.cfg.next.try_send(SegmenterMsg::Frame(f, arrived, None)) {
                    Ok(()) => {}
                    Err(SendError::Full) => {
                        st.dropping_video = true;
                        metrics::counter!("tessera_ingest_frames_dropped_total", "reason" => "lagging").increment(1);
                        tracing::warn!("segmenter lagging: dropping video until the next keyframe");
                    }
                    Err(SendError::Closed) => return Err("segmenter is gone".into()),
                }
            }
            Err(e) => {
                let labels = crate::stream_metrics::labels(&st.cfg.stream, &[("kind", e.kind())]);
                metrics::counter!("tessera_ingest_errors_total", labels).increment(1);
                if e.is_fatal() {
                    tracing::error!(error = %e, "closing publisher: input is unusable");
                    return Err(e.to_string().into());
                }
                tracing::warn!(error = %e, "bad input");
            }
        }
    }
    Ok(())
}
