//! The warm tier: finished segments and init segments on the node's own disk, bounded in
//! size, the least popular evicted first ([`Popularity`]), each file checksummed
//! ([`super::sealed`]) and verified on every read.
//!
//! Blocking: every method does file I/O; callers run them on a blocking thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::popularity::Popularity;
use super::{sealed, FileKey};

/// One node's warm tier.
pub struct WarmStore {
    root: PathBuf,
    index: Mutex<Index>,
    /// What it holds, as its metrics say: `live` (streams' segments) or `vod` (assets'
    /// files read from the archive).
    content: &'static str,
}

struct Index {
    popularity: Popularity<FileKey>,
    /// When each file was written (for retention).
    written: HashMap<FileKey, SystemTime>,
}

impl WarmStore {
    /// Opens the tier in `root` (made if missing) and indexes what an earlier run left there.
    pub fn open(root: &Path, budget: u64, half_life: Duration, content: &'static str) -> std::io::Result<WarmStore> {
        std::fs::create_dir_all(root)?;
        let mut index = Index { popularity: Popularity::new(budget, half_life), written: HashMap::new() };
        let now = Instant::now();
        let mut found = 0usize;
        for stream in std::fs::read_dir(root)?.flatten() {
            for rendition in std::fs::read_dir(stream.path()).into_iter().flatten().flatten() {
                for file in std::fs::read_dir(rendition.path()).into_iter().flatten().flatten() {
                    let (Some(s), Some(r), Some(f)) =
                        (name(&stream.path()), name(&rendition.path()), name(&file.path()))
                    else {
                        continue;
                    };
                    let Ok(meta) = file.metadata() else { continue };
                    let Some(key) = FileKey::new(&s, &r, &f) else { continue };
                    if f.ends_with(".tmp") {
                        let _ = std::fs::remove_file(file.path());
                        continue;
                    }
                    index.written.insert(key.clone(), meta.modified().unwrap_or(SystemTime::now()));
                    for gone in index.popularity.insert(key, meta.len(), 0.0, now) {
                        index.written.remove(&gone);
                        let _ = std::fs::remove_file(gone.path_in(root));
                    }
                    found += 1;
                }
            }
        }
        tracing::info!(root = %root.display(), files = found, bytes = index.popularity.held(), "warm tier opened");
        let store = WarmStore { root: root.to_path_buf(), index: Mutex::new(index), content };
        store.report();
        Ok(store)
    }

    /// Writes a file (replacing any copy); evicts the least popular to stay within budget.
    pub fn put(&self, key: &FileKey, payload: &[u8]) -> std::io::Result<()> {
        let path = key.path_in(&self.root);
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
        let tmp = path.with_extension("tmp");
        let sealed = sealed::seal(payload);
        std::fs::write(&tmp, &sealed)?;
        std::fs::rename(&tmp, &path)?;
        let evicted = {
            let mut index = self.index.lock().expect("warm index");
            index.written.insert(key.clone(), SystemTime::now());
            let evicted = index.popularity.insert(key.clone(), sealed.len() as u64, 1.0, Instant::now());
            for gone in &evicted {
                index.written.remove(gone);
            }
            evicted
        };
        for gone in &evicted {
            let _ = std::fs::remove_file(gone.path_in(&self.root));
        }
        metrics::counter!("tessera_warm_evictions_total", "content" => self.content).increment(evicted.len() as u64);
        metrics::counter!("tessera_warm_writes_total", "content" => self.content).increment(1);
        self.report();
        Ok(())
    }

    /// A file's payload, if the tier holds an intact copy. A copy that fails its checksum is
    /// deleted (and counted) so that the caller fetches another.
    pub fn get(&self, key: &FileKey) -> Option<Bytes> {
        if !self.index.lock().expect("warm index").popularity.touch(key, Instant::now()) {
            return None;
        }
        let path = key.path_in(&self.root);
        let read = std::fs::read(&path).map(Bytes::from);
        match read.map_err(|e| e.to_string()).and_then(|b| sealed::open(b).map_err(|e| e.to_string())) {
            Ok(payload) => {
                metrics::counter!("tessera_warm_hits_total", "content" => self.content).increment(1);
                Some(payload)
            }
            Err(e) => {
                metrics::counter!("tessera_tier_corrupt_total", "tier" => "warm").increment(1);
                tracing::warn!(path = %path.display(), error = %e, "corrupt warm copy discarded");
                self.remove(key);
                None
            }
        }
    }

    /// Deletes the files that `keep` says have been kept long enough (given the stream and
    /// the file's age); returns how many.
    pub fn expire(&self, keep: impl Fn(&str) -> Duration) -> usize {
        let now = SystemTime::now();
        let expired: Vec<FileKey> = {
            let index = self.index.lock().expect("warm index");
            index
                .written
                .iter()
                .filter(|(k, at)| now.duration_since(**at).unwrap_or_default() > keep(&k.stream))
                .map(|(k, _)| k.clone())
                .collect()
        };
        for key in &expired {
            self.remove(key);
        }
        expired.len()
    }

    /// Deletes every file of `stream` (an asset, for the VOD cache).
    pub fn forget(&self, stream: &str) {
        let keys: Vec<FileKey> = {
            let index = self.index.lock().expect("warm index");
            index.written.keys().filter(|k| k.stream == stream).cloned().collect()
        };
        for key in &keys {
            self.remove(key);
        }
        let _ = std::fs::remove_dir_all(self.root.join(stream));
    }

    fn remove(&self, key: &FileKey) {
        {
            let mut index = self.index.lock().expect("warm index");
            index.popularity.remove(key);
            index.written.remove(key);
        }
        let _ = std::fs::remove_file(key.path_in(&self.root));
        self.report();
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.index.lock().expect("warm index").popularity.held()
    }

    fn report(&self) {
        metrics::gauge!("tessera_warm_bytes", "content" => self.content).set(self.held() as f64);
    }
}

fn name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_string)
}
