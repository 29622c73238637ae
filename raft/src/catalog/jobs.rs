//! Transcode jobs in the catalog: one per (asset, rendition), claimed by a worker on any
//! node with a lease, renewed while it works (with its checkpoint: the segments finished),
//! finished once, failed into a retry with backoff or, after [`MAX_ATTEMPTS`], into the
//! dead-letter state.
//!
//! Every claim takes a new epoch; renewals, completions and failures name the epoch they
//! hold, so a worker whose lease lapsed (killed, partitioned) is fenced off: its late
//! writes are refused, and a second worker never records a second output. A lapsed lease
//! counts as a failed attempt. Time is the proposal's (`Proposal::at_ms`), the same on
//! every node.

use serde::{Deserialize, Serialize};

use super::{AssetState, Catalog, Command, NodeId, Outcome, Rejection};
use crate::catalog::{AssetRejection, JobRejection, NodeRejection};

/// Attempts (failures and lapsed leases) before a job is dead.
pub const MAX_ATTEMPTS: u32 = 5;
/// Longest pause before a failed job is tried again.
pub(super) const MAX_BACKOFF_MS: i64 = 300_000;

/// Where a job stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    #[default]
    Pending,
    Leased,
    Done,
    /// Failed [`MAX_ATTEMPTS`] times: left for an operator.
    Dead,
}

/// A worker's hold on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobLease {
    pub node: NodeId,
    pub epoch: u64,
    pub until_ms: i64,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRecord {
    pub asset: String,
    pub rendition: String,
    /// What to make: a ladder rung (`720p:2500`), or `source` (the source repackaged).
    pub spec: String,
    pub state: JobState,
    pub lease: Option<JobLease>,
    pub last_epoch: u64,
    pub attempts: u32,
    /// A failed job is not claimed again before this.
    pub not_before_ms: i64,
    pub last_error: Option<String>,
    /// The checkpoint: segments finished (a resumed job starts after them), of the total.
    pub segments_done: u32,
    pub segments_total: u32,
    /// The node holding the finished output.
    pub output_node: Option<NodeId>,
    pub updated_ms: i64,
    /// Which epoch made which segments: `(first segment, epoch)` for every claim, in order.
    /// A worker writes segment `k` under its epoch's name; readers take the name of the
    /// epoch that claimed `k` last, so a fenced worker's late output is never read.
    #[serde(default)]
    pub epochs: Vec<(u32, u64)>,
}

/// The spec of a recording's renditions (made by the live pipeline, never claimed).
pub const RECORDING_SPEC: &str = "recording";

/// One rendition of a finished recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordedRendition {
    pub rendition: String,
    /// `(first segment, init segment number)` wherever the init segment changes.
    pub epochs: Vec<(u32, u64)>,
    pub segments: u32,
}

/// A job's key in [`Catalog::jobs`]: `ASSET/RENDITION`.
pub fn job_key(asset: &str, rendition: &str) -> String {
    format!("{asset}/{rendition}")
}

fn backoff_ms(attempts: u32) -> i64 {
    (1000i64 << attempts.min(16)).min(MAX_BACKOFF_MS)
}

impl JobRecord {
    /// A failed attempt: a retry after a backoff, or dead.
    fn failed(&mut self, now: i64, error: String) {
        self.attempts += 1;
        self.lease = None;
        self.last_error = Some(error);
        self.updated_ms = now;
        if self.attempts >= MAX_ATTEMPTS {
            self.state = JobState::Dead;
        } else {
            self.state = JobState::Pending;
            self.not_before_ms = now + backoff_ms(self.attempts);
        }
    }

    /// The epoch whose output segment `k` is: the last claim that started at or before it.
    pub fn epoch_of(&self, segment: u32) -> Option<u64> {
        self.epochs.iter().rev().find(|(from, _)| *from <= segment).map(|(_, e)| *e)
    }

    /// Whether `node` may claim it at `now`.
    pub fn claimable(&self, now: i64) -> bool {
        match self.state {
            JobState::Pending => now >= self.not_before_ms,
            JobState::Leased => self.lease.is_some_and(|l| now > l.until_ms),
            JobState::Done | JobState::Dead => false,
        }
    }
}

impl Catalog {
    /// An asset's jobs.
    pub fn jobs_of<'c>(&'c self, asset: &'c str) -> impl Iterator<Item = &'c JobRecord> + 'c {
        let from = format!("{asset}/");
        self.jobs.range(from.clone()..).take_while(move |(k, _)| k.starts_with(&from)).map(|(_, j)| j)
    }

    /// Segments made and segments to make over every job of `asset` (a finished job counts
    /// whole).
    pub fn asset_progress(&self, asset: &str) -> (u64, u64) {
        self.jobs_of(asset).fold((0, 0), |(d, t), j| {
            let made = if j.state == JobState::Done { j.segments_total } else { j.segments_done.min(j.segments_total) };
            (d + u64::from(made), t + u64::from(j.segments_total))
        })
    }

    /// The asset's state from its jobs: ready when all are done, failed when one is dead.
    fn settle_asset(&mut self, asset: &str) {
        let jobs: Vec<JobState> = self.jobs_of(asset).map(|j| j.state).collect();
        let Some(a) = self.assets.get_mut(asset) else { return };
        if a.state == AssetState::Recording && jobs.is_empty() {
            return;
        }
        a.state = if jobs.contains(&JobState::Dead) {
            AssetState::Failed
        } else if !jobs.is_empty() && jobs.iter().all(|s| *s == JobState::Done) {
            AssetState::Ready
        } else if jobs.is_empty() {
            AssetState::Uploaded
        } else {
            AssetState::Transcoding
        };
    }

    /// The job a worker names, if it holds `epoch` of it.
    fn held(&mut self, asset: &str, rendition: &str, node: NodeId, epoch: u64) -> Result<&mut JobRecord, Rejection> {
        let key = job_key(asset, rendition);
        let job = self.jobs.get_mut(&key).ok_or_else(|| Rejection::Job(JobRejection::NoSuchJob(key.clone())))?;
        match job.lease {
            Some(l) if l.node == node && l.epoch == epoch && job.state == JobState::Leased => Ok(job),
            _ => Err(Rejection::Job(JobRejection::StaleJobLease { job: key, node, epoch })),
        }
    }

    pub(super) fn apply_job(&mut self, now: i64, command: &Command) -> Result<Outcome, Rejection> {
        match command {
            Command::FinishRecording { asset, duration_ms, renditions } => {
                let a = self
                    .assets
                    .get_mut(asset)
                    .ok_or_else(|| Rejection::Asset(AssetRejection::NoSuchAsset(asset.clone())))?;
                if a.state != AssetState::Recording {
                    return Err(Rejection::Asset(AssetRejection::InvalidAsset(format!(
                        "{asset} is not being recorded"
                    ))));
                }
                if renditions.iter().any(|r| !super::valid_name(&r.rendition) || r.epochs.is_empty()) {
                    return Err(Rejection::Asset(AssetRejection::InvalidAsset(format!(
                        "a rendition of recording {asset}"
                    ))));
                }
                a.source.duration_ms = *duration_ms;
                let node = a.source.node;
                for r in renditions {
                    let job = JobRecord {
                        asset: asset.clone(),
                        rendition: r.rendition.clone(),
                        spec: RECORDING_SPEC.to_string(),
                        state: JobState::Done,
                        lease: None,
                        last_epoch: r.epochs.iter().map(|(_, e)| *e).max().unwrap_or(0),
                        attempts: 0,
                        not_before_ms: 0,
                        last_error: None,
                        segments_done: r.segments,
                        segments_total: r.segments,
                        output_node: Some(node),
                        updated_ms: now,
                        epochs: r.epochs.clone(),
                    };
                    self.jobs.insert(job_key(asset, &r.rendition), job);
                }
                if renditions.is_empty() {
                    // Nothing was recorded: the asset has nothing to play.
                    if let Some(a) = self.assets.get_mut(asset) {
                        a.state = AssetState::Failed;
                    }
                } else {
                    self.settle_asset(asset);
                }
                Ok(Outcome::Done)
            }
            Command::AddJobs { asset, jobs, segments_total } => {
                if !self.assets.contains_key(asset) {
                    return Err(Rejection::Asset(AssetRejection::NoSuchAsset(asset.clone())));
                }
                for (rendition, spec) in jobs {
                    if !super::valid_name(rendition) || spec.is_empty() || spec.len() > 128 {
                        return Err(Rejection::Asset(AssetRejection::InvalidAsset(format!(
                            "job {rendition:?} ({spec:?})"
                        ))));
                    }
                }
                for (rendition, spec) in jobs {
                    self.jobs.entry(job_key(asset, rendition)).or_insert_with(|| JobRecord {
                        asset: asset.clone(),
                        rendition: rendition.clone(),
                        spec: spec.clone(),
                        state: JobState::Pending,
                        lease: None,
                        last_epoch: 0,
                        attempts: 0,
                        not_before_ms: 0,
                        last_error: None,
                        segments_done: 0,
                        segments_total: *segments_total,
                        output_node: None,
                        updated_ms: now,
                        epochs: Vec::new(),
                    });
                }
                self.settle_asset(asset);
                Ok(Outcome::Done)
            }
            Command::ClaimJob { asset, rendition, node, lease_ms } => {
                if !self.nodes.contains_key(node) {
                    return Err(Rejection::Node(NodeRejection::NoSuchNode(*node)));
                }
                let key = job_key(asset, rendition);
                let job =
                    self.jobs.get_mut(&key).ok_or_else(|| Rejection::Job(JobRejection::NoSuchJob(key.clone())))?;
                // A lease that lapsed is a failed attempt of its holder.
                if job.state == JobState::Leased && job.lease.is_some_and(|l| now > l.until_ms) {
                    let holder = job.lease.map(|l| l.node).unwrap_or_default();
                    job.failed(now, format!("node {holder}'s lease lapsed"));
                    job.not_before_ms = now; // taken over at once
                }
                if !job.claimable(now) {
                    let out = Err(Rejection::Job(JobRejection::JobNotClaimable { job: key, state: job.state }));
                    self.settle_asset(asset);
                    return out;
                }
                job.last_epoch += 1;
                let lease = JobLease { node: *node, epoch: job.last_epoch, until_ms: now + (*lease_ms).max(1) };
                job.lease = Some(lease);
                job.state = JobState::Leased;
                job.updated_ms = now;
                job.epochs.push((job.segments_done, lease.epoch));
                self.settle_asset(asset);
                Ok(Outcome::JobLease(lease))
            }
            Command::RenewJob { asset, rendition, node, epoch, lease_ms, segments_done } => {
                let job = self.held(asset, rendition, *node, *epoch)?;
                let lease = JobLease { until_ms: now + (*lease_ms).max(1), ..job.lease.expect("held") };
                job.lease = Some(lease);
                job.segments_done = (*segments_done).min(job.segments_total.max(*segments_done));
                job.updated_ms = now;
                Ok(Outcome::JobLease(lease))
            }
            Command::FinishJob { asset, rendition, node, epoch } => {
                let job = self.held(asset, rendition, *node, *epoch)?;
                job.state = JobState::Done;
                job.lease = None;
                job.output_node = Some(*node);
                job.segments_done = job.segments_total;
                job.updated_ms = now;
                self.settle_asset(asset);
                Ok(Outcome::Done)
            }
            Command::FailJob { asset, rendition, node, epoch, error } => {
                let job = self.held(asset, rendition, *node, *epoch)?;
                job.failed(now, error.chars().take(512).collect());
                self.settle_asset(asset);
                Ok(Outcome::Done)
            }
            Command::RetryJob { asset, rendition } => {
                let key = job_key(asset, rendition);
                let job =
                    self.jobs.get_mut(&key).ok_or_else(|| Rejection::Job(JobRejection::NoSuchJob(key.clone())))?;
                if job.state != JobState::Dead {
                    return Err(Rejection::Job(JobRejection::JobNotClaimable { job: key, state: job.state }));
                }
                job.state = JobState::Pending;
                job.attempts = 0;
                job.not_before_ms = now;
                job.updated_ms = now;
                self.settle_asset(asset);
                Ok(Outcome::Done)
            }
            _ => unreachable!("not a job command"),
        }
    }
}

#[cfg(test)]
mod tests;
