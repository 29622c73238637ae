//! The segmenter actor: frames to parts and segments, for one rendition.
//!
//! The source rendition's segmenter is the *leader*: it decides where segments start and,
//! when the stream is transcoded, hands every frame it places to the encoder actor with the
//! boundary it opened. A transcoded rendition's segmenter is a *follower*: it cuts exactly
//! at the boundaries it is given ([`Cuts::Boundaries`]).

use std::collections::HashMap;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_ingest::timestamp::{unix_ms, TICKS_PER_SECOND};
use tessera_ingest::{Frame, TrackInfo};
use tessera_packager::segmenter::{Boundary, Segmenter, SegmenterConfig, SegmenterEvent};
use tracing::Instrument;

use crate::encoder::EncoderMsg;
use crate::mailbox::{BoundedRef, Inflight, SendError};
use crate::packager::PackagerMsg;

pub struct SegmenterActor;

pub struct SegmenterActorConfig {
    pub stream: String,
    pub session: u64,
    pub rendition: String,
    pub segmenter: SegmenterConfig,
    pub inflight: Inflight,
    /// The rendition's packager; `None` for a leader whose rendition is not published
    /// (a ladder without passthrough).
    pub next: Option<BoundedRef<PackagerMsg>>,
    /// The leader's encoder, given every placed frame (with `forward_frames`).
    pub encoder: Option<BoundedRef<EncoderMsg>>,
}

#[derive(Debug)]
pub enum SegmenterMsg {
    Track(TrackInfo),
    /// A frame, the arrival of the input that completed it, and (for a follower) the
    /// boundary it opens.
    Frame(Frame, Instant, Option<Boundary>),
    /// A follower's transcoder stopped mid-segment: forget the open segment.
    Abandon,
    /// A follower has no media for this segment (`duration` seconds, the leader's).
    Gap {
        segment: u64,
        duration: f64,
    },
    End,
}

pub struct SegmenterState {
    cfg: SegmenterActorConfig,
    /// The span every message is handled in: the stream, session and rendition.
    span: tracing::Span,
    core: Segmenter,
    /// Parts are being dropped until the next segment because the packager lagged.
    dropping: bool,
    /// Frames for the encoder are being dropped until the next boundary because it lagged.
    encoder_dropping: bool,
    /// Arrival of the latest frame of each track: a part closed by a frame ends with the
    /// previous frame of that track.
    arrivals: HashMap<u16, Instant>,
}

impl Actor for SegmenterActor {
    type Msg = SegmenterMsg;
    type State = SegmenterState;
    type Arguments = SegmenterActorConfig;

    async fn pre_start(
        &self,
        _myself: ActorRef<SegmenterMsg>,
        cfg: SegmenterActorConfig,
    ) -> Result<SegmenterState, ActorProcessingErr> {
        let core = Segmenter::new(cfg.segmenter.clone());
        let span = crate::stream_span(&cfg.stream, cfg.session, Some(&cfg.rendition));
        Ok(SegmenterState { cfg, span, core, dropping: false, encoder_dropping: false, arrivals: HashMap::new() })
    }

    async fn handle(
        &self,
        myself: ActorRef<SegmenterMsg>,
        msg: SegmenterMsg,
        st: &mut SegmenterState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            st.cfg.inflight.done();
            let mut last_arrival = None;
            let events = match msg {
                SegmenterMsg::Track(t) => st.core.track(t),
                SegmenterMsg::Frame(f, arrived, boundary) => {
                    last_arrival = st.arrivals.insert(f.track, arrived);
                    let (breaks, dups) = (st.core.timeline_breaks, st.core.duplicates);
                    let (track, dts) = (f.track, f.dts);
                    let events = st.core.frame_at(f, unix_ms(), boundary);
                    if st.core.timeline_breaks > breaks {
                        let labels = crate::stream_metrics::labels(&st.cfg.stream, &[]);
                        metrics::counter!("tessera_timeline_breaks_total", labels).increment(1);
                        tracing::warn!(track, dts, "timestamps jumped: starting a discontinuity at the next keyframe");
                    }
                    if st.core.duplicates > dups {
                        metrics::counter!("tessera_ingest_frames_dropped_total", "reason" => "duplicate").increment(1);
                    }
                    events
                }
                SegmenterMsg::Abandon => {
                    st.core.abandon();
                    Vec::new()
                }
                SegmenterMsg::Gap { segment, duration } => {
                    if let Some(next) = &st.cfg.next {
                        let _ = next.send(PackagerMsg::Gap { segment, duration });
                    }
                    Vec::new()
                }
                SegmenterMsg::End => {
                    let events = st.core.flush();
                    forward(st, events, None)?;
                    if let Some(next) = &st.cfg.next {
                        let _ = next.send(PackagerMsg::End);
                    }
                    if let Some(encoder) = &st.cfg.encoder {
                        let _ = encoder.send(EncoderMsg::End);
                    }
                    myself.stop(None);
                    return Ok(());
                }
            };
            forward(st, events, last_arrival)
        }
        .instrument(span)
        .await
    }
}

fn forward(
    st: &mut SegmenterState,
    events: Vec<SegmenterEvent>,
    last_arrival: Option<Instant>,
) -> Result<(), ActorProcessingErr> {
    let part_target =
        st.core.effective_part_target().unwrap_or(st.cfg.segmenter.part_target) as f64 / TICKS_PER_SECOND as f64;
    for e in events {
        tap(st, &e);
        let Some(next) = &st.cfg.next else { continue };
        let r = match e {
            SegmenterEvent::Part(p) => {
                if st.dropping && !(p.index == 0 && p.independent) {
                    metrics::counter!("tessera_parts_dropped_total").increment(1);
                    continue;
                }
                st.dropping = false;
                next.try_send(PackagerMsg::Part(p, part_target, last_arrival))
            }
            SegmenterEvent::Frame { .. } => continue,
            other => next.send(PackagerMsg::Event(other)),
        };
        match r {
            Ok(()) => {}
            Err(SendError::Full) => {
                st.dropping = true;
                metrics::counter!("tessera_parts_dropped_total").increment(1);
                tracing::warn!("packager lagging: dropping parts until the next segment");
            }
            Err(SendError::Closed) => return Err("packager is gone".into()),
        }
    }
    Ok(())
}

/// Hands the leader's decisions to the encoder: every placed frame, inits and segment ends.
fn tap(st: &mut SegmenterState, e: &SegmenterEvent) {
    let Some(encoder) = &st.cfg.encoder else { return };
    let r = match e {
        SegmenterEvent::Init(tracks) => encoder.send(EncoderMsg::Init(tracks.clone())),
        SegmenterEvent::SegmentEnd { segment, duration } => {
            encoder.send(EncoderMsg::SegmentEnd { segment: *segment, duration: *duration })
        }
        SegmenterEvent::Frame { frame, boundary } => {
            if st.encoder_dropping && boundary.is_none() {
                return;
            }
            st.encoder_dropping = false;
            let r = encoder.try_send(EncoderMsg::Frame(frame.clone(), *boundary));
            if r == Err(SendError::Full) {
                st.encoder_dropping = true;
                metrics::counter!("tessera_transcode_input_dropped_total").increment(1);
                tracing::warn!("encoder lagging: skipping to the next boundary");
            }
            r
        }
        SegmenterEvent::Part(_) => Ok(()),
    };
    if r == Err(SendError::Closed) {
        // Nothing to transcode for this source (or the encoder ended): stop handing frames over.
        tracing::debug!("encoder gone");
        st.cfg.encoder = None;
    }
}
