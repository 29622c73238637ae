//! Video on demand: uploads ([`uploads`], tus 1.0), the checks a source passes before it
//! becomes an asset ([`source`]), and the upkeep of stored sources.
//!
//! A source lives on the node that received it, `DATA_DIR/sources/ID/source`, written
//! durably before the upload is acknowledged; the catalog says which node holds it.

mod complete;
pub mod package;
pub mod serve;
pub mod source;
pub mod tus_client;
pub mod uploads;
pub mod worker;

use std::path::Path;
use std::time::Duration;

pub use complete::source_path;
pub use uploads::{UploadConfig, UploadLocks};

use crate::cluster::ClusterService;

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

/// Every minute, applies the catalog to this node's VOD files: a deleted asset's
/// renditions go, a source goes once its asset is ready if the asset does not keep it, and
/// a source no asset names goes after an hour.
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
    if let Ok(mut dir) = tokio::fs::read_dir(&uploads.output).await {
        while let Ok(Some(entry)) = dir.next_entry().await {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !cluster.catalog.read_local(|c| c.assets.contains_key(&id)).value {
                match tokio::fs::remove_dir_all(entry.path()).await {
                    Ok(()) => tracing::info!(asset = %id, "renditions of a deleted asset removed"),
                    Err(e) => tracing::warn!(asset = %id, error = %e, "renditions could not be removed"),
                }
            }
        }
    }
    let Ok(mut dir) = tokio::fs::read_dir(&uploads.sources).await else { return };
    while let Ok(Some(entry)) = dir.next_entry().await {
        let id = entry.file_name().to_string_lossy().into_owned();
        let (known, done_with) = cluster
            .catalog
            .read_local(|c| {
                let a = c.assets.get(&id);
                (a.is_some(), a.is_some_and(|a| a.state == tessera_raft::AssetState::Ready && !a.keep_source))
            })
            .value;
        let old = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ORPHAN_AFTER);
        if done_with || (!known && old) {
            remove_source(&uploads.sources, &id).await;
        }
    }
}
