//! The ladder's codec worker: started through the launcher, given its job, restarted with
//! backoff when it dies (at once when its node is lost, passing that node over), and
//! caught up from the open segment's first frame when it arrives in the middle of one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_transcode::wire::ToWorker;
use tracing::Instrument;

use super::launch::{self, LaunchError, LaunchRequest, WorkerLink, WorkerPlace};
use super::{EncoderMsg, EncoderState, AVOID_FOR};
use crate::segmenter::SegmenterMsg;

impl EncoderState {
    /// Asks the launcher for the ladder's worker; the answer comes back as
    /// [`EncoderMsg::Launched`].
    pub(super) fn start_worker(&mut self) {
        if self.launching || self.ending {
            return;
        }
        if let Some(generation) = self.launch(&[], None) {
            self.generation = generation;
            self.launching = true;
        }
    }

    /// Asks the launcher for a worker of a new generation, passing over `avoid` too; with
    /// `handover`, it takes over from the current one (`Some(true)`: to relieve its node).
    pub(super) fn launch(&mut self, avoid: &[u64], handover: Option<bool>) -> Option<u64> {
        let job = self.job.as_ref()?;
        self.last_generation += 1;
        let generation = self.last_generation;
        let now = Instant::now();
        self.avoid.retain(|(_, at)| now.duration_since(*at) < AVOID_FOR);
        let mut avoid = avoid.to_vec();
        avoid.extend(self.avoid.iter().map(|(n, _)| *n));
        let request = LaunchRequest {
            stream: self.cfg.stream.clone(),
            session: self.cfg.session,
            generation,
            cost: tessera_transcode::cost::ladder_cores(job),
            avoid,
            handover: handover.is_some(),
            relieve: handover == Some(true),
        };
        let events_to = self.myself.clone();
        let events: launch::WorkerEvents =
            Arc::new(move |event| events_to.send_message(EncoderMsg::Worker { generation, event }).is_ok());
        let launching = self.cfg.settings.launcher.launch(request, events);
        let answer_to = self.myself.clone();
        tokio::spawn(
            async move {
                let result = launching.await;
                if let Err(ractor::MessagingErr::SendErr(EncoderMsg::Launched { result: Ok(mut w), .. })) =
                    answer_to.send_message(EncoderMsg::Launched { generation, result })
                {
                    w.kill();
                }
            }
            .instrument(self.span.clone()),
        );
        Some(generation)
    }

    /// Gives a started worker its job (and the rungs dropped so far); false if it refused.
    pub(super) fn give_job(&self, w: &dyn WorkerLink) -> bool {
        let Some(job) = self.job.clone() else { return false };
        let mut ok = w.send(&ToWorker::Start(job), Bytes::new()).is_ok();
        for (i, _) in self.rungs.iter().enumerate().filter(|(_, r)| r.dropped) {
            ok &= w.send(&ToWorker::DropRung(i as u32), Bytes::new()).is_ok();
        }
        ok
    }

    /// A worker started (or could not be): give it its job, or try again later.
    pub(super) fn launched(&mut self, result: Result<Box<dyn WorkerLink>, LaunchError>) {
        self.launching = false;
        let w = match result {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the codec worker");
                self.schedule_restart();
                self.publish_status();
                return;
            }
        };
        if self.job.is_none() {
            return;
        }
        let ok = self.give_job(w.as_ref());
        let place = w.place();
        match place {
            WorkerPlace::Local { pid } => {
                tracing::info!(?pid, generation = self.generation, rungs = self.rungs.len(), "codec worker started")
            }
            WorkerPlace::Node { node, epoch } => {
                tracing::info!(
                    node,
                    epoch,
                    generation = self.generation,
                    rungs = self.rungs.len(),
                    "codec worker started on another node"
                )
            }
        }
        self.worker = Some(w);
        self.roster.started(self.generation);
        self.set_place();
        metrics::gauge!("tessera_codec_workers").increment(1.0);
        if !ok {
            tracing::error!("codec worker refused its job");
        }
        self.catch_up();
        if self.ending {
            let myself = self.myself.clone();
            self.finish(&myself);
        }
        self.publish_status();
    }

    pub(super) fn worker_exited(&mut self, how: String, lost: bool) {
        self.stop_movers();
        self.roster.lost();
        let place = self.worker.as_ref().map(|w| w.place());
        if self.worker.take().is_some() {
            metrics::gauge!("tessera_codec_workers").decrement(1.0);
        }
        self.status.worker_pid = None;
        self.status.worker_node = None;
        if self.ending {
            let myself = self.myself.clone();
            self.finish(&myself);
            return;
        }
        if let (true, Some(node)) = (lost, place.and_then(|p| p.node())) {
            self.avoid.push((node, Instant::now()));
        }
        metrics::counter!("tessera_codec_worker_exits_total").increment(1);
        tracing::error!(generation = self.generation, %how, lost, "codec worker gone; the transcoded renditions have a gap until it is back");
        self.feeding = false;
        self.governor.worker_restarted();
        let gaps = self.ledger.interrupt();
        for r in self.rungs.iter().filter(|r| !r.dead) {
            let _ = r.segmenter.send(SegmenterMsg::Abandon);
        }
        self.send_gaps(gaps);
        if lost {
            // Its node is gone, not the worker's fault: place it again at once.
            self.count_restart();
            self.start_worker();
        } else {
            self.schedule_restart();
        }
        self.publish_status();
    }

    pub(super) fn count_restart(&mut self) {
        self.restarts += 1;
        self.status.worker_restarts = self.restarts;
        metrics::counter!("tessera_codec_worker_restarts_total").increment(1);
    }

    /// Backoff: 250 ms after a first crash, doubling with each crash in the last minute,
    /// at most 5 s.
    pub(super) fn schedule_restart(&mut self) {
        let now = Instant::now();
        self.crashes.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        self.crashes.push(now);
        let delay = Duration::from_millis(250 * (1u64 << (self.crashes.len() - 1).min(5))).min(Duration::from_secs(5));
        self.count_restart();
        let generation = self.generation;
        self.myself.send_after(delay, move || EncoderMsg::Restart { generation });
    }

    /// A worker that arrived in the middle of a segment no rung has begun starts from that
    /// segment's first frame: the ladder's first segment is not lost to the time it takes
    /// to place the worker, nor a later one to a move between segments.
    pub(super) fn catch_up(&mut self) {
        let Some(segment) = self.open_segment.first().and_then(|(_, b)| b.map(|b| b.segment)) else { return };
        let now = Instant::now();
        if self.feeding || self.ending || self.governor.behind(now) || !self.ledger.can_start(segment) {
            return;
        }
        let frames = std::mem::take(&mut self.open_segment);
        tracing::info!(segment, frames = frames.len(), "worker catches up from the open segment's start");
        for (frame, boundary) in frames {
            self.frame(frame, boundary);
        }
    }
}
