//! Storage tiers for finished media: what happens to a segment after the live window.
//!
//! - **Hot**: the segment store's memory (the live window and a retention margin), and the
//!   pull-through cache.
//! - **Warm**: this node's disk ([`warm::WarmStore`]): every finished segment and init
//!   segment the node held, kept for the stream's DVR window, within a byte budget; the
//!   least popular (recency-weighted frequency) are evicted first.
//! - **Cold**: the archive ([`cold::ColdStore`], a local folder or S3-compatible), written by
//!   the stream's origin only, kept for the stream's archive period.
//!
//! A request for a segment the hot tier no longer holds is answered from warm, else from
//! cold (and the copy is promoted back to warm), else pulled from another node. What is read
//! from warm or cold is promoted back to memory ([`HOT_BYTES`] of recently read files, the
//! least popular dropped first), so a rewind many viewers share reads the disk once.
//!
//! The catalog keeps in step: after each retention pass, what the archive holds of each
//! stream (oldest and newest segment, files, bytes) is recorded in the stream's catalog
//! record by the node that archives it (through [`Tiers::on_archive`]). Every file
//! on disk or in the archive carries a checksum verified on each read ([`sealed`]); a
//! corrupt copy is deleted, counted and never served. A background task enforces the
//! retention every minute.
//!
//! Blocking: [`Tiers::keep`] never blocks (a full queue drops the file, counted); writes
//! and disk reads run on blocking threads.

pub mod cold;
pub mod finished;
mod popularity;
pub mod sealed;
pub mod warm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::mpsc;

pub use popularity::Popularity;

/// Files waiting to be written; more are dropped (and counted).
const QUEUE: usize = 256;
/// Bytes of past files read back into memory.
pub const HOT_BYTES: u64 = 64 << 20;

#[derive(Debug, Error)]
pub enum TierError {
    #[error("cannot open the storage folder {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("archive {location}: {source}")]
    Archive { location: String, source: object_store::Error },
    #[error("s3://{0}: this build has no S3 support (build with --features s3)")]
    NoS3(String),
}

/// A finished file of a stream: `seg-MSN.m4s` or `init-N.mp4` of one rendition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub stream: String,
    pub rendition: String,
    pub file: String,
}

impl FileKey {
    /// `None` unless every part is a plain name (letters, digits, `.`, `_`, `-`, not
    /// starting with a dot): a key never names a path outside its tier.
    pub fn new(stream: &str, rendition: &str, file: &str) -> Option<FileKey> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && !s.starts_with('.')
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        (plain(stream) && plain(rendition) && plain(file)).then(|| FileKey {
            stream: stream.into(),
            rendition: rendition.into(),
            file: file.into(),
        })
    }

    fn path_in(&self, root: &Path) -> PathBuf {
        root.join(&self.stream).join(&self.rendition).join(&self.file)
    }

    fn object_path(&self) -> object_store::path::Path {
        object_store::path::Path::from(format!("{}/{}/{}", self.stream, self.rendition, self.file))
    }
}

/// How long a stream's finished media is kept: on this node's disk (its DVR window) and in
/// the archive. Zero: not kept there at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub dvr: Duration,
    pub archive: Duration,
}

/// Tier settings.
#[derive(Debug, Clone)]
pub struct TierConfig {
    pub warm_dir: PathBuf,
    pub warm_bytes: u64,
    /// How fast popularity fades (see [`Popularity`]).
    pub half_life: Duration,
    /// The archive's location (see [`cold::ColdStore::open`]); `None`: no archive.
    pub cold_url: Option<String>,
    pub retention: Retention,
    pub stream_retention: HashMap<String, Retention>,
    pub enforce_every: Duration,
}

impl TierConfig {
    /// A stream's retention: its own, else the node's.
    pub fn retention_of(&self, stream: &str) -> Retention {
        self.stream_retention.get(stream).copied().unwrap_or(self.retention)
    }
}

/// The warm and cold tiers of one node.
pub struct Tiers {
    hot: Mutex<HotFiles>,
    warm: Arc<warm::WarmStore>,
    cold: Option<cold::ColdStore>,
    config: TierConfig,
    queue: mpsc::Sender<(FileKey, finished::ChainedBytes, bool)>,
    on_archive: std::sync::OnceLock<ArchiveReport>,
}

/// Told, after each retention pass, what the archive holds of each stream.
pub type ArchiveReport = Box<dyn Fn(HashMap<String, tessera_raft::ArchiveExtent>) + Send + Sync>;

impl Tiers {
    /// Opens the tiers and starts their writer and retention tasks.
    pub fn start(config: TierConfig) -> Result<Arc<Tiers>, TierError> {
        let warm = warm::WarmStore::open(&config.warm_dir, config.warm_bytes, config.half_life, "live")
            .map_err(|source| TierError::Open { path: config.warm_dir.clone(), source })?;
        let cold = config.cold_url.as_deref().map(cold::ColdStore::open).transpose()?;
        let (queue, mut files) = mpsc::channel(QUEUE);
        let hot = Mutex::new(HotFiles { index: Popularity::new(HOT_BYTES, config.half_life), files: HashMap::new() });
        let on_archive = std::sync::OnceLock::new();
        let tiers = Arc::new(Tiers { hot, warm: Arc::new(warm), cold, config, queue, on_archive });
        let writer = tiers.clone();
        tokio::spawn(async move {
            while let Some((key, data, archive)) = files.recv().await {
                // The one copy of a segment into one buffer, off the live path, gone once written.
                writer.write(key, data.to_bytes(), archive).await;
            }
        });
        let enforcer = Arc::downgrade(&tiers);
        let every = tiers.config.enforce_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(tiers) = enforcer.upgrade() else { return };
                tiers.enforce().await;
            }
        });
        Ok(tiers)
    }

    /// What to tell after each retention pass (the node records it in the catalog).
    pub fn on_archive(&self, report: ArchiveReport) {
        let _ = self.on_archive.set(report);
    }

    /// The stream's retention: its own, else the node's.
    pub fn retention(&self, stream: &str) -> Retention {
        self.config.retention_of(stream)
    }

    /// Hands over a finished file; `archive` when this node is the stream's origin (the
    /// archive gets one copy, not one per node). Never blocks.
    pub fn keep(&self, key: FileKey, data: finished::ChainedBytes, archive: bool) {
        let r = self.retention(&key.stream);
        if r.dvr.is_zero() && (r.archive.is_zero() || !archive) {
            return;
        }
        if self.queue.try_send((key, data, archive)).is_err() {
            metrics::counter!("tessera_tier_writes_dropped_total").increment(1);
            tracing::warn!("storage tiers cannot keep up: a finished file was not kept");
        }
    }

    async fn write(&self, key: FileKey, data: Bytes, archive: bool) {
        let r = self.retention(&key.stream);
        if !r.dvr.is_zero() {
            let (warm, k, d) = (self.warm.clone(), key.clone(), data.clone());
            match tokio::task::spawn_blocking(move || warm.put(&k, &d)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    metrics::counter!("tessera_warm_errors_total").increment(1);
                    tracing::warn!(stream = key.stream, file = key.file, error = %e, "cannot write to the warm tier");
                }
                Err(_) => {}
            }
        }
        if let (Some(cold), true, false) = (&self.cold, archive, r.archive.is_zero()) {
            if let Err(e) = cold.put(&key, &data).await {
                tracing::warn!(stream = key.stream, file = key.file, error = %e, "cannot archive");
            }
        }
    }

    /// A finished file from memory, else from warm, else from the archive (promoted back to
    /// warm); what is read is promoted back to memory.
    ///
    /// Each tier asked counts a hit or a miss: `tessera_tier_lookups_total{tier, result}`,
    /// `tier` one of `memory`, `disk`, `archive` (asked only when the node has one).
    pub async fn get(&self, key: &FileKey) -> Option<Bytes> {
        let hot = self.hot.lock().expect("hot files").get(key);
        count_lookup("memory", hot.is_some());
        if let Some(data) = hot {
            return Some(data);
        }
        let data = self.read_disk_or_archive(key).await?;
        self.hot.lock().expect("hot files").put(key.clone(), data.clone());
        Some(data)
    }

    async fn read_disk_or_archive(&self, key: &FileKey) -> Option<Bytes> {
        let (warm, k) = (self.warm.clone(), key.clone());
        let warm = tokio::task::spawn_blocking(move || warm.get(&k)).await.ok().flatten();
        count_lookup("disk", warm.is_some());
        if let Some(data) = warm {
            return Some(data);
        }
        let cold = self.cold.as_ref()?;
        let found = cold.get(key).await;
        count_lookup("archive", matches!(found, Ok(Some(_))));
        match found {
            Ok(Some(data)) => {
                metrics::counter!("tessera_cold_hits_total").increment(1);
                if !self.retention(&key.stream).dvr.is_zero() {
                    let (warm, k, d) = (self.warm.clone(), key.clone(), data.clone());
                    let _ = tokio::task::spawn_blocking(move || warm.put(&k, &d)).await;
                }
                Some(data)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(stream = key.stream, file = key.file, error = %e, "cannot read the archive");
                None
            }
        }
    }

    /// Deletes what has been kept long enough, in both tiers.
    pub async fn enforce(&self) {
        let warm = self.warm.clone();
        let config = self.config.clone();
        let dvr = move |s: &str| config.retention_of(s).dvr;
        let expired = tokio::task::spawn_blocking(move || warm.expire(dvr)).await.unwrap_or(0);
        metrics::counter!("tessera_tier_expired_total", "tier" => "warm").increment(expired as u64);
        if let Some(cold) = &self.cold {
            match cold.sweep(|s| self.retention(s).archive).await {
                Ok((n, kept)) => {
                    metrics::counter!("tessera_tier_expired_total", "tier" => "cold").increment(n as u64);
                    if n + expired > 0 {
                        tracing::info!(warm = expired, cold = n, "retention enforced");
                    }
                    if let Some(report) = self.on_archive.get() {
                        report(kept);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot enforce the archive's retention"),
            }
        }
    }

    /// The archive, if the node has one.
    pub fn cold(&self) -> Option<cold::ColdStore> {
        self.cold.clone()
    }

    /// Bytes on this node's disk.
    pub fn warm_bytes(&self) -> u64 {
        self.warm.held()
    }
}

/// Counts a lookup of a finished file in `tier` (see [`Tiers::get`]); the live store and
/// the pull from other nodes count theirs under the same name (`live`, `peer`).
pub fn count_lookup(tier: &'static str, hit: bool) {
    metrics::counter!("tessera_tier_lookups_total", "tier" => tier, "result" => if hit { "hit" } else { "miss" })
        .increment(1);
}

/// Past files promoted back to memory.
struct HotFiles {
    index: Popularity<FileKey>,
    files: HashMap<FileKey, Bytes>,
}

impl HotFiles {
    fn get(&mut self, key: &FileKey) -> Option<Bytes> {
        let data = self.files.get(key)?.clone();
        self.index.touch(key, std::time::Instant::now());
        metrics::counter!("tessera_hot_promoted_hits_total").increment(1);
        Some(data)
    }

    fn put(&mut self, key: FileKey, data: Bytes) {
        for gone in self.index.insert(key.clone(), data.len() as u64, 1.0, std::time::Instant::now()) {
            self.files.remove(&gone);
        }
        if self.index.contains(&key) {
            self.files.insert(key, data);
        }
    }
}
