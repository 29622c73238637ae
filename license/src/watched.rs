//! A file read into memory and read again when it changes: the GeoIP database, the JSON Web
//! Key Set of a platform's token signer.
//!
//! # Contract
//! - [`WatchedFile::open`] fails if the file does not read or parse: a node is not started
//!   on a configuration it cannot use.
//! - [`WatchedFile::reload_if_changed`] (the node calls it every few seconds) reads the file
//!   again when its modification time or length changed, and swaps the new contents in only
//!   once they parsed: a file half written, or broken, leaves the one in force, is logged,
//!   and is counted (`tessera_file_reloads_total{file, outcome}`); it is not read again
//!   until it changes once more.
//! - [`WatchedFile::current`] never touches the disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Why a watched file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {why}")]
pub struct WatchedFileError {
    pub what: &'static str,
    pub path: PathBuf,
    pub why: String,
}

/// What tells one version of the file from another: its modification time and length.
type Stamp = (Option<SystemTime>, u64);

/// A file's parsed contents, kept current.
pub struct WatchedFile<T> {
    what: &'static str,
    path: PathBuf,
    parse: fn(Vec<u8>) -> Result<T, String>,
    current: RwLock<Arc<T>>,
    /// The version last read, whether it parsed or not.
    seen: Mutex<Stamp>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len()))
}

impl<T> WatchedFile<T> {
    /// Reads and parses `path` (`what` names it in errors, logs and metrics).
    pub fn open(
        what: &'static str,
        path: &Path,
        parse: fn(Vec<u8>) -> Result<T, String>,
    ) -> Result<Self, WatchedFileError> {
        let err = |why: String| WatchedFileError { what, path: path.to_path_buf(), why };
        let seen = stamp(path).map_err(|e| err(e.to_string()))?;
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let value = parse(bytes).map_err(err)?;
        tracing::info!(file = what, path = %path.display(), "loaded");
        Ok(WatchedFile {
            what,
            path: path.to_path_buf(),
            parse,
            current: RwLock::new(Arc::new(value)),
            seen: Mutex::new(seen),
        })
    }

    /// The contents in force.
    pub fn current(&self) -> Arc<T> {
        self.current.read().expect("watched file").clone()
    }

    /// Reads the file again if it changed since it was last read; answers whether new
    /// contents are in force.
    pub fn reload_if_changed(&self) -> bool {
        let (file, path) = (self.what, self.path.display());
        let outcome = |outcome: &'static str| {
            metrics::counter!("tessera_file_reloads_total", "file" => file, "outcome" => outcome).increment(1);
        };
        let now = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file, %path, error = %e, "unreadable; keeping what was loaded");
                outcome("unreadable");
                return false;
            }
        };
        if std::mem::replace(&mut *self.seen.lock().expect("watched file"), now) == now {
            return false;
        }
        match std::fs::read(&self.path).map_err(|e| e.to_string()).and_then(self.parse) {
            Ok(value) => {
                *self.current.write().expect("watched file") = Arc::new(value);
                tracing::info!(file, %path, "changed; reloaded");
                outcome("reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(file, %path, error = %e, "changed but does not load; keeping what was loaded");
                outcome("invalid");
                false
            }
        }
    }
}
