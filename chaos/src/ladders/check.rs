//! The invariants of a ladder made across the cluster, held against what the origin
//! published into its rungs.

use std::collections::{BTreeMap, BTreeSet};

use super::{LadderLog, PARTS, RUNGS};

/// At most one encoder publishes each rung of each segment: every part of a (rung,
/// segment) comes from one worker generation, and no part twice.
pub fn one_encoder_per_segment(log: &LadderLog) -> Result<(), String> {
    let mut by: BTreeMap<(usize, u64), BTreeSet<u64>> = BTreeMap::new();
    let mut parts = BTreeSet::new();
    for p in &log.published {
        by.entry((p.rung, p.segment)).or_default().insert(p.generation);
        if !parts.insert((p.rung, p.segment, p.part)) {
            return Err(format!("rung {} segment {} part {} published twice", p.rung, p.segment, p.part));
        }
    }
    match by.iter().find(|(_, g)| g.len() > 1) {
        Some(((rung, segment), g)) => Err(format!("rung {rung} segment {segment} published by generations {g:?}")),
        None => Ok(()),
    }
}

/// Every part goes into the segment its rung is making: none after its segment closed,
/// none going back.
pub fn parts_in_order(log: &LadderLog) -> Result<(), String> {
    match log.misplaced.first() {
        Some(p) => Err(format!(
            "{} parts out of place, first: rung {} segment {} part {} from generation {} (node {})",
            log.misplaced.len(),
            p.rung,
            p.segment,
            p.part,
            p.generation,
            p.node
        )),
        None => Ok(()),
    }
}

/// A stale placement never gets a part in: along each rung, the placement epoch of what
/// is published never goes back.
pub fn epochs_only_grow(log: &LadderLog) -> Result<(), String> {
    for rung in 0..RUNGS {
        let mut newest = (0u64, 0u64); // epoch, segment
        let mut published: Vec<_> = log.published.iter().filter(|p| p.rung == rung).collect();
        published.sort_by_key(|p| (p.segment, p.part));
        for p in published {
            if p.epoch < newest.0 {
                return Err(format!(
                    "rung {rung} segment {} came from placement {} (node {}) after segment {} came from placement {}",
                    p.segment, p.epoch, p.node, newest.1, newest.0
                ));
            }
            newest = (p.epoch, p.segment);
        }
    }
    Ok(())
}

/// Every rung converges: each segment from the rung's first to the leader's last (but one)
/// is listed once, as media (closed, with all its parts) or as a gap, never both; and from
/// `healed` on, once the faults are over, every segment is media.
pub fn every_rung_converges(log: &LadderLog, healed: u64) -> Result<(), String> {
    let mut gaps: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    for g in &log.gaps {
        *gaps.entry(*g).or_default() += 1;
    }
    if let Some((g, n)) = gaps.iter().find(|(_, n)| **n > 1) {
        return Err(format!("rung {} segment {} listed as a gap {n} times", g.0, g.1));
    }
    let mut parts: BTreeMap<(usize, u64), u32> = BTreeMap::new();
    for p in &log.published {
        *parts.entry((p.rung, p.segment)).or_default() += 1;
    }
    let closed: BTreeSet<(usize, u64)> = log.closed.iter().copied().collect();
    if let Some(k) = closed.iter().find(|k| parts.get(k) != Some(&PARTS)) {
        return Err(format!("rung {} segment {} closed with {:?} parts of {PARTS}", k.0, k.1, parts.get(k)));
    }
    let whole = |k: &(usize, u64)| closed.contains(k);
    // The newest segments close after the run stopped.
    let last = log.completed.saturating_sub(2);
    if healed > last {
        return Err(format!("the ladder ran too short after the faults: {} segments", log.completed));
    }
    for rung in 0..RUNGS {
        let first = parts.keys().chain(gaps.keys()).filter(|k| k.0 == rung).map(|k| k.1).min();
        let Some(first) = first else { return Err(format!("rung {rung} has nothing")) };
        for segment in first..=last {
            let k = (rung, segment);
            match (whole(&k), gaps.contains_key(&k)) {
                (true, true) => return Err(format!("rung {rung} segment {segment} is both media and a gap")),
                (false, false) if segment < healed => {
                    return Err(format!("rung {rung} segment {segment} is neither media nor listed as a gap"))
                }
                (false, _) if segment >= healed => {
                    return Err(format!(
                        "rung {rung} segment {segment} is not media after the faults were over (from {healed})"
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}
