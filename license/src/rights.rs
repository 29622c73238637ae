//! Whether a content's rights let a viewer watch from where it is: checked on every request
//! for the content (playlists, init segments, parts, segments, DVR, keys), clear or
//! encrypted, signed or not.
//!
//! # Contract
//! - A viewer's region is the catalog's address table's (the most specific range holding
//!   its address: an override), else the country the GeoIP database gives it (ISO 3166-1
//!   code, `FR`), else none. Content whose rights name regions plays only in those; a
//!   viewer with no region is refused it.
//! - Content with no regions costs one catalog read per request and no lookup.
//! - A refusal is `403 {"error": "region_not_allowed"}`, logged with the viewer's address
//!   and region, and counted (`tessera_region_refusals_total{what}`).

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use tessera_raft::CatalogNode;

use crate::geoip::GeoIp;
use crate::regions::RegionTable;
use crate::serving::Refusal;

/// Where viewers are: the catalog's table (kept parsed, rebuilt when its version moves)
/// and the GeoIP database.
pub struct RegionLookup {
    catalog: CatalogNode,
    table: RwLock<(u64, Arc<RegionTable>)>,
    geoip: Option<Arc<GeoIp>>,
}

impl RegionLookup {
    pub fn new(catalog: CatalogNode, geoip: Option<Arc<GeoIp>>) -> Self {
        RegionLookup { catalog, table: RwLock::new((0, Arc::default())), geoip }
    }

    /// The GeoIP database, to reload when it changes.
    pub fn geoip(&self) -> Option<&Arc<GeoIp>> {
        self.geoip.as_ref()
    }

    /// The catalog's table as this node has applied it, at `version`.
    fn table(&self, version: u64) -> Arc<RegionTable> {
        {
            let held = self.table.read().expect("region table");
            if held.0 == version {
                return held.1.clone();
            }
        }
        let (version, lines) = self.catalog.peek(|c| (c.region_table_version, c.region_table.clone()));
        let table = Arc::new(RegionTable::parse(&lines));
        *self.table.write().expect("region table") = (version, table.clone());
        table
    }

    /// The region of a viewer at `ip`.
    pub fn region_of(&self, ip: IpAddr) -> Option<String> {
        self.region_at(self.catalog.peek(|c| c.region_table_version), ip)
    }

    fn region_at(&self, table_version: u64, ip: IpAddr) -> Option<String> {
        if let Some(r) = self.table(table_version).region_of(ip) {
            return Some(r.to_string());
        }
        self.geoip.as_ref()?.country(ip)
    }

    /// Whether the rights of `content` let a viewer at `viewer` watch it; `what` (playlist,
    /// media, key) labels a refusal's log line and metric.
    pub fn check(&self, content: &str, viewer: IpAddr, what: &'static str) -> Result<(), Refusal> {
        let limited = self.catalog.peek(|c| {
            c.protection.get(content).is_some_and(|p| !p.regions.is_empty()).then_some(c.region_table_version)
        });
        let Some(table_version) = limited else { return Ok(()) };
        let region = self.region_at(table_version, viewer);
        let allowed = self
            .catalog
            .peek(|c| c.protection.get(content).is_none_or(|p| crate::regions::allows(&p.regions, region.as_deref())));
        if allowed {
            return Ok(());
        }
        let region = region.as_deref().unwrap_or("unknown");
        tracing::info!(content, viewer = %viewer, region, what, "refused: not available in the viewer's region");
        metrics::counter!("tessera_region_refusals_total", "what" => what).increment(1);
        Err(Refusal::new(403, "region_not_allowed", format!("not available in the viewer's region ({region})")))
    }
}
