//! Content protection in the catalog: how each stream or asset is encrypted, its content
//! keys (wrapped under the cluster's key-encryption key; the catalog never holds a key in
//! clear), the viewer regions its rights allow, the cluster's token secret (wrapped too),
//! the address-to-region table, and revoked viewers.
//!
//! Keys rotate by segment number: a key applies from its `from_msn` on, until a newer one
//! takes over, so every node picks the same key for the same segment
//! ([`Catalog::key_for`]). The node that makes a new key gives it a `from_msn` a few
//! segments ahead, so every node has applied it before it is used.

use serde::{Deserialize, Serialize};

use super::{valid_content, valid_name, Catalog, Command, Outcome, Rejection};
use crate::catalog::ProtectionRejection;

/// How media is encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Protection {
    #[default]
    #[serde(rename = "none")]
    None,
    /// HLS `METHOD=AES-128`: whole segments and parts.
    #[serde(rename = "aes-128")]
    Aes128,
    /// CENC `cbcs` sample encryption, `METHOD=SAMPLE-AES`.
    #[serde(rename = "cbcs")]
    Cbcs,
}

/// A content key, wrapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRecord {
    /// The key id, 32 hex digits.
    pub kid: String,
    /// The key wrapped under the key-encryption key (nonce, ciphertext, tag; hex).
    pub wrapped: String,
    /// The first segment it encrypts.
    pub from_msn: u64,
    pub created_ms: i64,
    /// For a key from a DRM provider's key server: what each of its DRM systems signals.
    #[serde(default)]
    pub drm: Vec<DrmRecord>,
}

/// What a DRM system's players need to find a key's license, as its provider gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrmRecord {
    /// The DASH-IF system id, lowercase.
    pub system_id: String,
    /// A whole `pssh` box, base64, for init segments.
    pub pssh: Option<String>,
    /// `EXT-X-KEY` lines for media playlists.
    pub hls: Option<String>,
}

/// One content's protection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProtectionRecord {
    pub mode: Protection,
    /// Oldest first; the newest 64 (`KEYS_KEPT`) are kept.
    pub keys: Vec<KeyRecord>,
    /// Regions whose viewers may watch; empty: everywhere.
    pub regions: Vec<String>,
    /// Playlists need a playback token and media a URL signature, encrypted or not.
    #[serde(default)]
    pub signed_urls: bool,
    /// A DRM provider's SPEKE v2 key server (`cbcs` only): keys come from it, with the
    /// signaling of its DRM systems, rather than from this cluster.
    #[serde(default)]
    pub key_server: Option<String>,
    pub updated_ms: i64,
}

/// Keys kept per content: enough for any DVR window at a rotation period of minutes.
pub const KEYS_KEPT: usize = 64;
/// Lines of the address-to-region table at most.
pub(super) const REGION_LINES_MAX: usize = 100_000;

fn valid_kid(kid: &str) -> bool {
    kid.len() == 32 && kid.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_drm(drm: &[DrmRecord]) -> bool {
    drm.len() <= 8
        && drm.iter().all(|d| {
            d.system_id.len() == 36
                && d.pssh.as_ref().is_none_or(|p| p.len() <= 8192)
                && d.hls
                    .as_ref()
                    .is_none_or(|h| h.len() <= 4096 && h.lines().all(|l| l.is_empty() || l.starts_with('#')))
        })
}

/// A key server's URL: http or https, at most 512 characters.
pub(super) fn valid_key_server(url: &str) -> bool {
    url.len() <= 512
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(char::is_whitespace)
}

fn valid_wrapped(w: &str) -> bool {
    !w.is_empty() && w.len() <= 256 && w.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Catalog {
    /// How `content` is encrypted.
    pub fn protection_of(&self, content: &str) -> Protection {
        self.protection.get(content).map_or(Protection::None, |p| p.mode)
    }

    /// The key that encrypts segment `msn` of `content`: the newest whose range has begun.
    pub fn key_for(&self, content: &str, msn: u64) -> Option<&KeyRecord> {
        self.protection.get(content)?.keys.iter().rev().find(|k| k.from_msn <= msn)
    }

    /// Whether `content`'s playlists need a token and its media a URL signature.
    pub fn signed_urls(&self, content: &str) -> bool {
        self.protection.get(content).is_some_and(|p| p.signed_urls)
    }

    /// A key of `content` by its id.
    pub fn key_by_id(&self, content: &str, kid: &str) -> Option<&KeyRecord> {
        self.protection.get(content)?.keys.iter().find(|k| k.kid.eq_ignore_ascii_case(kid))
    }

    pub(super) fn apply_protection(&mut self, now: i64, command: &Command) -> Result<Outcome, Rejection> {
        let invalid = |why: &str| Rejection::Protection(ProtectionRejection::InvalidProtection(why.to_string()));
        match command {
            Command::SetProtection { content, mode } => {
                if !valid_content(content) {
                    return Err(Rejection::Protection(ProtectionRejection::InvalidContent(content.clone())));
                }
                let p = self.protection.entry(content.clone()).or_default();
                p.mode = *mode;
                p.updated_ms = now;
                Ok(Outcome::Done)
            }
            Command::AddKey { content, key } => {
                if !valid_kid(&key.kid) || !valid_wrapped(&key.wrapped) {
                    return Err(invalid("a key id is 32 hex digits and a wrapped key up to 256"));
                }
                if !valid_drm(&key.drm) {
                    return Err(invalid("DRM signaling: up to 8 systems, a pssh of 8 kB, HLS tags of 4 kB"));
                }
                let p = self.protection.get_mut(content).filter(|p| p.mode != Protection::None);
                let p = p.ok_or_else(|| invalid("the content is not encrypted"))?;
                if p.keys.iter().any(|k| k.kid.eq_ignore_ascii_case(&key.kid)) {
                    return Ok(Outcome::Done); // a retried proposal
                }
                if p.keys.last().is_some_and(|k| k.from_msn > key.from_msn) {
                    return Err(invalid("a new key cannot start before the newest one"));
                }
                p.keys.push(KeyRecord { created_ms: now, ..key.clone() });
                if p.keys.len() > KEYS_KEPT {
                    p.keys.remove(0);
                }
                p.updated_ms = now;
                Ok(Outcome::Done)
            }
            Command::SetRights { content, regions } => {
                if !valid_content(content) {
                    return Err(Rejection::Protection(ProtectionRejection::InvalidContent(content.clone())));
                }
                if regions.len() > 64 || regions.iter().any(|r| !valid_name(r)) {
                    return Err(invalid("regions: up to 64 names"));
                }
                let p = self.protection.entry(content.clone()).or_default();
                p.regions = regions.clone();
                p.updated_ms = now;
                Ok(Outcome::Done)
            }
            Command::SetSignedUrls { content, required } => {
                if !valid_content(content) {
                    return Err(Rejection::Protection(ProtectionRejection::InvalidContent(content.clone())));
                }
                let p = self.protection.entry(content.clone()).or_default();
                p.signed_urls = *required;
                p.updated_ms = now;
                Ok(Outcome::Done)
            }
            Command::SetTokenSecret { wrapped } => {
                if !valid_wrapped(wrapped) {
                    return Err(invalid("a wrapped secret is up to 256 hex digits"));
                }
                // The first one stays: nodes racing to make one all end up using it.
                self.token_secret.get_or_insert_with(|| wrapped.clone());
                Ok(Outcome::Done)
            }
            Command::SetRegionTable { lines } => {
                let shaped = |l: &String| l.len() <= 100 && l.contains('/') && l.contains('=');
                if lines.len() > REGION_LINES_MAX || !lines.iter().all(shaped) {
                    return Err(invalid("region table lines are ADDRESS/PREFIX=REGION"));
                }
                self.region_table = lines.clone();
                self.region_table_version += 1;
                Ok(Outcome::Done)
            }
            Command::RevokeSubject { subject, revoked } => {
                if subject.is_empty() || subject.len() > 256 {
                    return Err(invalid("a subject has 1 to 256 characters"));
                }
                if *revoked {
                    self.revoked_subjects.insert(subject.clone());
                } else {
                    self.revoked_subjects.remove(subject);
                }
                Ok(Outcome::Done)
            }
            _ => unreachable!("not a protection command"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Proposal;

    fn apply(c: &mut Catalog, command: Command) -> Outcome {
        c.apply(&Proposal { at_ms: 5, command })
    }

    fn key(kid: u8, from_msn: u64) -> KeyRecord {
        KeyRecord {
            kid: format!("{kid:02x}").repeat(16),
            wrapped: "ab".repeat(44),
            from_msn,
            created_ms: 0,
            drm: vec![],
        }
    }

    #[test]
    fn keys_rotate_by_segment_number_and_only_for_encrypted_content() {
        let mut c = Catalog::default();
        let add = |k| Command::AddKey { content: "live/cam".into(), key: k };
        assert!(matches!(
            apply(&mut c, add(key(1, 0))),
            Outcome::Rejected(Rejection::Protection(ProtectionRejection::InvalidProtection(_)))
        ));
        apply(&mut c, Command::SetProtection { content: "live/cam".into(), mode: Protection::Aes128 });
        assert_eq!(c.protection_of("live/cam"), Protection::Aes128);
        assert_eq!(c.protection_of("live/other"), Protection::None);
        assert_eq!(apply(&mut c, add(key(1, 0))), Outcome::Done);
        assert_eq!(apply(&mut c, add(key(2, 10))), Outcome::Done);
        assert_eq!(apply(&mut c, add(key(2, 10))), Outcome::Done, "a retry is harmless");
        assert!(matches!(apply(&mut c, add(key(3, 5))), Outcome::Rejected(_)), "no key starts before the newest");
        assert_eq!(c.key_for("live/cam", 9).map(|k| k.from_msn), Some(0));
        assert_eq!(c.key_for("live/cam", 10).map(|k| k.from_msn), Some(10));
        assert_eq!(c.key_for("live/cam", 999).map(|k| k.from_msn), Some(10));
        assert!(c.key_by_id("live/cam", &"02".repeat(16).to_uppercase()).is_some());
        for i in 0..KEYS_KEPT as u8 + 5 {
            apply(&mut c, add(key(10 + i, 100 + i as u64)));
        }
        assert_eq!(c.protection["live/cam"].keys.len(), KEYS_KEPT, "old keys are let go");
        let bad = KeyRecord { kid: "zz".into(), ..key(1, 1000) };
        assert!(matches!(apply(&mut c, add(bad)), Outcome::Rejected(_)));
    }

    #[test]
    fn the_first_token_secret_stays_and_subjects_are_revoked_and_restored() {
        let mut c = Catalog::default();
        apply(&mut c, Command::SetTokenSecret { wrapped: "aa".repeat(30) });
        apply(&mut c, Command::SetTokenSecret { wrapped: "bb".repeat(30) });
        assert_eq!(c.token_secret.as_deref(), Some("aa".repeat(30).as_str()));
        apply(&mut c, Command::RevokeSubject { subject: "viewer-7".into(), revoked: true });
        assert!(c.revoked_subjects.contains("viewer-7"));
        apply(&mut c, Command::RevokeSubject { subject: "viewer-7".into(), revoked: false });
        assert!(c.revoked_subjects.is_empty());
        let table = vec!["10.0.0.0/8=eu".to_string()];
        assert_eq!(apply(&mut c, Command::SetRegionTable { lines: table.clone() }), Outcome::Done);
        assert_eq!(c.region_table, table);
        let bad = Command::SetRegionTable { lines: vec!["nonsense".into()] };
        assert!(matches!(apply(&mut c, bad), Outcome::Rejected(_)));
        let rights = Command::SetRights { content: "live/cam".into(), regions: vec!["eu".into()] };
        assert_eq!(apply(&mut c, rights), Outcome::Done);
        assert_eq!(c.protection["live/cam"].regions, vec!["eu".to_string()]);
        assert!(!c.signed_urls("live/cam"));
        apply(&mut c, Command::SetSignedUrls { content: "live/cam".into(), required: true });
        assert!(c.signed_urls("live/cam") && !c.signed_urls("live/other"));
    }
}
