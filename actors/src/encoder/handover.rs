//! Moving a ladder's worker without a gap (make before break).
//!
//! When the link says its worker should run elsewhere ([`WorkerEvent::Displaced`]: its
//! node is draining), the encoder starts a *successor* while the current worker goes on.
//! At the next boundary `B` of the leader the successor becomes the current worker and is
//! fed from `B`'s first frame, while the old one is told to stop: it finishes the segments
//! before `B` and exits. Until it has, the successor's output is held, so every rung gets
//! its segments whole and in order, one worker's each: no segment is made by both, none is
//! lost. If the old worker fails before finishing, the ladder falls back to what a lost
//! worker means (gaps, a new worker); if the successor cannot start, the old one carries
//! on and the move is asked again.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_transcode::wire::{FromWorker, ToWorker};

use super::launch::{LaunchError, WorkerEvent, WorkerLink, WorkerPlace};
use super::{EncoderMsg, EncoderState};

/// How long a worker that handed over may take to finish the segments before the boundary.
const RETIRE_WITHIN: Duration = Duration::from_secs(5);
/// Output of the successor held while the old worker finishes, at most (packets).
const HELD_PACKETS: usize = 8192;

/// A worker being started to take over from the current one.
pub(super) struct Handover {
    pub(super) generation: u64,
    /// Set once it started; it takes over at the next boundary.
    link: Option<Box<dyn WorkerLink>>,
    why: String,
}

/// The worker that handed over, finishing the segments before `from`.
pub(super) struct Retiring {
    pub(super) generation: u64,
    link: Box<dyn WorkerLink>,
    from: u64,
    /// The successor's output, held until this worker is done.
    held: Vec<(FromWorker, Bytes)>,
    since: Instant,
}

impl EncoderState {
    /// The current worker should run elsewhere: start its successor, unless one is already
    /// on its way or the last move has not finished.
    pub(super) fn displaced(&mut self, why: String) {
        if self.handover.is_some() || self.retiring.is_some() || self.worker.is_none() || self.ending {
            return;
        }
        let from = self.worker.as_ref().and_then(|w| w.place().node());
        tracing::info!(reason = %why, node = ?from, "moving the ladder's worker: its successor takes over at a boundary");
        let mut avoid = Vec::new();
        avoid.extend(from);
        let Some(generation) = self.launch(&avoid, true) else { return };
        self.handover = Some(Handover { generation, link: None, why });
    }

    /// The successor started, or could not be.
    pub(super) fn successor_launched(&mut self, result: Result<Box<dyn WorkerLink>, LaunchError>) {
        if self.handover.is_none() {
            return;
        }
        let w = match result {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "no node took the ladder's worker over; the current one carries on");
                metrics::counter!("tessera_ladder_handovers_total", "outcome" => "not_started").increment(1);
                self.handover = None;
                return;
            }
        };
        if !self.give_job(w.as_ref()) {
            tracing::warn!("the successor refused its job; the current worker carries on");
            self.handover = None;
            return;
        }
        metrics::gauge!("tessera_codec_workers").increment(1.0);
        let h = self.handover.as_mut().expect("checked");
        tracing::info!(place = ?w.place(), reason = %h.why, "successor ready; it takes over at the next boundary");
        h.link = Some(w);
    }

    /// The leader opened `segment`: a ready successor takes over from its first frame.
    pub(super) fn take_over_at(&mut self, segment: u64) {
        if !self.handover.as_ref().is_some_and(|h| h.link.is_some()) || self.retiring.is_some() {
            return;
        }
        let h = self.handover.take().expect("checked");
        let successor = h.link.expect("checked");
        let old = self.worker.replace(successor);
        let old_generation = std::mem::replace(&mut self.generation, h.generation);
        self.set_place();
        metrics::counter!("tessera_ladder_handovers_total", "outcome" => "handed_over").increment(1);
        tracing::info!(segment, from = ?old.as_ref().map(|w| w.place()), to = ?self.worker.as_ref().map(|w| w.place()), "the ladder's worker handed over");
        let Some(mut old) = old else { return };
        if !self.feeding || old.send(&ToWorker::Stop, Bytes::new()).is_err() {
            // It has nothing of the segments before this one to finish.
            old.kill();
            metrics::gauge!("tessera_codec_workers").decrement(1.0);
            return;
        }
        self.retiring = Some(Retiring {
            generation: old_generation,
            link: old,
            from: segment,
            held: Vec::new(),
            since: Instant::now(),
        });
        self.myself.send_after(RETIRE_WITHIN, move || EncoderMsg::RetireTimeout { generation: old_generation });
        self.publish_status();
    }

    /// The successor's output waits while the old worker finishes: the message comes back
    /// when it is to be handled now.
    pub(super) fn hold(&mut self, msg: FromWorker, body: Bytes) -> Option<(FromWorker, Bytes)> {
        let Some(r) = self.retiring.as_mut() else { return Some((msg, body)) };
        if !matches!(msg, FromWorker::Packet { .. }) {
            return Some((msg, body));
        }
        r.held.push((msg, body));
        if r.held.len() > HELD_PACKETS {
            let from = r.from;
            self.retiring_failed(format!(
                "it had not finished the segments before {from} when its successor's output filled the holding queue"
            ));
        }
        None
    }

    /// An event of a worker that is neither current nor (any more) expected.
    pub(super) fn other_worker(&mut self, generation: u64, event: WorkerEvent) {
        if self.retiring.as_ref().is_some_and(|r| r.generation == generation) {
            match event {
                WorkerEvent::Message(FromWorker::Packet { rung, pts, dts, keyframe, boundary }, body) => {
                    self.rung_packet(rung as usize, pts, dts, keyframe, boundary, body)
                }
                WorkerEvent::Message(FromWorker::Done { dts }, _) => {
                    self.governor.done(dts, Instant::now());
                }
                WorkerEvent::Message(..) | WorkerEvent::Displaced(_) => {}
                WorkerEvent::Exited(_) => self.retired(),
                WorkerEvent::Garbled(why) | WorkerEvent::Lost(why) => self.retiring_failed(why),
            }
            return;
        }
        if self.handover.as_ref().is_some_and(|h| h.generation == generation) {
            if let WorkerEvent::Exited(why) | WorkerEvent::Lost(why) | WorkerEvent::Garbled(why) = event {
                tracing::warn!(reason = %why, "the successor ended before taking over; the current worker carries on");
                metrics::counter!("tessera_ladder_handovers_total", "outcome" => "successor_failed").increment(1);
                if let Some(mut w) = self.handover.take().and_then(|h| h.link) {
                    w.kill();
                    metrics::gauge!("tessera_codec_workers").decrement(1.0);
                }
            }
        }
    }

    /// The old worker finished: the successor's held output goes to the rungs.
    fn retired(&mut self) {
        let Some(r) = self.retiring.take() else { return };
        metrics::gauge!("tessera_codec_workers").decrement(1.0);
        tracing::info!(
            segment = r.from,
            held = r.held.len(),
            took_ms = r.since.elapsed().as_millis() as u64,
            "the worker that handed over finished its segments"
        );
        for (msg, body) in r.held {
            self.worker_message(msg, body);
        }
    }

    /// The old worker will not finish its segments: as if the ladder's worker were lost
    /// (the rungs list gaps, a new worker starts).
    pub(super) fn retiring_failed(&mut self, why: String) {
        let Some(mut r) = self.retiring.take() else { return };
        r.link.kill();
        metrics::gauge!("tessera_codec_workers").decrement(1.0);
        metrics::counter!("tessera_ladder_handovers_total", "outcome" => "old_failed").increment(1);
        if let Some(w) = self.worker.as_mut() {
            w.kill();
        }
        self.worker_exited(format!("the worker it took over from did not finish: {why}"), false);
    }

    /// The retiring worker's time is up.
    pub(super) fn retire_timeout(&mut self, generation: u64) {
        if self.retiring.as_ref().is_some_and(|r| r.generation == generation) {
            self.retiring_failed(format!("not done within {RETIRE_WITHIN:?}"));
        }
    }

    /// Stops a successor and a retiring worker, at the end of the session.
    pub(super) fn stop_movers(&mut self) {
        let links = [self.handover.take().and_then(|h| h.link), self.retiring.take().map(|r| r.link)];
        for mut w in links.into_iter().flatten() {
            w.kill();
            metrics::gauge!("tessera_codec_workers").decrement(1.0);
        }
    }

    /// The status's worker place, from the current worker.
    pub(super) fn set_place(&mut self) {
        (self.status.worker_pid, self.status.worker_node) = match self.worker.as_ref().map(|w| w.place()) {
            Some(WorkerPlace::Local { pid }) => (pid, None),
            Some(WorkerPlace::Node { node, epoch }) => (None, Some((node, epoch))),
            None => (None, None),
        };
    }
}
