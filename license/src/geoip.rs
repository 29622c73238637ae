//! A viewer's country from a MaxMind-format database (`--geoip-db FILE`: GeoIP2 or
//! GeoLite2 Country or City, or any database whose records have `country.iso_code`).
//!
//! # Contract
//! - The database is read whole into memory when opened; a lookup never touches the disk.
//! - [`GeoIp::reload_if_changed`] (the node calls it every few seconds) reads the file
//!   again when its modification time or length changed, and swaps it in only once it has
//!   opened: a file half written, or not a database, leaves the one in force and is logged
//!   and counted (`tessera_geoip_reloads_total{outcome}`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use maxminddb::{PathElement, Reader};

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {path}: {why}")]
pub struct GeoIpError {
    pub path: PathBuf,
    pub why: String,
}

/// What tells one version of the file from another: its modification time and length.
type Stamp = (Option<SystemTime>, u64);

/// A MaxMind-format database file, reloaded when it changes.
pub struct GeoIp {
    path: PathBuf,
    current: RwLock<Arc<Reader<Vec<u8>>>>,
    /// The version last read, whether it opened or not (a bad one is not read again).
    seen: Mutex<Stamp>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len()))
}

fn load(path: &Path) -> Result<Reader<Vec<u8>>, GeoIpError> {
    Reader::open_readfile(path).map_err(|e| GeoIpError { path: path.to_path_buf(), why: e.to_string() })
}

impl GeoIp {
    /// Opens the database at `path`, failing if it is not one.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        let seen = stamp(path).map_err(|e| GeoIpError { path: path.to_path_buf(), why: e.to_string() })?;
        let reader = load(path)?;
        tracing::info!(path = %path.display(), kind = %reader.metadata().database_type, "GeoIP database loaded");
        Ok(GeoIp { path: path.to_path_buf(), current: RwLock::new(Arc::new(reader)), seen: Mutex::new(seen) })
    }

    /// The ISO 3166-1 country code the database gives `ip`, if any.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let reader = self.current.read().expect("geoip").clone();
        let found = reader.lookup(ip).ok()?;
        let path = [PathElement::Key("country"), PathElement::Key("iso_code")];
        found.decode_path::<String>(&path).ok().flatten()
    }

    /// Reads the file again if it changed since it was loaded; answers whether a new
    /// database is in force.
    pub fn reload_if_changed(&self) -> bool {
        let now = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "GeoIP database unreadable; keeping the one loaded");
                metrics::counter!("tessera_geoip_reloads_total", "outcome" => "unreadable").increment(1);
                return false;
            }
        };
        if std::mem::replace(&mut *self.seen.lock().expect("geoip"), now) == now {
            return false;
        }
        match load(&self.path) {
            Ok(loaded) => {
                tracing::info!(path = %self.path.display(), "GeoIP database changed; reloaded");
                metrics::counter!("tessera_geoip_reloads_total", "outcome" => "reloaded").increment(1);
                *self.current.write().expect("geoip") = Arc::new(loaded);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "GeoIP database changed but does not open; keeping the one loaded");
                metrics::counter!("tessera_geoip_reloads_total", "outcome" => "invalid").increment(1);
                false
            }
        }
    }
}
