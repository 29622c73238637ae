//! The invariants of scheduled releases, held against what the viewers saw.

use std::collections::BTreeMap;

use tessera_raft::{NodeId, ReleaseRecord, ReleaseState};

use super::Sighting;

/// How much earlier than a moment a sighting may be dated and still be on time: the
/// viewer reads its clock just before it asks the gate.
const TOLERANCE_MS: i64 = 2;

fn newest<'a>(releases: &'a BTreeMap<u64, ReleaseRecord>, content: &str) -> &'a ReleaseRecord {
    releases.values().rev().find(|r| r.content == content).unwrap_or_else(|| panic!("no release of {content}"))
}

fn served<'a>(sightings: &'a [Sighting], content: &'a str) -> impl Iterator<Item = &'a Sighting> + 'a {
    sightings.iter().filter(move |s| s.served && s.content == content)
}

/// No node served `content` before its release time, and none served it at all unless the
/// release ended up committed open (a release cancelled, or never opened, was never seen).
pub fn never_early(
    sightings: &[Sighting],
    releases: &BTreeMap<u64, ReleaseRecord>,
    content: &str,
) -> Result<(), String> {
    let r = newest(releases, content);
    let first = served(sightings, content).min_by_key(|s| s.true_ms);
    match (first, r.state) {
        (None, _) => Ok(()),
        (Some(s), ReleaseState::Scheduled | ReleaseState::Cancelled) => Err(format!(
            "node {} served {content} at {} though release {} ended {:?}",
            s.node, s.true_ms, r.id, r.state
        )),
        (Some(s), _) if s.true_ms < r.at_ms - TOLERANCE_MS => {
            Err(format!("node {} served {content} {} ms before its release time", s.node, r.at_ms - s.true_ms))
        }
        (Some(_), _) => Ok(()),
    }
}

/// Every node served `content` at some point at or after `from_ms`.
pub fn served_everywhere(sightings: &[Sighting], nodes: &[NodeId], content: &str, from_ms: i64) -> Result<(), String> {
    for n in nodes {
        if !served(sightings, content).any(|s| s.node == *n && s.true_ms >= from_ms) {
            return Err(format!("node {n} never served {content} after {from_ms}"));
        }
    }
    Ok(())
}

/// `node` did not serve `content` between `from_ms` and `to_ms`.
pub fn dark(sightings: &[Sighting], node: NodeId, content: &str, from_ms: i64, to_ms: i64) -> Result<(), String> {
    match served(sightings, content).find(|s| s.node == node && (from_ms..to_ms).contains(&s.true_ms)) {
        Some(s) => Err(format!("node {node} served {content} at {}, inside {from_ms}..{to_ms}", s.true_ms)),
        None => Ok(()),
    }
}

/// When each node first served `content` (true time).
pub fn first_served(sightings: &[Sighting], content: &str) -> BTreeMap<NodeId, i64> {
    let mut first = BTreeMap::new();
    for s in served(sightings, content) {
        first.entry(s.node).and_modify(|t: &mut i64| *t = (*t).min(s.true_ms)).or_insert(s.true_ms);
    }
    first
}
