//! Where VOD assets live: the cluster's archive (the cold tier's object store), so a job
//! started on one node can be resumed on another, and every node serves every finished
//! rendition.
//!
//! Layout: `vod/ASSET/RENDITION/FILE` for a rendition's files (init segments, segments,
//! manifests, each named by the epoch of the claim that wrote it), sealed with their
//! SHA-256 like every archived file; `vod/ASSET/_source/original` for the source as
//! uploaded (its SHA-256 is in the catalog and checked when a worker fetches it). Keys
//! have four parts, so the live archive's retention (three-part keys) never touches them.
//!
//! With the default archive (a folder on each node) each node sees its own assets only:
//! jobs then run on the node holding the source, and its renditions are served there. A
//! shared archive (S3, or one folder every node mounts) spreads jobs and playback over
//! the cluster.
//!
//! Reads go through two caches on the serving node: memory (64 MiB of recently read
//! files) and, when the archive is not a folder on this machine, the node's disk
//! (`--vod-cache-bytes`, a [`WarmStore`]: the least popular evicted first). So the assets
//! viewers watch are served from the nodes, and the rest only from the archive.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tessera_storage::cold::ColdStore;
use tessera_storage::warm::WarmStore;
use tessera_storage::{sealed, FileKey, Popularity};

/// The VOD part of the archive `cold`, with a cache of `cache_bytes` in `cache_dir` on this
/// node's disk unless the archive is a folder on this machine already (or the size is 0).
pub fn open(cold: ColdStore, cache_dir: &Path, cache_bytes: u64) -> Result<VodArchive, tessera_storage::TierError> {
    let disk = if cold.local_root().is_some() || cache_bytes == 0 {
        None
    } else {
        let disk = WarmStore::open(cache_dir, cache_bytes, CACHE_HALF_LIFE, "vod")
            .map_err(|e| tessera_storage::TierError::Open { path: cache_dir.to_path_buf(), source: e })?;
        Some(Arc::new(disk))
    };
    Ok(VodArchive::new(&cold, disk))
}

/// How fast a cached file's popularity fades without reads.
const CACHE_HALF_LIFE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The folder a source goes under, beside the renditions.
const SOURCE_DIR: &str = "_source";
const SOURCE_FILE: &str = "original";
/// Bytes of finished rendition files kept in memory for viewers.
const CACHE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {archive}: {key}: {detail}")]
    Store { archive: String, key: String, detail: String },
    #[error("archive {archive}: {key}: damaged copy ({detail})")]
    Damaged { archive: String, key: String, detail: String },
    #[error("the source of asset {asset} fetched from the archive has SHA-256 {got}, not {want}")]
    SourceMismatch { asset: String, got: String, want: String },
    #[error("{path}: {error}")]
    Local { path: PathBuf, error: std::io::Error },
}

/// The VOD part of the archive.
#[derive(Clone)]
pub struct VodArchive {
    store: Arc<dyn ObjectStore>,
    label: String,
    local_root: Option<PathBuf>,
    cache: Arc<Mutex<FileCache>>,
    /// Files read from a remote archive, on this node's disk.
    disk: Option<Arc<WarmStore>>,
}

impl std::fmt::Debug for VodArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodArchive").field("archive", &self.label).finish()
    }
}

impl VodArchive {
    /// The VOD part of `cold`; `disk` caches what is read on this node's disk.
    pub fn new(cold: &ColdStore, disk: Option<Arc<WarmStore>>) -> VodArchive {
        VodArchive {
            store: cold.objects(),
            label: cold.label().to_string(),
            local_root: cold.local_root().map(Path::to_path_buf),
            cache: Arc::default(),
            disk,
        }
    }

    /// Whether the archive is a folder on this machine (a disk cache would copy it).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    fn key(asset: &str, rendition: &str, file: &str) -> ObjectPath {
        ObjectPath::from_iter(["vod", asset, rendition, file])
    }

    fn failed(&self, key: &ObjectPath, e: impl std::fmt::Display) -> ArchiveError {
        metrics::counter!("tessera_cold_errors_total").increment(1);
        ArchiveError::Store { archive: self.label.clone(), key: key.to_string(), detail: e.to_string() }
    }

    /// Stores a rendition file whole (a reader never sees part of it).
    pub async fn put(&self, asset: &str, rendition: &str, file: &str, payload: &[u8]) -> Result<(), ArchiveError> {
        let key = Self::key(asset, rendition, file);
        self.store.put(&key, PutPayload::from_bytes(sealed::seal(payload))).await.map_err(|e| self.failed(&key, e))?;
        metrics::counter!("tessera_vod_archive_writes_total").increment(1);
        Ok(())
    }

    /// A rendition file, if the archive holds it. A damaged copy is an error (and is not
    /// served); files are immutable, so what was read is kept in memory for the next viewer.
    pub async fn get(&self, asset: &str, rendition: &str, file: &str) -> Result<Option<Bytes>, ArchiveError> {
        let key = Self::key(asset, rendition, file);
        if let Some(b) = self.cache.lock().expect("cache lock").get(key.as_ref()) {
            return Ok(Some(b));
        }
        let disk_key = self.disk.clone().zip(FileKey::new(asset, rendition, file));
        if let Some((disk, k)) = disk_key.clone() {
            if let Ok(Some(b)) = tokio::task::spawn_blocking(move || disk.get(&k)).await {
                self.cache.lock().expect("cache lock").insert(key.to_string(), b.clone());
                return Ok(Some(b));
            }
        }
        let body = match self.store.get(&key).await {
            Ok(r) => r.bytes().await.map_err(|e| self.failed(&key, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failed(&key, e)),
        };
        let payload = sealed::open(body).map_err(|e| {
            metrics::counter!("tessera_tier_corrupt_total", "tier" => "vod").increment(1);
            ArchiveError::Damaged { archive: self.label.clone(), key: key.to_string(), detail: e.to_string() }
        })?;
        self.cache.lock().expect("cache lock").insert(key.to_string(), payload.clone());
        if let Some((disk, k)) = disk_key {
            let copy = payload.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = disk.put(&k, &copy) {
                    tracing::warn!(file = ?k, error = %e, "a VOD file could not be cached on disk");
                }
            });
        }
        Ok(Some(payload))
    }

    fn source_key(asset: &str) -> ObjectPath {
        Self::key(asset, SOURCE_DIR, SOURCE_FILE)
    }

    /// Whether the archive holds asset `asset`'s source.
    pub async fn has_source(&self, asset: &str) -> bool {
        self.store.head(&Self::source_key(asset)).await.is_ok()
    }

    /// Puts a stored source in the archive: a hard link when the archive is a folder on
    /// the same file system (no second copy), else streamed in 8 MiB parts.
    pub async fn put_source(&self, asset: &str, local: &Path) -> Result<(), ArchiveError> {
        let key = Self::source_key(asset);
        if self.has_source(asset).await {
            return Ok(());
        }
        if let Some(root) = &self.local_root {
            let target = root.join("vod").join(asset).join(SOURCE_DIR).join(SOURCE_FILE);
            let linked = async {
                tokio::fs::create_dir_all(target.parent().expect("a folder")).await?;
                tokio::fs::hard_link(local, &target).await
            };
            if linked.await.is_ok() {
                return Ok(());
            }
        }
        let local_err = |error| ArchiveError::Local { path: local.to_path_buf(), error };
        let mut file = tokio::fs::File::open(local).await.map_err(local_err)?;
        let upload = self.store.put_multipart(&key).await.map_err(|e| self.failed(&key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await.map_err(local_err)?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await.map_err(|e| self.failed(&key, e))?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| self.failed(&key, e))?;
        Ok(())
    }

    /// Fetches asset `asset`'s source into `dest`, checking its SHA-256.
    pub async fn fetch_source(&self, asset: &str, dest: &Path, sha256: &str) -> Result<(), ArchiveError> {
        let key = Self::source_key(asset);
        let local_err = |error| ArchiveError::Local { path: dest.to_path_buf(), error };
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(local_err)?;
        }
        let tmp = dest.with_extension("part");
        let mut out = tokio::fs::File::create(&tmp).await.map_err(local_err)?;
        let mut stream = self.store.get(&key).await.map_err(|e| self.failed(&key, e))?.into_stream();
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.failed(&key, e))?;
            digest.update(&chunk);
            out.write_all(&chunk).await.map_err(local_err)?;
        }
        out.flush().await.map_err(local_err)?;
        drop(out);
        let got: String = digest.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
        if got != sha256 {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(ArchiveError::SourceMismatch { asset: asset.into(), got, want: sha256.into() });
        }
        tokio::fs::rename(&tmp, dest).await.map_err(local_err)
    }

    /// Removes asset `asset`'s source from the archive.
    pub async fn delete_source(&self, asset: &str) -> Result<(), ArchiveError> {
        let key = Self::source_key(asset);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.failed(&key, e)),
        }
        if let Some(root) = &self.local_root {
            let _ = tokio::fs::remove_dir(root.join("vod").join(asset).join(SOURCE_DIR)).await;
        }
        Ok(())
    }

    /// Removes everything of asset `asset`.
    pub async fn delete_asset(&self, asset: &str) -> Result<usize, ArchiveError> {
        let prefix = ObjectPath::from_iter(["vod", asset]);
        let mut listing = self.store.list(Some(&prefix));
        let mut gone = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.failed(&prefix, e))?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => gone += 1,
                Err(e) => return Err(self.failed(&meta.location, e)),
            }
        }
        self.cache.lock().expect("cache lock").forget_prefix(&format!("{prefix}/"));
        if let Some(disk) = self.disk.clone() {
            let asset = asset.to_string();
            let _ = tokio::task::spawn_blocking(move || disk.forget(&asset)).await;
        }
        if let Some(root) = &self.local_root {
            // A folder archive keeps the emptied folders.
            let _ = tokio::fs::remove_dir_all(root.join("vod").join(asset)).await;
        }
        Ok(gone)
    }

    /// How long ago anything of asset `asset` was last written, if the archive has it.
    pub async fn age(&self, asset: &str) -> Result<Option<std::time::Duration>, ArchiveError> {
        let prefix = ObjectPath::from_iter(["vod", asset]);
        let mut listing = self.store.list(Some(&prefix));
        let mut newest = None;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.failed(&prefix, e))?;
            newest = newest.max(Some(meta.last_modified));
        }
        Ok(newest.map(|t| std::time::SystemTime::from(t).elapsed().unwrap_or_default()))
    }

    /// The names of the folders under `vod/ASSET[/RENDITION]`, or of the files there.
    pub async fn list(&self, asset: &str, rendition: Option<&str>) -> Result<Vec<String>, ArchiveError> {
        let prefix = match rendition {
            Some(r) => ObjectPath::from_iter(["vod", asset, r]),
            None => ObjectPath::from_iter(["vod", asset]),
        };
        let listing = self.store.list_with_delimiter(Some(&prefix)).await.map_err(|e| self.failed(&prefix, e))?;
        let names = match rendition {
            Some(_) => listing.objects.iter().filter_map(|o| o.location.filename().map(str::to_string)).collect(),
            None => listing.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect(),
        };
        Ok(names)
    }

    /// The assets the archive has anything of.
    pub async fn assets(&self) -> Result<Vec<String>, ArchiveError> {
        let prefix = ObjectPath::from("vod");
        let listing = self.store.list_with_delimiter(Some(&prefix)).await.map_err(|e| self.failed(&prefix, e))?;
        Ok(listing.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect())
    }
}

/// Recently read rendition files in memory, the least popular dropped first (the storage
/// tiers' [`Popularity`]).
struct FileCache {
    files: HashMap<String, Bytes>,
    index: Popularity<String>,
}

impl Default for FileCache {
    fn default() -> Self {
        FileCache { files: HashMap::new(), index: Popularity::new(CACHE_BYTES, CACHE_HALF_LIFE) }
    }
}

impl FileCache {
    fn get(&mut self, key: &str) -> Option<Bytes> {
        let data = self.files.get(key)?.clone();
        self.index.touch(&key.to_string(), Instant::now());
        Some(data)
    }

    fn insert(&mut self, key: String, data: Bytes) {
        if data.len() as u64 > CACHE_BYTES / 4 {
            return;
        }
        for gone in self.index.insert(key.clone(), data.len() as u64, 1.0, Instant::now()) {
            self.files.remove(&gone);
        }
        self.files.insert(key, data);
    }

    fn forget_prefix(&mut self, prefix: &str) {
        let gone: Vec<String> = self.files.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        for k in gone {
            self.files.remove(&k);
            self.index.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tessera-vod-archive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn archive(dir: &Path) -> VodArchive {
        VodArchive::new(&ColdStore::open(&dir.display().to_string()).unwrap(), None)
    }

    #[tokio::test]
    async fn files_round_trip_and_a_damaged_copy_is_refused() {
        let dir = scratch("files");
        let a = archive(&dir);
        a.put("film", "720p", "seg-0.e1.m4s", b"moof").await.unwrap();
        assert_eq!(a.get("film", "720p", "seg-0.e1.m4s").await.unwrap().unwrap(), Bytes::from_static(b"moof"));
        assert_eq!(a.get("film", "720p", "seg-1.e1.m4s").await.unwrap(), None);
        let on_disk = dir.join("vod/film/720p/seg-2.e1.m4s");
        a.put("film", "720p", "seg-2.e1.m4s", b"mdat").await.unwrap();
        let mut bytes = std::fs::read(&on_disk).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&on_disk, bytes).unwrap();
        assert!(matches!(a.get("film", "720p", "seg-2.e1.m4s").await, Err(ArchiveError::Damaged { .. })));
        assert_eq!(a.assets().await.unwrap(), vec!["film".to_string()]);
        assert_eq!(a.delete_asset("film").await.unwrap(), 2);
        assert_eq!(a.get("film", "720p", "seg-0.e1.m4s").await.unwrap(), None, "not served from memory either");
        assert!(a.assets().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn files_read_once_are_served_from_the_node_disk_until_the_asset_goes() {
        let dir = scratch("disk");
        let disk = WarmStore::open(&dir.join("cache"), 1 << 20, std::time::Duration::from_secs(600), "vod").unwrap();
        let cold = ColdStore::open(&dir.join("archive").display().to_string()).unwrap();
        let a = VodArchive::new(&cold, Some(Arc::new(disk)));
        a.put("film", "720p", "seg-0.e1.m4s", b"moof").await.unwrap();
        assert_eq!(a.get("film", "720p", "seg-0.e1.m4s").await.unwrap().unwrap(), Bytes::from_static(b"moof"));
        let cached = dir.join("cache/film/720p/seg-0.e1.m4s");
        for _ in 0..50 {
            if cached.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(cached.exists(), "the read is kept on the node's disk");
        // The archive loses its copy and the memory forgets: the node's disk still has it.
        std::fs::remove_file(dir.join("archive/vod/film/720p/seg-0.e1.m4s")).unwrap();
        let fresh = VodArchive { cache: Arc::default(), ..a.clone() };
        assert_eq!(fresh.get("film", "720p", "seg-0.e1.m4s").await.unwrap().unwrap(), Bytes::from_static(b"moof"));
        fresh.delete_asset("film").await.unwrap();
        assert!(!cached.exists(), "a deleted asset leaves the node's disk");
    }

    #[tokio::test]
    async fn a_source_is_linked_in_and_fetched_back_checked() {
        let dir = scratch("source");
        let a = archive(&dir.join("archive"));
        std::fs::create_dir_all(&dir).unwrap();
        let local = dir.join("source");
        std::fs::write(&local, vec![7u8; 3 << 20]).unwrap();
        let sha = crate::sha256_file(&local).unwrap();
        assert!(!a.has_source("film").await);
        a.put_source("film", &local).await.unwrap();
        assert!(a.has_source("film").await);
        let dest = dir.join("fetched/source");
        a.fetch_source("film", &dest, &sha).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&local).unwrap());
        let wrong = a.fetch_source("film", &dir.join("other"), &"0".repeat(64)).await;
        assert!(matches!(wrong, Err(ArchiveError::SourceMismatch { .. })));
        assert!(!dir.join("other").exists());
        a.delete_source("film").await.unwrap();
        assert!(!a.has_source("film").await);
        assert!(local.exists(), "the node's own copy stays");
    }
}
