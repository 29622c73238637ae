//! The catalog's content as a file, and that file brought into another cluster: a backup
//! that survives the loss of every member, or a move to new machines.
//!
//! An export holds what operators and viewers made: streams and their settings, admin
//! tokens (as hashes), releases, content protection (keys and the playback-token secret
//! stay wrapped under the key-encryption key, so the importing cluster needs the same
//! one), the region table, revoked viewers, VOD assets and their jobs. It leaves out what
//! belongs to the exporting cluster's members: its CA, join tokens, nodes, drains, origin
//! leases and ladder placements. On import, what named those members is let go: a leased
//! job is pending again from its checkpoint, a release not yet open forgets the votes and
//! readiness of nodes it will not see again.
//!
//! Import applies only to a cluster that holds no content yet (a freshly made one), whole
//! or not at all, so that it never merges two histories.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    AssetRecord, Catalog, JobRecord, JobState, Outcome, ProtectionRecord, Rejection, ReleaseId, ReleaseRecord,
    ReleaseState, StreamRecord,
};

/// The version of [`CatalogExport`] this build writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// A catalog's content, as `GET /api/v1/catalog/export` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogExport {
    pub format: u32,
    /// When it was read (the proposal time of the read), ms since the Unix epoch.
    pub exported_ms: i64,
    pub streams: BTreeMap<String, StreamRecord>,
    pub admin_sha256: BTreeSet<String>,
    pub releases: BTreeMap<ReleaseId, ReleaseRecord>,
    pub release_by_content: BTreeMap<String, ReleaseId>,
    pub protection: BTreeMap<String, ProtectionRecord>,
    pub token_secret: Option<String>,
    pub region_table: Vec<String>,
    pub revoked_subjects: BTreeSet<String>,
    pub assets: BTreeMap<String, AssetRecord>,
    pub jobs: BTreeMap<String, JobRecord>,
}

/// Why an export was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ImportRejection {
    #[error("this cluster already holds content ({0}): import only into a new cluster")]
    NotEmpty(String),
    #[error("export format {0}, this build reads format {EXPORT_FORMAT}")]
    UnknownFormat(u32),
}

impl Catalog {
    /// What an export of this catalog holds, read at `now_ms`.
    pub fn export(&self, now_ms: i64) -> CatalogExport {
        CatalogExport {
            format: EXPORT_FORMAT,
            exported_ms: now_ms,
            streams: self.streams.clone(),
            admin_sha256: self.access.admin_sha256.clone(),
            releases: self.releases.clone(),
            release_by_content: self.release_by_content.clone(),
            protection: self.protection.clone(),
            token_secret: self.token_secret.clone(),
            region_table: self.region_table.clone(),
            revoked_subjects: self.revoked_subjects.clone(),
            assets: self.assets.clone(),
            jobs: self.jobs.clone(),
        }
    }

    /// Brings `export` into this catalog, which must hold no content yet.
    pub(super) fn import(&mut self, now: i64, export: &CatalogExport) -> Result<Outcome, Rejection> {
        if export.format != EXPORT_FORMAT {
            return Err(ImportRejection::UnknownFormat(export.format).into());
        }
        let held = [
            ("streams", self.streams.len()),
            ("releases", self.releases.len()),
            ("protected contents", self.protection.len()),
            ("assets", self.assets.len()),
        ];
        if let Some((what, n)) = held.iter().find(|(_, n)| *n > 0) {
            return Err(ImportRejection::NotEmpty(format!("{n} {what}")).into());
        }
        self.streams = export.streams.clone();
        for s in self.streams.values_mut() {
            s.origin = None;
            s.placement = None;
        }
        self.access.admin_sha256.extend(export.admin_sha256.iter().cloned());
        self.releases = export.releases.clone();
        for r in self.releases.values_mut().filter(|r| r.state == ReleaseState::Scheduled) {
            r.open_votes.clear();
            r.end_votes.clear();
            r.ready.clear();
        }
        self.release_by_content = export.release_by_content.clone();
        self.protection = export.protection.clone();
        // The viewers' tokens signed before stay valid (a secret this cluster made is unused).
        if export.token_secret.is_some() {
            self.token_secret = export.token_secret.clone();
        }
        self.region_table = export.region_table.clone();
        self.region_table_version += 1;
        self.revoked_subjects = export.revoked_subjects.clone();
        self.assets = export.assets.clone();
        self.jobs = export.jobs.clone();
        for j in self.jobs.values_mut().filter(|j| j.state == JobState::Leased) {
            j.state = JobState::Pending;
            j.lease = None;
            j.updated_ms = now;
        }
        Ok(Outcome::Done)
    }
}
