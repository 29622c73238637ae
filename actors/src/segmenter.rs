//! The segmenter actor: frames to parts and segments.

use std::time::{SystemTime, UNIX_EPOCH};

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
    Frame(Frame),
    End,
}

pub struct SegmenterState {
    cfg: SegmenterActorConfig,
    core: Segmenter,
    /// Parts are being dropped until the next segment because the packager lagged.
    dropping: bool,
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
        Ok(SegmenterState { cfg, core, dropping: false })
    }

    async fn handle(
        &self,
        myself: ActorRef<SegmenterMsg>,
        msg: SegmenterMsg,
        st: &mut SegmenterState,
    ) -> Result<(), ActorProcessingErr> {
        st.cfg.inflight.done();
        let events = match msg {
            SegmenterMsg::Track(t) => st.core.track(t),
            SegmenterMsg::Frame(f) => st.core.frame(f, now_ms()),
            SegmenterMsg::End => {
                let events = st.core.flush();
                forward(st, events)?;
                let _ = st.cfg.next.send(PackagerMsg::End);
                myself.stop(None);
                return Ok(());
            }
        };
        forward(st, events)
    }
}

fn forward(st: &mut SegmenterState, events: Vec<SegmenterEvent>) -> Result<(), ActorProcessingErr> {
    let part_target = st.core.effective_part_target().unwrap_or(st.cfg.segmenter.part_target) as f64 / 90_000.0;
    for e in events {
        let r = match e {
            SegmenterEvent::Part(p) => {
                if st.dropping && !(p.index == 0 && p.independent) {
                    metrics::counter!("tessera_parts_dropped_total").increment(1);
                    continue;
                }
                st.dropping = false;
                st.cfg.next.try_send(PackagerMsg::Part(p, part_target))
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
