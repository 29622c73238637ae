//! The invariants of transcode jobs, held against the final job records and every write.

use std::collections::BTreeMap;

use tessera_raft::{JobRecord, JobState};

use super::Write;

/// Every job finished.
pub fn all_done(jobs: &[JobRecord]) -> Result<(), String> {
    match jobs.iter().find(|j| j.state != JobState::Done) {
        Some(j) => Err(format!(
            "job {}/{} ended {:?} (attempts {}, {:?})",
            j.asset, j.rendition, j.state, j.attempts, j.last_error
        )),
        None if jobs.is_empty() => Err("no jobs".into()),
        None => Ok(()),
    }
}

/// Every segment of every job is read from exactly one write: the one of the epoch the
/// catalog names for it, made by the node that held that epoch.
pub fn exactly_once(jobs: &[JobRecord], writes: &[Write]) -> Result<(), String> {
    let mut by: BTreeMap<(String, u32, u64), Vec<&Write>> = BTreeMap::new();
    for w in writes {
        by.entry((w.job.clone(), w.segment, w.epoch)).or_default().push(w);
    }
    for j in jobs {
        let key = tessera_raft::job_key(&j.asset, &j.rendition);
        for k in 0..j.segments_total {
            let epoch = j.epoch_of(k).ok_or_else(|| format!("{key}: no epoch made segment {k}"))?;
            match by.get(&(key.clone(), k, epoch)).map(Vec::as_slice) {
                Some([_]) => {}
                Some(many) => return Err(format!("{key}: segment {k} written {} times by epoch {epoch}", many.len())),
                None => return Err(format!("{key}: segment {k} is read from epoch {epoch}, which never wrote it")),
            }
        }
    }
    Ok(())
}

/// Writes no reader will ever take: a fenced (or killed) worker's output past its
/// successor's starting point.
pub fn fenced_writes<'w>(jobs: &[JobRecord], writes: &'w [Write]) -> Vec<&'w Write> {
    writes
        .iter()
        .filter(|w| {
            jobs.iter()
                .find(|j| tessera_raft::job_key(&j.asset, &j.rendition) == w.job)
                .is_some_and(|j| j.epoch_of(w.segment) != Some(w.epoch))
        })
        .collect()
}
