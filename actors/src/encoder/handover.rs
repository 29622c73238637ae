//! The encoder's workers by role, and moving a ladder's worker without a gap (make before
//! break).
//!
//! When the link says its worker should run elsewhere ([`WorkerEvent::Displaced`]: its
//! node is draining; [`WorkerEvent::Crowded`]: its node is short of cores), the encoder
//! starts a *successor* while the current worker goes on.
//! At the next boundary `B` of the leader the successor becomes the current worker and is
//! fed from `B`'s first frame, while the old one is told to stop: it finishes the segments
//! before `B` and exits. [`WorkerRoster`](tessera_transcode::WorkerRoster) decides whose
//! output the rungs take meanwhile (the successor's is held until the old worker is done),
//! so no segment is made by both and none is lost. If the old worker fails before
//! finishing, the ladder falls back to what a lost worker means (gaps, a new worker); if
//! the successor cannot start, the old one carries on and the move is asked again.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_transcode::wire::{FromWorker, ToWorker};
use tessera_transcode::{Admit, Role};

use super::launch::{LaunchError, WorkerEvent, WorkerLink, WorkerPlace};
use super::{EncoderMsg, EncoderState};

/// How long a worker that handed over may take to finish the segments before the boundary.
const RETIRE_WITHIN: Duration = Duration::from_secs(5);
/// Output of the successor held while the old worker finishes, at most (packets).
pub(super) const HELD_PACKETS: usize = 8192;

/// The worker that handed over.
pub(super) struct Retiring {
    link: Box<dyn WorkerLink>,
    since: Instant,
}

impl EncoderState {
    /// An event of worker `generation`, by what that worker is to the ladder.
    pub(super) fn worker_event(&mut self, generation: u64, event: WorkerEvent) {
        // The worker being started is the ladder's before its launch is answered.
        let role = if generation == self.generation { Role::Current } else { self.roster.role(generation) };
        match (role, event) {
            (Role::Stale, _) => {}
            (_, WorkerEvent::Message(msg @ FromWorker::Packet { .. }, body)) => {
                match self.roster.admit(generation, (msg, body)) {
                    Admit::Now((msg, body)) => self.worker_message(msg, body),
                    Admit::Held | Admit::Refused => {}
                    Admit::Overflow => self.retiring_failed(
                        "it had not finished when its successor's output filled the holding queue".into(),
                    ),
                }
            }
            (Role::Current, WorkerEvent::Message(msg, body)) => self.worker_message(msg, body),
            (Role::Retiring { .. }, WorkerEvent::Message(FromWorker::Done { dts }, _)) => {
                self.governor.done(dts, Instant::now());
            }
            (_, WorkerEvent::Message(..)) => {}
            (Role::Current, WorkerEvent::Garbled(e)) => {
                tracing::error!(error = %e, "codec worker output unreadable; killing it");
                metrics::counter!("tessera_codec_worker_garbled_total").increment(1);
                if let Some(w) = self.worker.as_mut() {
                    w.kill();
                }
            }
            (Role::Current, WorkerEvent::Exited(how)) => self.worker_exited(how, false),
            (Role::Current, WorkerEvent::Lost(how)) => self.worker_exited(how, true),
            (Role::Current, WorkerEvent::Displaced(why)) => self.displaced(why, false),
            (Role::Current, WorkerEvent::Crowded(why)) => self.displaced(why, true),
            (_, WorkerEvent::Displaced(_) | WorkerEvent::Crowded(_)) => {}
            (Role::Retiring { .. }, WorkerEvent::Exited(_)) => self.retired(),
            (Role::Retiring { .. }, WorkerEvent::Garbled(why) | WorkerEvent::Lost(why)) => self.retiring_failed(why),
            (Role::Successor, WorkerEvent::Exited(why) | WorkerEvent::Lost(why) | WorkerEvent::Garbled(why)) => {
                tracing::warn!(reason = %why, "the successor ended before taking over; the current worker carries on");
                metrics::counter!("tessera_ladder_handovers_total", "outcome" => "successor_failed").increment(1);
                self.roster.successor_gone();
                if let Some(mut link) = self.successor.take() {
                    link.kill();
                    metrics::gauge!("tessera_codec_workers").decrement(1.0);
                }
            }
        }
    }

    /// The current worker should run elsewhere (`relieve`: only if a node has room to
    /// spare): start its successor, unless a move is already under way.
    pub(super) fn displaced(&mut self, why: String, relieve: bool) {
        if self.roster.moving() || self.worker.is_none() || self.ending {
            return;
        }
        let from = self.worker.as_ref().and_then(|w| w.place().node());
        tracing::info!(reason = %why, node = ?from, "moving the ladder's worker: its successor takes over at a boundary");
        let avoid: Vec<u64> = from.into_iter().collect();
        let Some(generation) = self.launch(&avoid, Some(relieve)) else { return };
        self.roster.successor(generation);
    }

    /// The successor started, or could not be.
    pub(super) fn successor_launched(&mut self, result: Result<Box<dyn WorkerLink>, LaunchError>) {
        let link = match result {
            Ok(w) if self.give_job(w.as_ref()) => w,
            Ok(mut w) => {
                w.kill();
                tracing::warn!("the successor refused its job; the current worker carries on");
                self.roster.successor_gone();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no node took the ladder's worker over; the current one carries on");
                metrics::counter!("tessera_ladder_handovers_total", "outcome" => "not_started").increment(1);
                self.roster.successor_gone();
                return;
            }
        };
        metrics::gauge!("tessera_codec_workers").increment(1.0);
        tracing::info!(place = ?link.place(), "successor ready; it takes over at the next boundary");
        self.roster.successor_ready();
        self.successor = Some(link);
    }

    /// The leader opened `segment`: a ready successor takes over from its first frame.
    pub(super) fn take_over_at(&mut self, segment: u64) {
        // The roster has a ready successor only once its link is here.
        let Some(old_generation) = self.roster.take_over(segment, self.feeding) else { return };
        let successor = self.successor.take().expect("a ready successor has a link");
        let old = self.worker.replace(successor);
        self.generation = self.roster.current().expect("the successor is current");
        self.set_place();
        metrics::counter!("tessera_ladder_handovers_total", "outcome" => "handed_over").increment(1);
        tracing::info!(segment, from = ?old.as_ref().map(|w| w.place()), to = ?self.worker.as_ref().map(|w| w.place()), "the ladder's worker handed over");
        let Some(mut old) = old else { return };
        let retiring = matches!(self.roster.role(old_generation), Role::Retiring { .. });
        if !retiring || old.send(&ToWorker::Stop, Bytes::new()).is_err() {
            // It has nothing of the segments before this one to finish.
            old.kill();
            metrics::gauge!("tessera_codec_workers").decrement(1.0);
            if retiring {
                self.roster.retired();
            }
            return;
        }
        self.retiring = Some(Retiring { link: old, since: Instant::now() });
        self.myself.send_after(RETIRE_WITHIN, move || EncoderMsg::RetireTimeout { generation: old_generation });
        self.publish_status();
    }

    /// The old worker finished: the successor's held output goes to the rungs.
    fn retired(&mut self) {
        let held = self.roster.retired();
        let Some(r) = self.retiring.take() else { return };
        metrics::gauge!("tessera_codec_workers").decrement(1.0);
        tracing::info!(
            held = held.len(),
            took_ms = r.since.elapsed().as_millis() as u64,
            "the worker that handed over finished its segments"
        );
        for (msg, body) in held {
            self.worker_message(msg, body);
        }
    }

    /// The old worker will not finish its segments: as if the ladder's worker were lost
    /// (the rungs list gaps, a new worker starts).
    fn retiring_failed(&mut self, why: String) {
        metrics::counter!("tessera_ladder_handovers_total", "outcome" => "old_failed").increment(1);
        if let Some(w) = self.worker.as_mut() {
            w.kill();
        }
        self.worker_exited(format!("the worker it took over from did not finish: {why}"), false);
    }

    /// The retiring worker's time is up.
    pub(super) fn retire_timeout(&mut self, generation: u64) {
        if matches!(self.roster.role(generation), Role::Retiring { .. }) {
            self.retiring_failed(format!("not done within {RETIRE_WITHIN:?}"));
        }
    }

    /// Stops a successor and a retiring worker (the ladder restarts, or ends).
    pub(super) fn stop_movers(&mut self) {
        let links = [self.successor.take(), self.retiring.take().map(|r| r.link)];
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
