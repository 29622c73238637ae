//! The transcode worker on every node: claims the jobs it can do (with a lease), does them
//! off the async threads, renews the lease with its checkpoint while it works, and records
//! the outcome. A job whose lease was taken over is stopped at its next segment: its late
//! writes would be refused anyway (fenced by epoch).
//!
//! This version does `source` jobs (the source repackaged, no re-encode) on the node that
//! holds the source.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_raft::{Command, JobLease, JobRecord, Outcome};
use tokio::sync::watch;
use tracing::Instrument;

use super::package::{package_source, plan};
use super::source_path;
use crate::cluster::ClusterService;

/// A lease lasts this long; it is renewed at a third of it.
const LEASE_MS: i64 = 30_000;

/// What a worker needs.
#[derive(Clone)]
pub struct VodWorker {
    pub cluster: ClusterService,
    /// Where sources are and renditions go.
    pub uploads: super::UploadConfig,
    /// Jobs run at once on this node.
    pub slots: usize,
}

/// The file of segment `k` as the holder of `epoch` writes it: a worker fenced off after
/// writing it never has it read (readers take [`tessera_raft::JobRecord::epoch_of`]'s).
pub fn segment_file(k: u32, epoch: u64) -> String {
    format!("seg-{k}.e{epoch}.m4s")
}

/// Where a rendition's files go.
pub fn rendition_dir(output: &std::path::Path, asset: &str, rendition: &str) -> PathBuf {
    output.join(asset).join(rendition)
}

impl VodWorker {
    /// Looks for work every two seconds until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let busy = Arc::new(AtomicU32::new(0));
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => return,
            }
            while (busy.load(Ordering::SeqCst) as usize) < self.slots {
                let Some(job) = self.next_job() else { break };
                let claim = Command::ClaimJob {
                    asset: job.asset.clone(),
                    rendition: job.rendition.clone(),
                    node: self.cluster.identity.id,
                    lease_ms: LEASE_MS,
                };
                let lease = match self.cluster.propose(claim).await {
                    Ok(Outcome::JobLease(l)) => l,
                    _ => break, // taken by another worker meanwhile, or no quorum: next round
                };
                busy.fetch_add(1, Ordering::SeqCst);
                let (worker, busy) = (self.clone(), busy.clone());
                tokio::spawn(async move {
                    worker.work(job, lease).await;
                    busy.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }

    /// A job this node can claim now: a source job whose source is here.
    fn next_job(&self) -> Option<JobRecord> {
        let (me, now) = (self.cluster.identity.id, crate::store::now_ms());
        self.cluster
            .catalog
            .read_local(|c| {
                c.jobs
                    .values()
                    .filter(|j| j.spec == "source" && j.claimable(now))
                    .find(|j| c.assets.get(&j.asset).is_some_and(|a| a.source.node == me))
                    .cloned()
            })
            .value
    }

    async fn work(&self, job: JobRecord, lease: JobLease) {
        let span = tracing::info_span!("vod_job", asset = %job.asset, rendition = %job.rendition, epoch = lease.epoch);
        self.work_in_span(job, lease).instrument(span).await
    }

    async fn work_in_span(&self, job: JobRecord, lease: JobLease) {
        let (asset, rendition) = (job.asset.clone(), job.rendition.clone());
        tracing::info!(from_segment = job.segments_done, "job started");
        let done = Arc::new(AtomicU32::new(job.segments_done));
        let held = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let renewer = {
            let (cluster, done, held) = (self.cluster.clone(), done.clone(), held.clone());
            let (asset, rendition) = (asset.clone(), rendition.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 / 3)).await;
                    let renew = Command::RenewJob {
                        asset: asset.clone(),
                        rendition: rendition.clone(),
                        node: lease.node,
                        epoch: lease.epoch,
                        lease_ms: LEASE_MS,
                        segments_done: done.load(Ordering::SeqCst),
                    };
                    match cluster.propose(renew).await {
                        Ok(Outcome::JobLease(_)) => {}
                        Ok(Outcome::Rejected(r)) => {
                            tracing::warn!(%asset, %rendition, "lease lost: {r}");
                            held.store(false, Ordering::SeqCst);
                            return;
                        }
                        other => tracing::debug!(%asset, %rendition, ?other, "lease not renewed this time"),
                    }
                }
            })
        };
        let source = source_path(&self.uploads.sources, &asset);
        let out = rendition_dir(&self.uploads.output, &asset, &rendition);
        let from = job.segments_done;
        // Segments before `from` are an earlier claim's; this one's are named by its epoch.
        let mut made = job.clone();
        made.epochs.push((from, lease.epoch));
        let (done2, held2) = (done.clone(), held.clone());
        let result = tokio::task::spawn_blocking(move || {
            let plan = plan(&source)?;
            let file_of = |k: u32| segment_file(k, made.epoch_of(k).unwrap_or(lease.epoch));
            package_source(&source, &plan, &out, from, file_of, |i| {
                done2.store(i + 1, Ordering::SeqCst);
                held2.load(Ordering::SeqCst)
            })
        })
        .await;
        renewer.abort();
        let node = self.cluster.identity.id;
        let outcome = match result {
            Ok(Ok(manifest)) => {
                tracing::info!(segments = manifest.segments.len(), bandwidth = manifest.bandwidth, "job finished");
                Command::FinishJob { asset, rendition, node, epoch: lease.epoch }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "job failed");
                Command::FailJob { asset, rendition, node, epoch: lease.epoch, error: e.to_string() }
            }
            Err(e) => Command::FailJob { asset, rendition, node, epoch: lease.epoch, error: e.to_string() },
        };
        if let Err(e) = self.cluster.propose(outcome).await {
            tracing::warn!(error = %e, "the job's outcome was not recorded; its lease will lapse and it runs again");
        }
        // A source the asset does not keep goes once the asset is ready (as this node has
        // applied the outcome).
        let key = tessera_raft::job_key(&job.asset, &job.rendition);
        for _ in 0..40 {
            let applied =
                self.cluster.catalog.read_local(|c| c.jobs.get(&key).is_none_or(|j| j.lease != Some(lease))).value;
            if applied {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        super::reconcile(&self.cluster, &self.uploads).await;
        metrics::counter!("tessera_vod_jobs_total").increment(1);
    }
}
