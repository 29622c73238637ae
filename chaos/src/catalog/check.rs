//! Linearizability of a whole-catalog history, key by key, with `Catalog::apply` as the
//! model (Wing and Gong's search, memoised on the linearized set and the model's state).

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use tessera_raft::{Catalog, Proposal};

use super::model::{outcome, project, Answer, Call, CatalogEvent, LocalObservation};

/// What the checker found wrong.
#[derive(Debug, Clone)]
pub enum Violation {
    /// No order of this key's operations explains what the clients saw.
    NotLinearizable { key: String, events: Vec<CatalogEvent> },
    /// Two nodes claimed the same applied index and held different values.
    UntruthfulLocalRead { key: String, applied: Option<u64>, seen: Vec<(u64, serde_json::Value)> },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::NotLinearizable { key, events } => {
                writeln!(f, "the history of {key:?} is not linearizable:")?;
                for e in events {
                    let ret = e.returned_us.map_or("never".to_string(), |r| format!("{r} us"));
                    writeln!(
                        f,
                        "  client {} via node {}: {:?} -> {:?} [{} us .. {ret}]",
                        e.client, e.node, e.call, e.answer, e.invoked_us
                    )?;
                }
                Ok(())
            }
            Violation::UntruthfulLocalRead { key, applied, seen } => {
                write!(f, "local reads of {key:?} at applied index {applied:?} disagree: {seen:?}")
            }
        }
    }
}

/// The model's next state if `e` could take effect in `state` with the answer it got.
fn step(state: &Catalog, e: &CatalogEvent) -> Option<Catalog> {
    match (&e.call, &e.answer) {
        (Call::Write(command), answer) => {
            let mut next = state.clone();
            let got = next.apply(&Proposal { at_ms: e.at_ms, command: command.clone() });
            match answer {
                Answer::Unknown => Some(next),
                Answer::Outcome(seen) => (outcome(&got) == *seen).then_some(next),
                Answer::Value(_) => None,
            }
        }
        (Call::Read, Answer::Value(seen)) => (project(state, &e.key) == *seen).then(|| state.clone()),
        (Call::Read, _) => None,
    }
}

fn fingerprint(c: &Catalog, key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    project(c, key).to_string().hash(&mut h);
    h.finish()
}

/// Whether one key's events have a valid order, from `initial`.
pub fn check_key(initial: &Catalog, key: &str, events: &[CatalogEvent]) -> bool {
    let mut ops: Vec<&CatalogEvent> = events.iter().collect();
    ops.sort_by_key(|e| e.invoked_us);
    let n = ops.len();
    let words = n.div_ceil(64).max(1);
    let completed = ops.iter().filter(|e| e.returned_us.is_some()).count();
    let mut seen: HashSet<(Vec<u64>, u64)> = HashSet::new();
    let mut stack = vec![(vec![0u64; words], initial.clone(), 0usize)];
    while let Some((done, state, done_completed)) = stack.pop() {
        if done_completed == completed {
            return true;
        }
        if !seen.insert((done.clone(), fingerprint(&state, key))) {
            continue;
        }
        let is_done = |i: usize| done[i / 64] >> (i % 64) & 1 == 1;
        let horizon = (0..n).filter(|i| !is_done(*i)).filter_map(|i| ops[i].returned_us).min().unwrap_or(u64::MAX);
        for i in (0..n).filter(|i| !is_done(*i)) {
            if ops[i].invoked_us > horizon {
                break;
            }
            if let Some(next) = step(&state, ops[i]) {
                let mut d = done.clone();
                d[i / 64] |= 1 << (i % 64);
                stack.push((d, next, done_completed + ops[i].returned_us.is_some() as usize));
            }
        }
    }
    false
}

/// Checks a history key by key, and the local reads; the number of keys checked.
pub fn check(initial: &Catalog, events: &[CatalogEvent], local: &[LocalObservation]) -> Result<usize, Violation> {
    let mut by_key: BTreeMap<&str, Vec<CatalogEvent>> = BTreeMap::new();
    for e in events {
        by_key.entry(e.key.as_str()).or_default().push(e.clone());
    }
    for (key, evs) in &by_key {
        if !check_key(initial, key, evs) {
            return Err(Violation::NotLinearizable { key: key.to_string(), events: evs.clone() });
        }
    }
    // (key, applied index) -> (node, value) of every local read that claimed it.
    type Claimed<'a> = BTreeMap<(&'a str, Option<u64>), Vec<(u64, &'a serde_json::Value)>>;
    let mut at_index: Claimed = BTreeMap::new();
    for o in local {
        at_index.entry((o.key.as_str(), o.applied)).or_default().push((o.node, &o.value));
    }
    for ((key, applied), seen) in at_index {
        if seen.windows(2).any(|w| w[0].1 != w[1].1) {
            let seen = seen.into_iter().map(|(n, v)| (n, v.clone())).collect();
            return Err(Violation::UntruthfulLocalRead { key: key.to_string(), applied, seen });
        }
    }
    Ok(by_key.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_raft::Command;

    fn ev(client: usize, call: Call, answer: Answer, invoked_us: u64, returned_us: Option<u64>) -> CatalogEvent {
        CatalogEvent { client, node: 1, key: "stream:s0".into(), call, answer, at_ms: 0, invoked_us, returned_us }
    }

    fn put() -> Call {
        Call::Write(Command::PutStream { name: "s0".into(), ladder: None, token_sha256: None, create_only: true })
    }

    fn done_put() -> Answer {
        let mut c = Catalog::default();
        let Call::Write(cmd) = put() else { unreachable!() };
        Answer::Outcome(outcome(&c.apply(&Proposal { at_ms: 0, command: cmd })))
    }

    fn absent() -> Answer {
        Answer::Value(project(&Catalog::default(), "stream:s0"))
    }

    #[test]
    fn the_state_machine_is_the_model() {
        let initial = Catalog::default();
        // Created, then read: it must be there.
        let ok = [ev(0, put(), done_put(), 0, Some(1)), ev(1, Call::Read, absent(), 2, Some(3))];
        assert!(!check_key(&initial, "stream:s0", &ok), "a read after an acknowledged create that misses it");
        // A read overlapping the create may miss it.
        let overlap = [ev(0, put(), done_put(), 0, Some(10)), ev(1, Call::Read, absent(), 2, Some(3))];
        assert!(check_key(&initial, "stream:s0", &overlap));
        // Two creates that both report success: one of them should have been refused.
        let both = [ev(0, put(), done_put(), 0, Some(10)), ev(1, put(), done_put(), 1, Some(9))];
        assert!(!check_key(&initial, "stream:s0", &both));
        // An unanswered create may have happened.
        let maybe = [ev(0, put(), Answer::Unknown, 0, None), ev(1, put(), done_put(), 5, Some(6))];
        assert!(check_key(&initial, "stream:s0", &maybe));
    }

    #[test]
    fn local_reads_at_one_index_must_agree() {
        let value = |v: bool| serde_json::Value::Bool(v);
        let obs = |node, v| LocalObservation { node, applied: Some(7), key: "token:x".into(), value: value(v) };
        assert!(check(&Catalog::default(), &[], &[obs(1, true), obs(2, true)]).is_ok());
        assert!(matches!(
            check(&Catalog::default(), &[], &[obs(1, true), obs(2, false)]),
            Err(Violation::UntruthfulLocalRead { .. })
        ));
    }
}
