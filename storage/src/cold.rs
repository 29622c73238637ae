//! The cold tier: the archive, in an object store. A local folder by default; with the
//! `s3` feature, any S3-compatible store (`s3://BUCKET/PREFIX`, credentials and endpoint
//! from the usual `AWS_*` environment variables). Objects are checksummed like warm files
//! and verified on every read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use tessera_packager::MediaFile;
use tessera_raft::ArchiveExtent;

use super::{sealed, FileKey, TierError};

/// One cluster's archive (or one node's, with the local default).
#[derive(Clone)]
pub struct ColdStore {
    store: Arc<dyn ObjectStore>,
    label: String,
    /// The folder, when the archive is one on this machine.
    local_root: Option<std::path::PathBuf>,
}

impl ColdStore {
    /// The archive at `url`: `file:///PATH` or a plain path for a local folder, or
    /// `s3://BUCKET/PREFIX` (with the `s3` feature).
    pub fn open(url: &str) -> Result<ColdStore, TierError> {
        let mut local_root = None;
        let store: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("s3://") {
            s3(rest)?
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(dir).map_err(|source| TierError::Open { path: dir.into(), source })?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|source| TierError::Archive { location: dir.to_string(), source })?;
            local_root = Some(std::path::PathBuf::from(dir));
            Arc::new(local)
        };
        Ok(ColdStore { store, label: url.to_string(), local_root })
    }

    /// The object store itself, for other users of the archive (VOD assets).
    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Where the archive is, as configured.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The archive's folder, when it is one on this machine.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    pub async fn put(&self, key: &FileKey, payload: &[u8]) -> Result<(), TierError> {
        let sealed = sealed::seal(payload);
        self.store.put(&key.object_path(), PutPayload::from_bytes(sealed)).await.map_err(|e| self.failed(key, e))?;
        metrics::counter!("tessera_cold_writes_total").increment(1);
        Ok(())
    }

    /// A file's payload, if the archive holds an intact copy; a corrupt one is deleted.
    pub async fn get(&self, key: &FileKey) -> Result<Option<Bytes>, TierError> {
        let path = key.object_path();
        let body = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| self.failed(key, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failed(key, e)),
        };
        match sealed::open(body) {
            Ok(payload) => Ok(Some(payload)),
            Err(e) => {
                metrics::counter!("tessera_tier_corrupt_total", "tier" => "cold").increment(1);
                tracing::warn!(archive = %self.label, object = %path, error = %e, "corrupt archived copy discarded");
                let _ = self.store.delete(&path).await;
                Ok(None)
            }
        }
    }

    /// Deletes the objects that `keep` says have been kept long enough (given the stream);
    /// returns how many, and what remains of each stream.
    pub async fn sweep(
        &self,
        keep: impl Fn(&str) -> Duration,
    ) -> Result<(usize, HashMap<String, ArchiveExtent>), TierError> {
        let now = tessera_ingest::timestamp::unix_ms() / 1000;
        let mut listing = self.store.list(None);
        let (mut expired, mut kept) = (Vec::new(), HashMap::<String, ArchiveExtent>::new());
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| TierError::Archive { location: self.label.clone(), source })?;
            let parts: Vec<String> = meta.location.parts().map(|p| p.as_ref().to_string()).collect();
            let [stream, _rendition, file] = parts.as_slice() else { continue };
            let age = (now - meta.last_modified.timestamp()).max(0) as u64;
            if age > keep(stream).as_secs() {
                expired.push(meta.location);
                continue;
            }
            let msn = match MediaFile::parse(file).map(|r| r.file) {
                Some(MediaFile::Segment(msn)) => Some(msn),
                _ => None,
            };
            let e = kept.entry(stream.clone()).or_insert(ArchiveExtent {
                first_msn: u64::MAX,
                last_msn: 0,
                files: 0,
                bytes: 0,
            });
            e.files += 1;
            e.bytes += meta.size;
            if let Some(msn) = msn {
                e.first_msn = e.first_msn.min(msn);
                e.last_msn = e.last_msn.max(msn);
            }
        }
        for path in &expired {
            self.store
                .delete(path)
                .await
                .map_err(|source| TierError::Archive { location: path.to_string(), source })?;
        }
        kept.retain(|_, e| e.first_msn != u64::MAX);
        Ok((expired.len(), kept))
    }

    fn failed(&self, key: &FileKey, e: object_store::Error) -> TierError {
        metrics::counter!("tessera_cold_errors_total").increment(1);
        TierError::Archive { location: format!("{}: {}", self.label, key.object_path()), source: e }
    }
}

#[cfg(feature = "s3")]
fn s3(bucket_and_prefix: &str) -> Result<Arc<dyn ObjectStore>, TierError> {
    // The HTTP client's TLS uses the process's rustls provider: ring, as the cluster's QUIC.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (bucket, prefix) = bucket_and_prefix.split_once('/').unwrap_or((bucket_and_prefix, ""));
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|source| TierError::Archive { location: format!("s3://{bucket_and_prefix}"), source })?;
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix.trim_end_matches('/')))
    })
}

#[cfg(not(feature = "s3"))]
fn s3(bucket_and_prefix: &str) -> Result<Arc<dyn ObjectStore>, TierError> {
    Err(TierError::NoS3(bucket_and_prefix.to_string()))
}
