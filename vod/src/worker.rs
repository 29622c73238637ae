//! The transcode worker on every node: claims the jobs it can do (with a lease), does them
//! off the async threads, renews the lease with its checkpoint (every two seconds while segments finish), and records
//! the outcome. A job whose lease was taken over is stopped at its next segment: its late
//! writes would never be read anyway (fenced by epoch).
//!
//! A node can do a job when it can read the asset's source: its own copy, or the archive's
//! (fetched to `DATA_DIR/vod-scratch/ASSET/` and checked against the catalog's SHA-256).
//! Output goes to the archive ([`super::archive`]), so a job resumed elsewhere continues
//! the same files and every node serves the result.
//!
//! **Spreading by capacity.** Each node runs at most `slots` jobs. A node claims a job it
//! has seen waiting for `busy / slots × CLAIM_PATIENCE`: an idle node claims at once, a
//! node half full leaves the job to idle nodes for a while, a full one never claims.
//! Larger rungs are claimed first (they take longest), and a `source` job goes to the node
//! holding the source when it is free.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_raft::{Command, JobLease, JobRecord, Outcome};
use tessera_transcode::{plan as plan_ladder, LadderSpec};
use tokio::sync::watch;
use tracing::Instrument;

use super::package::{names, package_source, plan, ArchiveFiles, JobError, RenditionManifest, RenditionWriter};
use super::source_path;
use super::transcode::{transcode_rung, VodEncoding};
use tessera_cluster::ClusterService;

/// A lease lasts this long; it is renewed at a third of it.
const LEASE_MS: i64 = 30_000;
/// Finished segments are recorded (the checkpoint) at most this often.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
/// How long a full node leaves a waiting job to others (see the module's doc).
const CLAIM_PATIENCE: Duration = Duration::from_secs(4);

/// What a worker needs.
#[derive(Clone)]
pub struct VodWorker {
    pub cluster: ClusterService,
    /// Where sources are and renditions go.
    pub uploads: super::UploadConfig,
    /// Jobs run at once on this node.
    pub slots: usize,
    pub encoding: VodEncoding,
}

/// The spec of the `source` rendition's job.
pub const SOURCE_SPEC: &str = "source";

impl VodWorker {
    /// Looks for work every second until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let busy = Arc::new(AtomicU32::new(0));
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let mut readable: HashMap<String, Instant> = HashMap::new();
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => return,
            }
            let waiting = self.claimable();
            seen.retain(|k, _| waiting.iter().any(|j| tessera_raft::job_key(&j.asset, &j.rendition) == *k));
            readable.retain(|a, _| waiting.iter().any(|j| j.asset == *a));
            for job in waiting {
                let running = busy.load(Ordering::SeqCst) as usize;
                if running >= self.slots {
                    break;
                }
                let key = tessera_raft::job_key(&job.asset, &job.rendition);
                let first_seen = *seen.entry(key).or_insert_with(Instant::now);
                let patience = CLAIM_PATIENCE.mul_f64(running as f64 / self.slots.max(1) as f64);
                if first_seen.elapsed() < patience || !self.can_read_source(&job.asset, &mut readable).await {
                    continue;
                }
                let claim = Command::ClaimJob {
                    asset: job.asset.clone(),
                    rendition: job.rendition.clone(),
                    node: self.cluster.identity.id,
                    lease_ms: LEASE_MS,
                };
                let lease = match self.cluster.propose(claim).await {
                    Ok(Outcome::JobLease(l)) => l,
                    _ => continue, // taken by another worker meanwhile, or no quorum: next round
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

    /// Jobs that can be claimed now, in the order to take them: `source` jobs of sources
    /// held here first, then by bitrate, largest first.
    fn claimable(&self) -> Vec<JobRecord> {
        let (me, now) = (self.cluster.identity.id, tessera_ingest::timestamp::unix_ms());
        let mut jobs = self
            .cluster
            .catalog
            .read_local(|c| {
                // A draining node takes no new jobs; those it runs finish.
                if c.is_draining(me) {
                    return Vec::new();
                }
                c.jobs
                    .values()
                    .filter(|j| j.claimable(now))
                    .filter_map(|j| c.assets.get(&j.asset).map(|a| (j.clone(), a.source.node == me)))
                    .collect::<Vec<_>>()
            })
            .value;
        let weight = |j: &JobRecord, here: bool| match j.spec.as_str() {
            SOURCE_SPEC if here => u64::MAX,
            SOURCE_SPEC => 0,
            spec => spec.split(':').nth(1).and_then(|k| k.parse().ok()).unwrap_or(1),
        };
        jobs.sort_by_key(|(j, here)| std::cmp::Reverse(weight(j, *here)));
        jobs.into_iter().map(|(j, _)| j).collect()
    }

    /// Whether this node can read `asset`'s source: its own copy, or the archive's (a yes is
    /// remembered for a minute, so a waiting job does not ask the archive every second).
    async fn can_read_source(&self, asset: &str, readable: &mut HashMap<String, Instant>) -> bool {
        if readable.get(asset).is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
            return true;
        }
        let yes = tokio::fs::metadata(source_path(&self.uploads.sources, asset)).await.is_ok()
            || self.uploads.archive.has_source(asset).await;
        if yes {
            readable.insert(asset.to_string(), Instant::now());
        }
        yes
    }

    /// The source's path on this node: its own copy, else one fetched from the archive.
    async fn local_source(&self, asset: &str) -> Result<PathBuf, JobError> {
        let own = source_path(&self.uploads.sources, asset);
        if tokio::fs::metadata(&own).await.is_ok() {
            return Ok(own);
        }
        let fetched = self.uploads.scratch.join(asset).join("source");
        let _one_at_a_time = self.uploads.fetches.lock().await;
        if tokio::fs::metadata(&fetched).await.is_ok() {
            return Ok(fetched);
        }
        let sha = self.cluster.catalog.read_local(|c| c.assets.get(asset).map(|a| a.source.sha256.clone())).value;
        let sha = sha.ok_or_else(|| JobError::Codec(format!("asset {asset} is not in the catalog")))?;
        let started = Instant::now();
        self.uploads.archive.fetch_source(asset, &fetched, &sha).await?;
        tracing::info!(%asset, ms = started.elapsed().as_millis() as u64, "source fetched from the archive");
        Ok(fetched)
    }

    async fn work(&self, job: JobRecord, lease: JobLease) {
        let span = tracing::info_span!("vod_job", asset = %job.asset, rendition = %job.rendition, epoch = lease.epoch);
        self.work_in_span(job, lease).instrument(span).await
    }

    async fn work_in_span(&self, job: JobRecord, lease: JobLease) {
        let (asset, rendition) = (job.asset.clone(), job.rendition.clone());
        tracing::info!(from_segment = job.segments_done, spec = %job.spec, "job started");
        let started = Instant::now();
        let done = Arc::new(AtomicU32::new(job.segments_done));
        let held = Arc::new(AtomicBool::new(true));
        let renewer = tokio::spawn(renew(self.cluster.clone(), job.clone(), lease, done.clone(), held.clone()));
        let result = match self.local_source(&asset).await {
            Ok(source) => {
                let (worker, job, done, held) = (self.clone(), job.clone(), done.clone(), held.clone());
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || worker.make(&source, &job, lease, runtime, &done, &held))
                    .await
                    .unwrap_or_else(|e| Err(JobError::Codec(format!("the job's thread failed: {e}"))))
            }
            Err(e) => Err(e),
        };
        renewer.abort();
        let node = self.cluster.identity.id;
        let outcome = match result {
            Ok(manifest) => {
                // Of the segments this claim made.
                let seconds: f64 = manifest.segments.iter().skip(job.segments_done as usize).map(|s| s.0).sum();
                let wall = started.elapsed().as_secs_f64();
                tracing::info!(
                    segments = manifest.segments.len(),
                    bandwidth = manifest.bandwidth,
                    speed = format!("{:.2}x", seconds / wall.max(0.001)),
                    "job finished"
                );
                metrics::counter!("tessera_vod_source_seconds_total").increment(seconds as u64);
                Command::FinishJob { asset, rendition, node, epoch: lease.epoch }
            }
            Err(JobError::Stopped) => {
                tracing::warn!("job stopped: its lease was taken over");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "job failed");
                metrics::counter!("tessera_vod_job_failures_total").increment(1);
                Command::FailJob { asset, rendition, node, epoch: lease.epoch, error: e.to_string() }
            }
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

    /// Makes the rendition (blocking): the source repackaged, or a rung transcoded.
    fn make(
        &self,
        source: &Path,
        job: &JobRecord,
        lease: JobLease,
        runtime: tokio::runtime::Handle,
        done: &AtomicU32,
        held: &AtomicBool,
    ) -> Result<RenditionManifest, JobError> {
        let plan = plan(source)?;
        let from = job.segments_done;
        // Segments before `from` are earlier claims'; this one's are named by its epoch.
        let mut made = job.clone();
        made.epochs.push((from, lease.epoch));
        let mut files = ArchiveFiles {
            archive: self.uploads.archive.clone(),
            asset: job.asset.clone(),
            rendition: job.rendition.clone(),
            runtime,
        };
        let out =
            RenditionWriter::new(&mut files, &plan, from, lease.epoch, |k| made.epoch_of(k).unwrap_or(lease.epoch));
        let segment_done = |i: u32| {
            done.fetch_max(i + 1, Ordering::SeqCst);
            held.load(Ordering::SeqCst)
        };
        if job.spec == SOURCE_SPEC {
            return package_source(source, out, segment_done);
        }
        let ladder: LadderSpec = job.spec.parse().map_err(|_| JobError::Rung(job.spec.clone()))?;
        let video = plan.tracks.iter().find_map(|t| t.codec.dimensions()).ok_or(super::source::SourceError::NoVideo)?;
        let rung = plan_ladder(&ladder, video.0, video.1).into_iter().find_map(|r| r.encode.map(|t| (r.name, t)));
        let (name, target) = rung.ok_or_else(|| JobError::Rung(job.spec.clone()))?;
        transcode_rung(source, &name, &target, &self.encoding, out, from, segment_done)
    }
}

/// Renews a job's lease until aborted or the lease is lost (then `held` turns false and
/// the job stops at its next segment): with its checkpoint at most every
/// [`CHECKPOINT_EVERY`] while segments are being finished, and at least every third of
/// the lease.
async fn renew(cluster: ClusterService, job: JobRecord, lease: JobLease, done: Arc<AtomicU32>, held: Arc<AtomicBool>) {
    let (mut recorded, mut renewed) = (job.segments_done, Instant::now());
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let now_done = done.load(Ordering::SeqCst);
        if now_done == recorded && renewed.elapsed() < Duration::from_millis(LEASE_MS as u64 / 3) {
            continue;
        }
        let renew = Command::RenewJob {
            asset: job.asset.clone(),
            rendition: job.rendition.clone(),
            node: lease.node,
            epoch: lease.epoch,
            lease_ms: LEASE_MS,
            segments_done: now_done,
        };
        match cluster.propose(renew).await {
            Ok(Outcome::JobLease(_)) => (recorded, renewed) = (now_done, Instant::now()),
            Ok(Outcome::Rejected(r)) => {
                tracing::warn!(asset = %job.asset, rendition = %job.rendition, "lease lost: {r}");
                held.store(false, Ordering::SeqCst);
                return;
            }
            other => {
                tracing::debug!(asset = %job.asset, rendition = %job.rendition, ?other, "lease not renewed this time")
            }
        }
    }
}

/// The jobs of an asset whose source is `width` x `height`: one per rendition the ladder
/// plans for it (`src` for the source repackaged, else the rung's name and spec).
pub fn ladder_jobs(ladder: &LadderSpec, (width, height): (u32, u32)) -> Vec<(String, String)> {
    plan_ladder(ladder, width, height)
        .into_iter()
        .filter_map(|r| match r.encode {
            None => Some(("src".to_string(), SOURCE_SPEC.to_string())),
            Some(_) => ladder.0.iter().find(|s| s.name() == r.name).map(|s| (r.name.clone(), s.to_string())),
        })
        .collect()
}

/// The stored name of segment `k` of a finished job, and of the init segment it needs.
pub fn stored_names(job: &JobRecord, k: u32) -> Option<(String, String)> {
    let epoch = job.epoch_of(k)?;
    Some((names::segment(k, epoch), names::init(epoch)))
}

/// The stored name of a finished job's manifest (written by the claim that finished it).
pub fn manifest_name(job: &JobRecord) -> Option<String> {
    job.epochs.last().map(|(_, e)| names::manifest(*e))
}
