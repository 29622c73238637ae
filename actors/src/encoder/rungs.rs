//! The encoder actor's rungs: one follower segmenter and packager per transcoded rendition,
//! what the worker's packets become, and the gaps and drops the ledger and governor decide.

use std::time::Instant;

use bytes::Bytes;
use ractor::{Actor, ActorCell, ActorProcessingErr};
use tessera_ingest::{h264, CodecConfig, Frame, TrackInfo, TrackKind};
use tessera_packager::segmenter::{Cuts, SegmenterConfig};
use tessera_transcode::wire::ToWorker;
use tessera_transcode::{Gap, Rendition};

use super::EncoderState;
use crate::mailbox::{BoundedRef, Inflight, SendError};
use crate::packager::{PackagerActor, PackagerActorConfig};
use crate::segmenter::{SegmenterActor, SegmenterActorConfig, SegmenterMsg};

pub(super) struct Rung {
    pub(super) name: String,
    pub(super) segmenter: BoundedRef<SegmenterMsg>,
    pub(super) actors: [ActorCell; 2],
    video: Option<CodecConfig>,
    pub(super) dropped: bool,
    /// The rung's actors failed: gaps go to the sink directly.
    pub(super) dead: bool,
    /// Output is being dropped until the next boundary because the segmenter lagged.
    lagging: bool,
}

impl EncoderState {
    pub(super) async fn spawn_rungs(&mut self, rungs: &[Rendition]) -> Result<(), ActorProcessingErr> {
        let cell = self.myself.get_cell();
        for r in rungs {
            let packager_inflight = Inflight::default();
            let (packager, _) = Actor::spawn_linked(
                None,
                PackagerActor,
                PackagerActorConfig {
                    stream: self.cfg.stream.clone(),
                    session: self.cfg.session,
                    rendition: r.name.clone(),
                    inflight: packager_inflight.clone(),
                    sink: self.cfg.sink.clone(),
                },
                cell.clone(),
            )
            .await?;
            let inflight = Inflight::default();
            let (segmenter, _) = Actor::spawn_linked(
                None,
                SegmenterActor,
                SegmenterActorConfig {
                    stream: self.cfg.stream.clone(),
                    session: self.cfg.session,
                    rendition: r.name.clone(),
                    segmenter: SegmenterConfig {
                        cuts: Cuts::Boundaries,
                        forward_frames: false,
                        ..self.cfg.segmenter.clone()
                    },
                    inflight: inflight.clone(),
                    next: Some(BoundedRef::new(packager.clone(), packager_inflight, self.cfg.part_capacity)),
                    encoder: None,
                },
                cell.clone(),
            )
            .await?;
            self.rungs.push(Rung {
                name: r.name.clone(),
                actors: [segmenter.get_cell(), packager.get_cell()],
                segmenter: BoundedRef::new(segmenter, inflight, self.cfg.frame_capacity),
                video: None,
                dropped: false,
                dead: false,
                lagging: false,
            });
        }
        Ok(())
    }

    pub(super) fn rung_packet(
        &mut self,
        i: usize,
        pts: i64,
        dts: i64,
        keyframe: bool,
        boundary: Option<u64>,
        body: Bytes,
    ) {
        let Some(video_id) = self.video.as_ref().map(|v| v.id) else { return };
        if self.rungs.get(i).is_none_or(|r| r.dropped) {
            return;
        }
        if let Some(b) = boundary {
            let gaps = self.ledger.rung_started(i, b);
            self.send_gaps(gaps);
        }
        let rung = &mut self.rungs[i];
        let au = h264::convert_access_unit(&body);
        if let Some(sps) = au.sps {
            match h264::parse_sps(&sps, au.pps) {
                Ok(c) if rung.video.as_ref() != Some(&CodecConfig::H264(c.clone())) => {
                    rung.video = Some(CodecConfig::H264(c.clone()));
                    let _ = rung
                        .segmenter
                        .send(SegmenterMsg::Track(TrackInfo { id: video_id, codec: CodecConfig::H264(c) }));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(rendition = %rung.name, error = %e, "encoder wrote an unreadable SPS")
                }
            }
        }
        if rung.lagging && boundary.is_none() {
            return;
        }
        let frame = Frame {
            track: video_id,
            kind: TrackKind::Video,
            pts,
            dts,
            keyframe: keyframe || au.keyframe,
            data: au.sample,
        };
        let b = boundary.and_then(|b| self.boundaries.get(&b).copied());
        match rung.segmenter.try_send(SegmenterMsg::Frame(frame, Instant::now(), b)) {
            Ok(()) => rung.lagging = false,
            Err(SendError::Full) => {
                if !rung.lagging {
                    tracing::warn!(rendition = %rung.name, "segmenter lagging: dropping output until the next boundary");
                }
                rung.lagging = true;
                let _ = rung.segmenter.send(SegmenterMsg::Abandon);
            }
            Err(SendError::Closed) => {}
        }
    }

    pub(super) fn drop_rung(&mut self, i: usize, reason: &str) {
        if self.rungs[i].dropped {
            return;
        }
        self.rungs[i].dropped = true;
        let mut labels = crate::stream_metrics::labels(&self.cfg.stream, &[]);
        labels.push(metrics::Label::new("reason", reason.to_string()));
        metrics::counter!("tessera_transcode_rungs_dropped_total", labels).increment(1);
        if let Some(w) = &self.worker {
            let _ = w.send(&ToWorker::DropRung(i as u32), Bytes::new());
        }
        let r = &self.rungs[i];
        if !r.dead {
            let _ = r.segmenter.send(SegmenterMsg::Abandon);
        }
        self.status.dropped.push((r.name.clone(), reason.to_string()));
        let gaps = self.ledger.drop_rung(i);
        self.send_gaps(gaps);
        self.publish_status();
    }

    pub(super) fn send_gaps(&mut self, gaps: Vec<Gap>) {
        for g in gaps {
            metrics::counter!("tessera_transcode_gaps_total").increment(1);
            let r = &self.rungs[g.rung];
            if r.dead {
                self.cfg.sink.publish(
                    &self.cfg.stream,
                    self.cfg.session,
                    &r.name,
                    tessera_packager::Published::Gap { segment: g.segment, duration: g.duration },
                );
            } else {
                let _ = r.segmenter.send(SegmenterMsg::Gap { segment: g.segment, duration: g.duration });
            }
        }
    }
}
