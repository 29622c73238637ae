//! Whose output a ladder takes: the codec workers of one encoder, by generation.
//!
//! An encoder has at most one *current* worker, whose output goes to the rungs. To move
//! without a gap, a *successor* is started beside it; at a boundary `B` of the leader the
//! successor becomes current and the old worker *retires*: it finishes the segments before
//! `B` (fed only up to there), and its output still goes to the rungs, while the
//! successor's (from `B` on) is held until the retiring worker is done. So every rung
//! receives each segment from one worker, whole and in order. Output of any other
//! generation (a worker that was replaced, fenced, or never took over) is refused.
//!
//! Sans-IO: the encoder actor owns the links and tells the roster what happened to them.

/// What a worker's generation is to the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Current,
    /// Started to take over; none of its output is taken before it does.
    Successor,
    /// Handed over at segment `before`: finishing the segments before it.
    Retiring {
        before: u64,
    },
    Stale,
}

/// What becomes of a packet of a worker's output.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit<P> {
    /// To the rungs now.
    Now(P),
    /// Kept until the retiring worker is done.
    Held,
    /// Not this ladder's any more.
    Refused,
    /// The retiring worker took so long that the holding queue is full: the move failed.
    Overflow,
}

#[derive(Debug)]
pub struct WorkerRoster<P> {
    current: Option<u64>,
    /// A successor's generation, and whether it is ready to take over.
    successor: Option<(u64, bool)>,
    /// The retiring worker's generation and the boundary it handed over at.
    retiring: Option<(u64, u64)>,
    held: Vec<P>,
    max_held: usize,
}

impl<P> WorkerRoster<P> {
    /// A roster holding at most `max_held` packets of a successor's output.
    pub fn new(max_held: usize) -> Self {
        WorkerRoster { current: None, successor: None, retiring: None, held: Vec::new(), max_held }
    }

    pub fn role(&self, generation: u64) -> Role {
        if self.current == Some(generation) {
            Role::Current
        } else if self.successor.is_some_and(|(g, _)| g == generation) {
            Role::Successor
        } else if let Some((_, before)) = self.retiring.filter(|(g, _)| *g == generation) {
            Role::Retiring { before }
        } else {
            Role::Stale
        }
    }

    pub fn current(&self) -> Option<u64> {
        self.current
    }

    /// Whether a move is under way (a successor started, or a worker retiring).
    pub fn moving(&self) -> bool {
        self.successor.is_some() || self.retiring.is_some()
    }

    /// Worker `generation` (re)starts the ladder on its own: any move under way is
    /// abandoned, and what was held with it.
    pub fn started(&mut self, generation: u64) {
        self.forget_moves();
        self.current = Some(generation);
    }

    /// The current worker is gone (and with it any move under way).
    pub fn lost(&mut self) {
        self.forget_moves();
        self.current = None;
    }

    fn forget_moves(&mut self) {
        self.successor = None;
        self.retiring = None;
        self.held.clear();
    }

    /// Worker `generation` is being started to take over; false (nothing changes) when
    /// there is no current worker or a move is already under way.
    pub fn successor(&mut self, generation: u64) -> bool {
        if self.current.is_none() || self.moving() {
            return false;
        }
        self.successor = Some((generation, false));
        true
    }

    /// The successor started and has its job: it takes over at the next boundary.
    pub fn successor_ready(&mut self) {
        if let Some((_, ready)) = self.successor.as_mut() {
            *ready = true;
        }
    }

    /// The successor did not start, or ended before taking over.
    pub fn successor_gone(&mut self) {
        self.successor = None;
    }

    /// The leader opened `segment`. A ready successor becomes current; the old current
    /// worker retires if `old_has_work` (it was fed the segments before), else it is simply
    /// replaced. The old generation, when there was a hand-over.
    pub fn take_over(&mut self, segment: u64, old_has_work: bool) -> Option<u64> {
        let (successor, true) = self.successor? else { return None };
        if self.retiring.is_some() {
            return None;
        }
        self.successor = None;
        let old = self.current.replace(successor)?;
        if old_has_work {
            self.retiring = Some((old, segment));
        }
        Some(old)
    }

    /// A packet of worker `generation`'s output.
    pub fn admit(&mut self, generation: u64, packet: P) -> Admit<P> {
        match self.role(generation) {
            Role::Current if self.retiring.is_some() => {
                if self.held.len() >= self.max_held {
                    return Admit::Overflow;
                }
                self.held.push(packet);
                Admit::Held
            }
            Role::Current | Role::Retiring { .. } => Admit::Now(packet),
            Role::Successor | Role::Stale => Admit::Refused,
        }
    }

    /// The retiring worker finished: the successor's held output, in order.
    pub fn retired(&mut self) -> Vec<P> {
        self.retiring = None;
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_over_takes_each_workers_output_for_its_own_segments_in_order() {
        let mut r = WorkerRoster::new(16);
        r.started(1);
        assert_eq!(r.admit(1, "s4 from 1"), Admit::Now("s4 from 1"));
        assert!(r.successor(2));
        assert!(!r.successor(3), "one move at a time");
        assert_eq!(r.take_over(5, true), None, "not before the successor is ready");
        assert_eq!(r.admit(2, "early"), Admit::Refused, "a successor's output before it takes over");
        r.successor_ready();
        assert_eq!(r.take_over(5, true), Some(1));
        assert_eq!((r.role(2), r.role(1)), (Role::Current, Role::Retiring { before: 5 }));
        assert_eq!(r.admit(2, "s5 from 2"), Admit::Held);
        assert_eq!(r.admit(1, "end of s4 from 1"), Admit::Now("end of s4 from 1"));
        assert_eq!(r.retired(), vec!["s5 from 2"]);
        assert_eq!(r.admit(2, "more of s5"), Admit::Now("more of s5"));
        assert_eq!(r.admit(1, "late"), Admit::Refused, "a retired worker is stale");
        assert!(!r.moving());
    }

    #[test]
    fn a_restart_abandons_the_move_and_what_it_held() {
        let mut r = WorkerRoster::new(1);
        r.started(1);
        r.successor(2);
        r.successor_ready();
        r.take_over(3, true);
        assert_eq!(r.admit(2, 'a'), Admit::Held);
        assert_eq!(r.admit(2, 'b'), Admit::Overflow, "the retiring worker took too long");
        r.lost();
        assert_eq!(r.current(), None);
        assert_eq!((r.role(1), r.role(2)), (Role::Stale, Role::Stale));
        r.started(3);
        assert_eq!(r.admit(3, 'c'), Admit::Now('c'));
        assert!(r.retired().is_empty(), "nothing held survives the restart");
    }

    #[test]
    fn an_idle_worker_is_replaced_without_retiring_and_a_failed_successor_changes_nothing() {
        let mut r = WorkerRoster::<()>::new(4);
        r.started(1);
        r.successor(2);
        r.successor_gone();
        assert_eq!(r.role(2), Role::Stale);
        assert!(r.successor(3));
        r.successor_ready();
        assert_eq!(r.take_over(7, false), Some(1));
        assert_eq!((r.role(3), r.role(1)), (Role::Current, Role::Stale));
        assert!(!r.moving());
    }
}
