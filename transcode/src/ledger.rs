//! Which segments each transcoded rung has, will have, or will never have.
//!
//! Every rendition of a ladder numbers its segments like the leader (the source
//! segmenter). A rung misses segments when its worker dies, when the node stops feeding
//! the worker to bound latency, or when the rung is dropped for load; those numbers must
//! still appear in its playlist, as gaps with the leader's duration, or the renditions
//! would no longer line up. The ledger decides when a number is lost for good and says
//! which gaps to list, in order, exactly once each.
//!
//! A segment is *pending* for a rung while its first frame is in the worker with the rung
//! active; *started* once the rung's output reaches it. When an interruption (worker lost,
//! feeding stopped, rung dropped) leaves a started segment unfinished, that segment is
//! listed at the leader's duration too, so every rendition keeps the same timeline.

use std::collections::{BTreeMap, BTreeSet};

/// A segment a rung will never have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    pub rung: usize,
    pub segment: u64,
    /// The leader's duration of that segment, seconds.
    pub duration: f64,
}

#[derive(Debug, Default, Clone)]
struct Rung {
    /// The first segment not yet accounted for (started or listed as a gap).
    next: Option<u64>,
    pending: BTreeSet<u64>,
    /// A started segment cut short by an interruption, to be closed at the leader's duration.
    interrupted: Option<u64>,
    dropped: bool,
}

#[derive(Debug, Default)]
pub struct GapLedger {
    rungs: Vec<Rung>,
    /// Durations of the leader's completed segments.
    durations: BTreeMap<u64, f64>,
}

impl GapLedger {
    pub fn new(rungs: usize) -> Self {
        GapLedger { rungs: vec![Rung::default(); rungs], durations: BTreeMap::new() }
    }

    /// The leader opened `segment`; `fed` is true if its first frame went to the worker,
    /// which encodes the rungs for which `active` holds.
    pub fn leader_opened(&mut self, segment: u64, fed: bool, active: impl Fn(usize) -> bool) {
        for (i, r) in self.rungs.iter_mut().enumerate() {
            r.next.get_or_insert(segment);
            if fed && !r.dropped && active(i) {
                r.pending.insert(segment);
            }
        }
    }

    /// Whether a worker may still make `segment` from its first frame: no rung has made
    /// (or given up) any of it or anything after it.
    pub fn can_start(&self, segment: u64) -> bool {
        self.rungs
            .iter()
            .all(|r| r.dropped || (r.next.is_none_or(|n| n <= segment) && r.interrupted.is_none_or(|i| i < segment)))
    }

    /// The leader completed `segment`: returns the gaps that are now certain.
    pub fn leader_completed(&mut self, segment: u64, duration: f64) -> Vec<Gap> {
        self.durations.insert(segment, duration);
        while self.durations.len() > 64 {
            self.durations.pop_first();
        }
        let mut out = Vec::new();
        for i in 0..self.rungs.len() {
            self.settle(i, segment, &mut out);
        }
        out
    }

    /// Rung `rung`'s output reached `segment`: the segments it skipped are gaps.
    pub fn rung_started(&mut self, rung: usize, segment: u64) -> Vec<Gap> {
        let mut out = Vec::new();
        let Some(r) = self.rungs.get_mut(rung) else { return out };
        if r.dropped || r.next.is_some_and(|n| segment < n) {
            return out; // late output, already listed as a gap
        }
        r.pending = r.pending.split_off(&(segment + 1));
        let from = r.next.unwrap_or(segment);
        for s in from..segment {
            let duration = self.durations.get(&s).copied().unwrap_or(0.0);
            out.push(Gap { rung, segment: s, duration });
        }
        let r = &mut self.rungs[rung];
        r.next = Some(segment + 1);
        r.interrupted = None;
        out
    }

    /// The worker is gone, or stopped being fed: nothing pending will come, and the
    /// segment each rung was making stops short.
    pub fn interrupt(&mut self) -> Vec<Gap> {
        let mut out = Vec::new();
        for i in 0..self.rungs.len() {
            self.interrupt_rung(i, &mut out);
        }
        out
    }

    /// Rung `rung` is dropped for the rest of the session: every later segment is a gap.
    pub fn drop_rung(&mut self, rung: usize) -> Vec<Gap> {
        let mut out = Vec::new();
        if rung < self.rungs.len() {
            self.interrupt_rung(rung, &mut out);
            self.rungs[rung].dropped = true;
        }
        out
    }

    fn interrupt_rung(&mut self, i: usize, out: &mut Vec<Gap>) {
        let r = &mut self.rungs[i];
        r.pending.clear();
        if let Some(n) = r.next {
            if n > 0 && r.interrupted.is_none() {
                r.interrupted = Some(n - 1);
            }
        }
        if let Some(last) = self.durations.keys().next_back().copied() {
            self.settle(i, last, out);
        }
    }

    /// Lists what rung `i` will never have, up to the leader's completed `through`.
    fn settle(&mut self, i: usize, through: u64, out: &mut Vec<Gap>) {
        let r = &mut self.rungs[i];
        if let Some(s) = r.interrupted {
            if let Some(d) = self.durations.get(&s) {
                out.push(Gap { rung: i, segment: s, duration: *d });
                r.interrupted = None;
            }
        }
        let Some(mut next) = r.next else { return };
        while next <= through && !r.pending.contains(&next) {
            let duration = self.durations.get(&next).copied().unwrap_or(0.0);
            out.push(Gap { rung: i, segment: next, duration });
            next += 1;
        }
        r.next = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(g: &[Gap]) -> Vec<(usize, u64)> {
        g.iter().map(|g| (g.rung, g.segment)).collect()
    }

    #[test]
    fn a_healthy_worker_leaves_no_gaps() {
        let mut l = GapLedger::new(2);
        for s in 0..5 {
            l.leader_opened(s, true, |_| true);
            assert!(l.rung_started(0, s).is_empty());
            assert!(l.rung_started(1, s).is_empty());
            assert!(l.leader_completed(s, 2.0).is_empty());
        }
    }

    #[test]
    fn output_lagging_the_leader_is_not_a_gap() {
        let mut l = GapLedger::new(1);
        l.leader_opened(0, true, |_| true);
        l.leader_opened(1, true, |_| true);
        assert!(l.leader_completed(0, 2.0).is_empty(), "segment 0 is still in the worker");
        assert!(l.rung_started(0, 0).is_empty());
        assert!(l.rung_started(0, 1).is_empty());
    }

    #[test]
    fn a_dead_worker_closes_the_segment_in_progress_and_lists_the_missed_ones() {
        let mut l = GapLedger::new(2);
        l.leader_opened(0, true, |_| true);
        l.rung_started(0, 0);
        l.rung_started(1, 0);
        l.leader_opened(1, true, |_| true);
        assert!(l.leader_completed(0, 2.0).is_empty());
        l.rung_started(0, 1); // rung 1 was still finishing segment 0 when the worker died
        let g = l.interrupt();
        assert_eq!(g, [Gap { rung: 1, segment: 0, duration: 2.0 }], "rung 1's segment 0 closes now; rung 0's 1 later");
        l.leader_opened(2, false, |_| true); // not fed: the worker is restarting
        let g = l.leader_completed(1, 2.1);
        assert_eq!(gaps(&g), [(0, 1), (1, 1)], "rung 0's started segment 1 closes at the leader's duration");
        assert_eq!(g[0].duration, 2.1);
        l.leader_opened(3, true, |_| true); // the new worker takes boundary 3
        assert_eq!(gaps(&l.leader_completed(2, 2.0)), [(0, 2), (1, 2)]);
        assert!(l.leader_completed(3, 2.0).is_empty(), "3 is pending");
        assert!(l.rung_started(0, 3).is_empty());
        assert!(l.rung_started(1, 3).is_empty());
    }

    #[test]
    fn interruption_after_the_leader_completed_the_segment_closes_it_at_once() {
        let mut l = GapLedger::new(1);
        l.leader_opened(0, true, |_| true);
        l.rung_started(0, 0);
        l.leader_opened(1, true, |_| true);
        l.leader_completed(0, 1.9);
        let g = l.interrupt();
        assert_eq!(g, [Gap { rung: 0, segment: 0, duration: 1.9 }]);
        assert_eq!(gaps(&l.leader_completed(1, 2.0)), [(0, 1)], "pending 1 was lost with the worker");
    }

    #[test]
    fn a_dropped_rung_gets_every_later_segment_as_a_gap_and_late_output_is_ignored() {
        let mut l = GapLedger::new(2);
        l.leader_opened(0, true, |_| true);
        l.rung_started(0, 0);
        l.rung_started(1, 0);
        assert!(l.drop_rung(0).is_empty());
        l.leader_opened(1, true, |r| r != 0);
        assert_eq!(gaps(&l.leader_completed(0, 2.0)), [(0, 0)]);
        assert_eq!(gaps(&l.leader_completed(1, 2.0)), [(0, 1)]);
        assert!(l.rung_started(0, 1).is_empty(), "late output of a dropped rung");
        assert!(l.rung_started(1, 1).is_empty());
    }

    #[test]
    fn a_boundary_the_worker_could_not_encode_is_listed_when_the_next_one_comes_out() {
        let mut l = GapLedger::new(1);
        l.leader_opened(0, true, |_| true);
        l.rung_started(0, 0);
        l.leader_opened(1, true, |_| true); // its keyframe is corrupt: the decoder skips it
        assert!(l.leader_completed(0, 2.0).is_empty());
        assert!(l.leader_completed(1, 2.0).is_empty(), "still pending");
        l.leader_opened(2, true, |_| true);
        let g = l.rung_started(0, 2);
        assert_eq!(g, [Gap { rung: 0, segment: 1, duration: 2.0 }]);
        assert!(l.leader_completed(2, 2.0).is_empty(), "listed once");
    }

    #[test]
    fn skipped_feeding_lists_the_cut_segment_and_the_unfed_ones() {
        let mut l = GapLedger::new(1);
        l.leader_opened(0, true, |_| true);
        l.rung_started(0, 0);
        assert!(l.interrupt().is_empty(), "the node stopped feeding mid-segment 0");
        l.leader_opened(1, false, |_| true);
        assert_eq!(gaps(&l.leader_completed(0, 2.0)), [(0, 0)]);
        l.leader_opened(2, true, |_| true);
        assert_eq!(gaps(&l.leader_completed(1, 2.0)), [(0, 1)]);
        assert!(l.rung_started(0, 2).is_empty());
    }
}
