//! Video on demand: uploads ([`uploads`], tus 1.0, and [`tus_client`], the command line's
//! side of it), the checks a source passes before it becomes an asset ([`source`]), the
//! ladder as jobs any node takes ([`worker`], [`transcode`]), packaging ([`package`]),
//! recordings of live streams ([`recording`]), playback ([`serve`]), and the upkeep of
//! stored files.
//!
//! # Contract
//! - A source lives on the node that received it, `DATA_DIR/sources/ID/source`, written
//!   durably (each chunk `fsync`ed) before the upload is acknowledged; the catalog says
//!   which node holds it. That node then puts it in the archive ([`archive`]), where workers
//!   on every node find it and write the renditions that every node serves.
//! - Every write a job makes is fenced by its lease's epoch: a worker that lost its lease
//!   is never read. Jobs run on blocking threads and in the codec worker process; handlers
//!   and the live path never wait for them.
//! - The recorder hears of a live stream's finished files without blocking the store
//!   (a bounded queue); a full queue drops a file, logged and counted.

pub mod archive;
mod assets;
mod complete;
pub mod package;
pub mod recording;
mod routes;
pub mod serve;
pub mod source;
pub mod transcode;
pub mod tus_client;
pub mod tus_headers;
pub mod uploads;
pub mod worker;

use std::path::Path;
use std::time::Duration;

pub use complete::source_path;
pub use routes::{routes, VodApi, VodRoutes, VodState};
pub use uploads::{UploadConfig, UploadLocks};

use tessera_raft::{AssetState, JobState};

use tessera_cluster::ClusterService;

/// The SHA-256 of a file (hex), read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        context.update(&buf[..n]);
    }
    Ok(context.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes asset `id`'s stored source.
pub async fn remove_source(sources: &Path, id: &str) {
    let dir = sources.join(id);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => tracing::info!(asset = %id, "source removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(asset = %id, path = %dir.display(), error = %e, "a source could not be removed"),
    }
}

/// A source stored this long without an asset in the catalog is an upload whose
/// completion failed for good: it is removed.
const ORPHAN_AFTER: Duration = Duration::from_secs(3600);

/// How often [`sweep`] looks.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Every minute, applies the catalog to this node's VOD files: a source this node holds is
/// shared through the archive, a source goes once its asset is ready if the asset does not
/// keep it, a source no asset names goes after an hour, and so do a deleted asset's
/// archived files.
pub async fn sweep(cluster: ClusterService, uploads: UploadConfig, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        reconcile(&cluster, &uploads).await;
    }
}

/// One pass of [`sweep`]; a worker runs one when a job finishes.
pub async fn reconcile(cluster: &ClusterService, uploads: &UploadConfig) {
    let me = cluster.identity.id;
    // Sources fetched for jobs: kept while the asset has work left.
    if let Ok(mut dir) = tokio::fs::read_dir(&uploads.scratch).await {
        while let Ok(Some(entry)) = dir.next_entry().await {
            let id = entry.file_name().to_string_lossy().into_owned();
            let working = cluster
                .catalog
                .read_local(|c| c.jobs_of(&id).any(|j| matches!(j.state, JobState::Pending | JobState::Leased)))
                .value;
            if !working {
                let _ = tokio::fs::remove_dir_all(entry.path()).await;
            }
        }
    }
    // The archive: a deleted asset's files go (the node that deleted it removed them
    // already; this catches a failure there), once nothing of it was written for an hour,
    // so an asset this node has not heard of yet is never touched.
    match uploads.archive.assets().await {
        Ok(ids) => {
            for id in ids {
                if cluster.catalog.read_local(|c| c.assets.contains_key(&id)).value {
                    continue;
                }
                if uploads.archive.age(&id).await.ok().flatten().is_some_and(|age| age > ORPHAN_AFTER) {
                    match uploads.archive.delete_asset(&id).await {
                        Ok(n) => tracing::info!(asset = %id, files = n, "archived files of a deleted asset removed"),
                        Err(e) => tracing::warn!(asset = %id, error = %e, "archived files could not be removed"),
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "the archive's assets could not be listed"),
    }
    let Ok(mut dir) = tokio::fs::read_dir(&uploads.sources).await else { return };
    while let Ok(Some(entry)) = dir.next_entry().await {
        let id = entry.file_name().to_string_lossy().into_owned();
        let (known, done_with, holder) = cluster
            .catalog
            .read_local(|c| {
                let a = c.assets.get(&id);
                (
                    a.is_some(),
                    a.is_some_and(|a| a.state == AssetState::Ready && !a.keep_source),
                    a.is_some_and(|a| a.source.node == me),
                )
            })
            .value;
        let old = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ORPHAN_AFTER);
        if done_with {
            if let Err(e) = uploads.archive.delete_source(&id).await {
                tracing::warn!(asset = %id, error = %e, "the archived source could not be removed");
            }
        }
        if done_with || (!known && old) {
            remove_source(&uploads.sources, &id).await;
        } else if known && holder {
            share_source(uploads, &id).await;
        }
    }
}

/// Puts a source this node holds in the archive, so workers on other nodes can read it.
pub async fn share_source(uploads: &UploadConfig, id: &str) {
    if uploads.archive.has_source(id).await {
        return;
    }
    let started = std::time::Instant::now();
    match uploads.archive.put_source(id, &source_path(&uploads.sources, id)).await {
        Ok(()) => tracing::info!(asset = %id, ms = started.elapsed().as_millis() as u64, "source put in the archive"),
        Err(e) => {
            tracing::warn!(asset = %id, error = %e, "the source could not be put in the archive; retried in a minute")
        }
    }
}
