//! The segmenter actor: frames to parts and segments.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tessera_ingest::{Frame, TrackInfo};
use tessera_packager::segmenter::{Segmenter, SegmenterConfig, SegmenterEvent};

use crate::mailbox::{BoundedRef, Inflight, SendError};
use crate::packager::PackagerMsg;

pub struct SegmenterActor;

pub struct SegmenterActorConfig {
    pub stream: String,
    pub session: u64,
    pub segmenter: SegmenterConfig,
    pub inflight: Inflight,
    pub next: BoundedRef<PackagerMsg>,
}

#[derive(Debug)]
pub enum SegmenterMsg {
    Track(TrackInfo),
    /// A frame, with the arrival time of the input that completed it.
    Frame(Frame, Instant),
    End,
}

pub struct SegmenterState {
    cfg: SegmenterActorConfig,
    core: Segmenter,
    /// Parts are being dropped until the next segment because the packager lagged.
    dropping: bool,
    /// Arrival of the latest frame of each track: a part closed by a frame ends with the
    /// previous frame of that track.
    arrivals: HashMap<u16, Instant>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
        Ok(SegmenterState { cfg, core, dropping: false, arrivals: HashMap::new() })
    }

    async fn handle(
        &self,
        myself: ActorRef<SegmenterMsg>,
        msg: SegmenterMsg,
        st: &mut SegmenterState,
    ) -> Result<(), ActorProcessingErr> {
        st.cfg.inflight.done();
        let mut last_arrival = None;
        let events = match msg {
            SegmenterMsg::Track(t) => st.core.track(t),
            SegmenterMsg::Frame(f, arrived) => {
                last_arrival = st.arrivals.insert(f.track, arrived);
                let (breaks, dups) = (st.core.timeline_breaks, st.core.duplicates);
                let (track, dts) = (f.track, f.dts);
                let events = st.core.frame(f, now_ms());
                if st.core.timeline_breaks > breaks {
                    metrics::counter!("tessera_timeline_breaks_total").increment(1);
                    tracing::warn!(stream = %st.cfg.stream, session = st.cfg.session, track, dts, "timestamps jumped: starting a discontinuity at the next keyframe");
                }
                if st.core.duplicates > dups {
                    metrics::counter!("tessera_ingest_frames_dropped_total", "reason" => "duplicate").increment(1);
                }
                events
            }
            SegmenterMsg::End => {
                let events = st.core.flush();
                forward(st, events, None)?;
                let _ = st.cfg.next.send(PackagerMsg::End);
                myself.stop(None);
                return Ok(());
            }
        };
        forward(st, events, last_arrival)
    }
}

fn forward(
    st: &mut SegmenterState,
    events: Vec<SegmenterEvent>,
    last_arrival: Option<Instant>,
) -> Result<(), ActorProcessingErr> {
    let part_target = st.core.effective_part_target().unwrap_or(st.cfg.segmenter.part_target) as f64 / 90_000.0;
    for e in events {
        let r = match e {
            SegmenterEvent::Part(p) => {
                if st.dropping && !(p.index == 0 && p.independent) {
                    metrics::counter!("tessera_parts_dropped_total").increment(1);
                    continue;
                }
                st.dropping = false;
                st.cfg.next.try_send(PackagerMsg::Part(p, part_target, last_arrival))
            }
            other => st.cfg.next.send(PackagerMsg::Event(other)),
        };
        match r {
            Ok(()) => {}
            Err(SendError::Full) => {
                st.dropping = true;
                metrics::counter!("tessera_parts_dropped_total").increment(1);
                tracing::warn!(stream = %st.cfg.stream, session = st.cfg.session, "packager lagging: dropping parts until the next segment");
            }
            Err(SendError::Closed) => return Err("packager is gone".into()),
        }
    }
    Ok(())
}
