//! VOD assets in the catalog: an asset exists once its upload is complete, checked and
//! stored durably on the node that received it; never half-registered.
//!
//! An asset's id is its content id's second half (`vod/ID`), so releases and protection
//! apply to it as to a live stream.

use serde::{Deserialize, Serialize};

use super::{valid_hash, valid_name, Catalog, Command, NodeId, Outcome, Rejection};
use crate::catalog::{AssetRejection, NodeRejection};

/// What the source file holds and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceRecord {
    /// The node whose disk holds the source.
    pub node: NodeId,
    pub size: u64,
    pub sha256: String,
    /// `mp4` (MP4 or QuickTime) or `mpegts`.
    pub container: String,
    pub duration_ms: u64,
    /// The video track, e.g. `h264 1920x1080`.
    pub video: Option<String>,
    /// The audio track, e.g. `aac 48000 Hz 2 ch`.
    pub audio: Option<String>,
}

/// Where an asset stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetState {
    /// Stored, waiting to be transcoded.
    #[default]
    Uploaded,
    Transcoding,
    Ready,
    Failed,
    /// A live stream being recorded (container `live`); ready when the stream ends.
    Recording,
}

/// One asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetRecord {
    pub id: String,
    pub title: String,
    pub source: SourceRecord,
    pub state: AssetState,
    /// Keep the source once transcoded (else it is deleted then).
    pub keep_source: bool,
    pub created_ms: i64,
}

/// Longest title kept.
pub const TITLE_MAX: usize = 256;

impl Catalog {
    pub(super) fn apply_asset(&mut self, now: i64, command: &Command) -> Result<Outcome, Rejection> {
        match command {
            Command::AddAsset { asset } => {
                let invalid = |why: &str| Rejection::Asset(AssetRejection::InvalidAsset(why.to_string()));
                if !valid_name(&asset.id) {
                    return Err(Rejection::Asset(AssetRejection::InvalidId(asset.id.clone())));
                }
                if asset.title.len() > TITLE_MAX || asset.title.chars().any(char::is_control) {
                    return Err(invalid("a title is at most 256 bytes, without control characters"));
                }
                if !valid_hash(&asset.source.sha256) {
                    return Err(invalid("the source's SHA-256 is not 64 hex digits"));
                }
                if !matches!(asset.source.container.as_str(), "mp4" | "mpegts" | "live") {
                    return Err(invalid("the source's container is mp4, mpegts or live (a recording)"));
                }
                if !self.nodes.contains_key(&asset.source.node) {
                    return Err(Rejection::Node(NodeRejection::NoSuchNode(asset.source.node)));
                }
                match self.assets.get(&asset.id) {
                    // A completion proposed again (a retried request) changes nothing.
                    Some(a) if a.source == asset.source && a.title == asset.title => return Ok(Outcome::Done),
                    Some(_) => return Err(Rejection::Asset(AssetRejection::AssetExists(asset.id.clone()))),
                    None => {}
                }
                let state = if asset.source.container == "live" { AssetState::Recording } else { AssetState::Uploaded };
                let record = AssetRecord { state, created_ms: now, ..asset.clone() };
                self.assets.insert(asset.id.clone(), record);
                Ok(Outcome::Done)
            }
            Command::DeleteAsset { id } => {
                self.assets.remove(id).ok_or_else(|| Rejection::Asset(AssetRejection::NoSuchAsset(id.clone())))?;
                let prefix = format!("{id}/");
                self.jobs.retain(|k, _| !k.starts_with(&prefix));
                Ok(Outcome::Done)
            }
            _ => unreachable!("not an asset command"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NodeRecord, Proposal};

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        let node =
            NodeRecord { id: 1, cluster_addr: "a:1".into(), http_addr: "a:2".into(), joined_ms: 0, region: None };
        c.apply(&Proposal { at_ms: 0, command: Command::PutNode { node } });
        c
    }

    fn asset(id: &str) -> AssetRecord {
        AssetRecord {
            id: id.into(),
            title: "A film".into(),
            source: SourceRecord {
                node: 1,
                size: 1000,
                sha256: "ab".repeat(32),
                container: "mp4".into(),
                duration_ms: 60_000,
                video: Some("h264 1920x1080".into()),
                audio: None,
            },
            state: AssetState::Failed,
            keep_source: true,
            created_ms: 0,
        }
    }

    #[test]
    fn an_asset_is_added_once_checked_and_deleted() {
        let mut c = catalog();
        let add =
            |c: &mut Catalog, a: AssetRecord| c.apply(&Proposal { at_ms: 7, command: Command::AddAsset { asset: a } });
        assert_eq!(add(&mut c, asset("film")), Outcome::Done);
        let stored = &c.assets["film"];
        assert_eq!((stored.state, stored.created_ms), (AssetState::Uploaded, 7), "state and time are the catalog's");
        assert_eq!(add(&mut c, asset("film")), Outcome::Done, "the same completion again changes nothing");
        let other = AssetRecord { title: "Another".into(), ..asset("film") };
        assert_eq!(add(&mut c, other), Outcome::Rejected(Rejection::Asset(AssetRejection::AssetExists("film".into()))));
        let bad_hash = AssetRecord { source: SourceRecord { sha256: "x".into(), ..asset("a").source }, ..asset("a") };
        assert!(matches!(add(&mut c, bad_hash), Outcome::Rejected(Rejection::Asset(AssetRejection::InvalidAsset(_)))));
        let elsewhere = AssetRecord { source: SourceRecord { node: 9, ..asset("b").source }, ..asset("b") };
        assert_eq!(add(&mut c, elsewhere), Outcome::Rejected(Rejection::Node(NodeRejection::NoSuchNode(9))));
        assert!(matches!(
            add(&mut c, asset("no/slash")),
            Outcome::Rejected(Rejection::Asset(AssetRejection::InvalidId(_)))
        ));
        assert_eq!(c.assets.len(), 1, "nothing half-registered");
        let delete =
            |c: &mut Catalog| c.apply(&Proposal { at_ms: 8, command: Command::DeleteAsset { id: "film".into() } });
        assert_eq!(delete(&mut c), Outcome::Done);
        assert_eq!(delete(&mut c), Outcome::Rejected(Rejection::Asset(AssetRejection::NoSuchAsset("film".into()))));
    }
}
