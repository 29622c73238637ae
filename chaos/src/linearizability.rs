//! A linearizability checker for catalog histories, in the manner of Knossos and Porcupine:
//! each stream name is an independent register (linearizability composes per object), and
//! for each, a depth-first search (Wing and Gong, with memoisation of visited states) looks
//! for an order of the operations that respects real time and the model.
//!
//! Operations without an answer (`Ret::Unknown`) may take effect at any time after their
//! invocation, or never.

use std::collections::{BTreeMap, HashSet};

use crate::history::{Event, Op, Ret};

/// A key whose history has no valid order.
#[derive(Debug, Clone)]
pub struct Violation {
    pub key: String,
    pub events: Vec<Event>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "history of {:?} is not linearizable:", self.key)?;
        for e in &self.events {
            writeln!(
                f,
                "  client {} at node {} (term {}) {:?} -> {:?}  [{} us .. {}]",
                e.client,
                e.node,
                e.term,
                e.op,
                e.ret,
                e.invoked_us,
                e.returned_us.map_or("never".to_string(), |r| format!("{r} us"))
            )?;
        }
        Ok(())
    }
}

/// The register model: whether the stream exists. Returns the next state if `ret` is a
/// possible answer to `op` in `present`.
fn step(present: bool, op: Op, ret: Ret) -> Option<bool> {
    let (next, answer) = match (op, present) {
        (Op::Create, false) => (true, Ret::Done),
        (Op::Create, true) => (true, Ret::Refused),
        (Op::Delete, true) => (false, Ret::Done),
        (Op::Delete, false) => (false, Ret::Refused),
        (Op::Read, p) => (p, Ret::Present(p)),
    };
    (ret == Ret::Unknown || ret == answer).then_some(next)
}

/// Checks one key's events, the register starting absent.
pub fn check_key(events: &[Event]) -> bool {
    let mut ops: Vec<&Event> = events.iter().collect();
    ops.sort_by_key(|e| e.invoked_us);
    let n = ops.len();
    let words = n.div_ceil(64).max(1);
    let completed: usize = ops.iter().filter(|e| e.returned_us.is_some()).count();
    let mut seen: HashSet<(Vec<u64>, bool)> = HashSet::new();
    // Depth-first over (linearized set, state, completed ops linearized).
    let mut stack = vec![(vec![0u64; words], false, 0usize)];
    while let Some((done, state, done_completed)) = stack.pop() {
        if done_completed == completed {
            return true;
        }
        if !seen.insert((done.clone(), state)) {
            continue;
        }
        let is_done = |i: usize| done[i / 64] >> (i % 64) & 1 == 1;
        let horizon = (0..n).filter(|i| !is_done(*i)).filter_map(|i| ops[i].returned_us).min().unwrap_or(u64::MAX);
        for i in (0..n).filter(|i| !is_done(*i)) {
            if ops[i].invoked_us > horizon {
                break; // sorted by invocation: nothing later can go first
            }
            if let Some(next) = step(state, ops[i].op, ops[i].ret) {
                let mut d = done.clone();
                d[i / 64] |= 1 << (i % 64);
                stack.push((d, next, done_completed + ops[i].returned_us.is_some() as usize));
            }
        }
    }
    false
}

/// Checks a whole history, key by key; returns the first key that fails, if any.
pub fn check(events: &[Event]) -> Result<usize, Violation> {
    let mut by_key: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
    for e in events {
        by_key.entry(e.key.as_str()).or_default().push(e.clone());
    }
    for (key, evs) in &by_key {
        if !check_key(evs) {
            return Err(Violation { key: key.to_string(), events: evs.clone() });
        }
    }
    Ok(by_key.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(client: usize, op: Op, ret: Ret, invoked_us: u64, returned_us: Option<u64>) -> Event {
        Event { client, node: 1, term: 1, key: "k".into(), op, ret, invoked_us, returned_us }
    }

    #[test]
    fn sequential_histories_check_and_wrong_answers_do_not() {
        let ok = [
            ev(0, Op::Read, Ret::Present(false), 0, Some(1)),
            ev(0, Op::Create, Ret::Done, 2, Some(3)),
            ev(0, Op::Create, Ret::Refused, 4, Some(5)),
            ev(0, Op::Read, Ret::Present(true), 6, Some(7)),
            ev(0, Op::Delete, Ret::Done, 8, Some(9)),
            ev(0, Op::Read, Ret::Present(false), 10, Some(11)),
        ];
        assert!(check_key(&ok));
        let lost_write = [ev(0, Op::Create, Ret::Done, 0, Some(1)), ev(1, Op::Read, Ret::Present(false), 2, Some(3))];
        assert!(!check_key(&lost_write), "an acknowledged create that a later read does not see");
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // A read overlapping a create may see either state.
        for seen in [true, false] {
            let h = [ev(0, Op::Create, Ret::Done, 0, Some(10)), ev(1, Op::Read, Ret::Present(seen), 5, Some(6))];
            assert!(check_key(&h), "read saw {seen}");
        }
        // Two overlapping creates: exactly one wins.
        let both = [ev(0, Op::Create, Ret::Done, 0, Some(10)), ev(1, Op::Create, Ret::Done, 1, Some(9))];
        assert!(!check_key(&both));
        let one = [ev(0, Op::Create, Ret::Done, 0, Some(10)), ev(1, Op::Create, Ret::Refused, 1, Some(9))];
        assert!(check_key(&one));
    }

    #[test]
    fn an_unanswered_write_may_or_may_not_have_happened_but_not_flip_flop() {
        let maybe = ev(0, Op::Create, Ret::Unknown, 0, None);
        assert!(check_key(&[maybe.clone(), ev(1, Op::Read, Ret::Present(false), 5, Some(6))]));
        assert!(check_key(&[maybe.clone(), ev(1, Op::Read, Ret::Present(true), 5, Some(6))]));
        let flip =
            [maybe, ev(1, Op::Read, Ret::Present(true), 5, Some(6)), ev(1, Op::Read, Ret::Present(false), 7, Some(8))];
        assert!(!check_key(&flip), "once seen, an unanswered create cannot be undone by nothing");
    }

    #[test]
    fn keys_are_checked_independently_and_the_failing_one_is_named() {
        let mut h = vec![ev(0, Op::Create, Ret::Done, 0, Some(1))];
        let mut other = ev(1, Op::Read, Ret::Present(true), 2, Some(3));
        other.key = "other".into();
        h.push(other);
        let v = check(&h).unwrap_err();
        assert_eq!(v.key, "other");
        assert!(v.to_string().contains("Read -> Present(true)"));
    }
}
