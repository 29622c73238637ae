//! A viewer's country from a MaxMind-format database (`--geoip-db FILE`: GeoIP2 or
//! GeoLite2 Country or City, or any database whose records have `country.iso_code`).
//!
//! The database is read whole into memory and read again when its file changes
//! ([`WatchedFile`]); a lookup never touches the disk.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{PathElement, Reader};

use crate::watched::{WatchedFile, WatchedFileError};

/// A MaxMind-format database file, reloaded when it changes.
pub struct GeoIp(WatchedFile<Reader<Vec<u8>>>);

impl GeoIp {
    /// Opens the database at `path`, failing if it is not one.
    pub fn open(path: &Path) -> Result<Self, WatchedFileError> {
        WatchedFile::open("geoip", path, |bytes| Reader::from_source(bytes).map_err(|e| e.to_string())).map(GeoIp)
    }

    /// The ISO 3166-1 country code the database gives `ip`, if any.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let reader = self.0.current();
        let found = reader.lookup(ip).ok()?;
        let path = [PathElement::Key("country"), PathElement::Key("iso_code")];
        found.decode_path::<String>(&path).ok().flatten()
    }

    /// Reads the file again if it changed; answers whether a new database is in force.
    pub fn reload_if_changed(&self) -> bool {
        self.0.reload_if_changed()
    }
}
