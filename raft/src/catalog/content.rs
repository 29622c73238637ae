//! One write for everything a `PUT` of a stream or an asset says: its ladder and publish
//! token, recording, placement rule, encryption, regions and URL signing
//! ([`Command::ConfigureContent`]). Every part is checked before any is applied, so a
//! stream is never encrypted without its region rule, nor half configured.

use serde::{Deserialize, Serialize};

use super::placement::PlacementRule;
use super::protection::Protection;
use super::{
    valid_content, valid_hash, valid_ladder, valid_name, Catalog, NodeRejection, Outcome, ProtectionRejection,
    Rejection, StreamRecord, StreamRejection,
};
use crate::catalog::AssetRejection;

/// What a `PUT` changes; `None` leaves a setting as it is. (Every field is always written:
/// log entries travel in a format that is not self-describing.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContentSettings {
    /// A live stream's ladder and publish token (SHA-256), both replaced; the stream is
    /// created if it does not exist.
    pub stream: Option<StreamSettings>,
    pub record: Option<bool>,
    pub placement: Option<PlacementRule>,
    pub encryption: Option<Protection>,
    /// The viewer regions its rights allow (empty: everywhere).
    pub regions: Option<Vec<String>>,
    pub signed_urls: Option<bool>,
    /// A DRM provider's SPEKE v2 key server (`Some(None)` removes it); `cbcs` only.
    pub key_server: Option<Option<String>>,
}

/// A live stream's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamSettings {
    pub ladder: Option<String>,
    pub token_sha256: Option<String>,
}

impl Catalog {
    /// Applies [`ContentSettings`] to `content` (`live/NAME`, `vod/ASSET`) whole, or not at all.
    pub(super) fn configure_content(
        &mut self,
        now: i64,
        content: &str,
        settings: &ContentSettings,
    ) -> Result<Outcome, Rejection> {
        if !valid_content(content) {
            return Err(ProtectionRejection::InvalidContent(content.to_string()).into());
        }
        let invalid = |why: &str| Rejection::Protection(ProtectionRejection::InvalidProtection(why.to_string()));
        if let Some(regions) = &settings.regions {
            if regions.len() > 64 || regions.iter().any(|r| !valid_name(r)) {
                return Err(invalid("regions: up to 64 names"));
            }
        }
        if let Some(Some(url)) = &settings.key_server {
            if !super::protection::valid_key_server(url) {
                return Err(invalid("a key server is an http:// or https:// URL of up to 512 characters"));
            }
        }
        let mode = settings.encryption.unwrap_or_else(|| self.protection_of(content));
        let server = match &settings.key_server {
            Some(s) => s.is_some(),
            None => self.protection.get(content).is_some_and(|p| p.key_server.is_some()),
        };
        if server && mode != Protection::Cbcs {
            return Err(invalid("a key server provides cbcs keys: the content's encryption must be cbcs"));
        }
        let live = content.strip_prefix("live/");
        match live {
            Some(name) => {
                if !valid_name(name) {
                    return Err(StreamRejection::InvalidName(name.to_string()).into());
                }
                if let Some(s) = &settings.stream {
                    if s.token_sha256.as_deref().is_some_and(|h| !valid_hash(h)) {
                        return Err(StreamRejection::InvalidTokenHash.into());
                    }
                    if let Some(l) = s.ladder.as_deref().filter(|l| !valid_ladder(l)) {
                        return Err(StreamRejection::InvalidLadder(l.to_string()).into());
                    }
                }
                let exists = self.streams.contains_key(name) || settings.stream.is_some();
                if (settings.record.is_some() || settings.placement.is_some()) && !exists {
                    return Err(StreamRejection::NoSuchStream(name.to_string()).into());
                }
                let named = settings.placement.iter().flat_map(|r| r.pin.iter().chain(&r.prefer));
                if let Some(n) = named.into_iter().find(|n| !self.nodes.contains_key(n)) {
                    return Err(NodeRejection::NoSuchNode(*n).into());
                }
            }
            None => {
                let asset = content.strip_prefix("vod/").unwrap_or_default();
                if !self.assets.contains_key(asset) {
                    return Err(AssetRejection::NoSuchAsset(asset.to_string()).into());
                }
                if settings.stream.is_some() || settings.record.is_some() || settings.placement.is_some() {
                    return Err(invalid("an asset takes encryption, regions and signed URLs only"));
                }
            }
        }
        // Everything holds: apply it all.
        if let Some(name) = live {
            let s = self.streams.entry(name.to_string()).or_insert_with(|| StreamRecord::new(name, now));
            if let Some(st) = &settings.stream {
                s.ladder = st.ladder.clone();
                s.token_sha256 = st.token_sha256.as_ref().map(|h| h.to_ascii_lowercase());
            }
            if let Some(record) = settings.record {
                s.record = record;
            }
            if let Some(rule) = &settings.placement {
                s.placement_rule = rule.clone();
            }
            s.updated_ms = now;
        }
        let touches = settings.encryption.is_some()
            || settings.regions.is_some()
            || settings.signed_urls.is_some()
            || settings.key_server.is_some();
        if touches {
            let p = self.protection.entry(content.to_string()).or_default();
            if let Some(mode) = settings.encryption {
                p.mode = mode;
            }
            if let Some(regions) = &settings.regions {
                p.regions = regions.clone();
            }
            if let Some(required) = settings.signed_urls {
                p.signed_urls = required;
            }
            if let Some(server) = &settings.key_server {
                p.key_server = server.clone();
            }
            p.updated_ms = now;
        }
        Ok(match live.and_then(|name| self.streams.get(name)) {
            Some(s) => Outcome::Stream(s.clone()),
            None => Outcome::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Command, Proposal};

    fn apply(c: &mut Catalog, content: &str, settings: ContentSettings) -> Outcome {
        c.apply(&Proposal { at_ms: 7, command: Command::ConfigureContent { content: content.into(), settings } })
    }

    #[test]
    fn every_part_applies_together_or_none_does() {
        let mut c = Catalog::default();
        let all = ContentSettings {
            stream: Some(StreamSettings { ladder: Some("source,480p:1200".into()), token_sha256: None }),
            record: Some(true),
            encryption: Some(Protection::Cbcs),
            regions: Some(vec!["eu".into()]),
            signed_urls: Some(true),
            ..ContentSettings::default()
        };
        assert!(matches!(apply(&mut c, "live/cam", all), Outcome::Stream(s) if s.record && s.ladder.is_some()));
        let p = &c.protection["live/cam"];
        assert_eq!((p.mode, p.regions.clone(), p.signed_urls), (Protection::Cbcs, vec!["eu".to_string()], true));

        // One bad part (a region name, a node that does not exist): nothing changes.
        let before = c.clone();
        let bad_region = ContentSettings {
            encryption: Some(Protection::None),
            regions: Some(vec!["e u".into()]),
            ..Default::default()
        };
        assert!(matches!(apply(&mut c, "live/cam", bad_region), Outcome::Rejected(_)));
        let bad_pin = ContentSettings {
            encryption: Some(Protection::None),
            placement: Some(PlacementRule { pin: vec![9], prefer: vec![] }),
            ..Default::default()
        };
        assert!(matches!(apply(&mut c, "live/cam", bad_pin), Outcome::Rejected(_)));
        assert_eq!(c, before, "never half applied");

        // A key server gives cbcs keys only.
        let server =
            ContentSettings { key_server: Some(Some("https://keys.example/speke".into())), ..Default::default() };
        assert!(matches!(apply(&mut c, "live/plain", server.clone()), Outcome::Rejected(_)), "no encryption yet");
        let cbcs = ContentSettings { encryption: Some(Protection::Cbcs), ..server };
        assert!(matches!(apply(&mut c, "live/plain", cbcs), Outcome::Stream(_)));
        let aes = ContentSettings { encryption: Some(Protection::Aes128), ..Default::default() };
        assert!(matches!(apply(&mut c, "live/plain", aes), Outcome::Rejected(_)), "not while the server is set");
        let off =
            ContentSettings { encryption: Some(Protection::Aes128), key_server: Some(None), ..Default::default() };
        assert!(matches!(apply(&mut c, "live/plain", off), Outcome::Stream(_)), "together with removing it");

        // Recording needs a stream; an asset must exist and takes no stream settings.
        let record = ContentSettings { record: Some(true), ..Default::default() };
        assert!(matches!(apply(&mut c, "live/none", record), Outcome::Rejected(_)));
        let regions = ContentSettings { regions: Some(vec!["us".into()]), ..Default::default() };
        assert!(matches!(apply(&mut c, "vod/none", regions), Outcome::Rejected(_)));
        assert!(!c.protection.contains_key("vod/none"));
    }
}
