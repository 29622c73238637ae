//! SPEKE v2 key requests, sans-IO: the CPIX document (DASH-IF CPIX 2.3) an encryptor sends
//! a DRM provider's key server for one content key of one key period, and the provider's
//! answer: the key itself and, per DRM system, what players need to find its license (the
//! `pssh` box of Widevine and PlayReady, the `EXT-X-KEY` lines of FairPlay).
//!
//! # Contract
//! - [`request_document`] names the key id (the encryptor chooses it), the scheme
//!   (`cbcs`), the DRM systems asked for, and the key period when keys rotate. The HTTP
//!   request carries `X-Speke-Version: 2.0` ([`SPEKE_VERSION`]).
//! - [`parse_response`] takes only an answer for the key asked: a plain 16-byte key
//!   (`pskc:PlainValue`, over HTTPS) under the same key id, and for each DRM system a `pssh`
//!   that is one whole `pssh` box of that system, and signaling that is base64 text. An
//!   encrypted key (`DeliveryDataList`) is refused with the reason: this encryptor does not
//!   hold a document key.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The SPEKE version this client speaks (`X-Speke-Version`), and the CPIX version of its
/// documents.
pub const SPEKE_VERSION: &str = "2.0";
const CPIX_VERSION: &str = "2.3";

/// DASH-IF system ids.
pub const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
pub const PLAYREADY: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
pub const FAIRPLAY: &str = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2";

/// One key asked of a key server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest<'a> {
    /// The content id the provider files the key under (`live/NAME`, `vod/ASSET`).
    pub content_id: &'a str,
    pub kid: [u8; 16],
    /// The key period, when keys rotate (a live stream's): its index.
    pub period: Option<u64>,
    /// The DRM systems whose signaling is asked for.
    pub systems: &'a [&'a str],
}

/// What a DRM system's players need to find the key's license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmSignal {
    /// The system id, lowercase.
    pub system_id: String,
    /// A whole `pssh` box, for init segments.
    pub pssh: Option<Vec<u8>>,
    /// `EXT-X-KEY` lines for media playlists (FairPlay's `skd://` key URI among them).
    pub hls_media: Option<String>,
}

/// A key server's answer for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedKey {
    pub kid: [u8; 16],
    pub key: [u8; 16],
    pub signals: Vec<DrmSignal>,
}

/// Why a key server's answer is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpixError {
    #[error("not a CPIX document: {0}")]
    Xml(String),
    #[error("no content key {0} in the answer")]
    NoKey(String),
    #[error("the content key is encrypted (DeliveryDataList); this encryptor takes plain keys over HTTPS")]
    EncryptedKey,
    #[error("the content key is not 16 bytes of base64")]
    BadKey,
    #[error("DRM system {system}: {why}")]
    BadSignal { system: String, why: &'static str },
}

/// A key id as CPIX writes it: `8-4-4-4-12` hex digits.
pub fn uuid(kid: &[u8; 16]) -> String {
    let h: String = kid.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    crate::keys::parse_kid(&hex)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The CPIX document asking for `req`'s key.
pub fn request_document(req: &KeyRequest) -> String {
    let kid = uuid(&req.kid);
    let mut doc = String::new();
    doc.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    doc.push_str(&format!(
        r#"<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" contentId="{}" version="{CPIX_VERSION}">"#,
        escape(req.content_id)
    ));
    doc.push_str(&format!(
        r#"<cpix:ContentKeyList><cpix:ContentKey kid="{kid}" commonEncryptionScheme="cbcs"/></cpix:ContentKeyList>"#
    ));
    doc.push_str("<cpix:DRMSystemList>");
    for system in req.systems {
        doc.push_str(&format!(r#"<cpix:DRMSystem kid="{kid}" systemId="{system}">"#));
        if *system == FAIRPLAY {
            doc.push_str(r#"<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/>"#);
        } else {
            doc.push_str(r#"<cpix:PSSH/><cpix:ContentProtectionData/><cpix:HLSSignalingData playlist="media"/>"#);
        }
        doc.push_str("</cpix:DRMSystem>");
    }
    doc.push_str("</cpix:DRMSystemList>");
    if let Some(index) = req.period {
        doc.push_str(&format!(
            r#"<cpix:ContentKeyPeriodList><cpix:ContentKeyPeriod id="keyPeriod_{index}" index="{index}"/></cpix:ContentKeyPeriodList>"#
        ));
    }
    doc.push_str(&format!(
        r#"<cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule kid="{kid}" intendedTrackType="ALL">"#
    ));
    if let Some(index) = req.period {
        doc.push_str(&format!(r#"<cpix:KeyPeriodFilter periodId="keyPeriod_{index}"/>"#));
    }
    doc.push_str("</cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList></cpix:CPIX>");
    doc
}

const CPIX_NS: &str = "urn:dashif:org:cpix";
const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

/// A `pssh` box of `system`: its size field is its length, its type `pssh`, its system id
/// the one named.
fn valid_pssh(b: &[u8], system: &str) -> bool {
    b.len() >= 32
        && u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize == b.len()
        && &b[4..8] == b"pssh"
        && parse_uuid(system).is_some_and(|id| b[12..28] == id)
}

/// The provider's answer for the key `kid`.
pub fn parse_response(xml: &str, kid: &[u8; 16]) -> Result<ProvidedKey, CpixError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| CpixError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name((CPIX_NS, "CPIX")) {
        return Err(CpixError::Xml("the root is not cpix:CPIX".into()));
    }
    if root.descendants().any(|n| n.has_tag_name((CPIX_NS, "DeliveryDataList"))) {
        return Err(CpixError::EncryptedKey);
    }
    let ours = |n: &roxmltree::Node| n.attribute("kid").and_then(parse_uuid).as_ref() == Some(kid);
    let content_key = root
        .descendants()
        .find(|n| n.has_tag_name((CPIX_NS, "ContentKey")) && ours(n))
        .ok_or_else(|| CpixError::NoKey(uuid(kid)))?;
    if content_key.descendants().any(|n| n.has_tag_name((PSKC_NS, "EncryptedValue"))) {
        return Err(CpixError::EncryptedKey);
    }
    let plain = content_key
        .descendants()
        .find(|n| n.has_tag_name((PSKC_NS, "PlainValue")))
        .and_then(|n| n.text())
        .ok_or(CpixError::BadKey)?;
    let key: [u8; 16] = B64.decode(plain.trim()).ok().and_then(|k| k.try_into().ok()).ok_or(CpixError::BadKey)?;
    let mut signals = Vec::new();
    for system in root.descendants().filter(|n| n.has_tag_name((CPIX_NS, "DRMSystem")) && ours(n)) {
        let system_id = system.attribute("systemId").unwrap_or_default().to_ascii_lowercase();
        let bad = |why| CpixError::BadSignal { system: system_id.clone(), why };
        let text = |name: &str, playlist: Option<&str>| {
            system
                .children()
                .filter(|n| n.has_tag_name((CPIX_NS, name)))
                .find(|n| playlist.is_none_or(|p| n.attribute("playlist").is_none_or(|a| a == p)))
                .and_then(|n| n.text())
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        let pssh = match text("PSSH", None) {
            Some(t) => {
                let b = B64.decode(t).map_err(|_| bad("its PSSH is not base64"))?;
                if !valid_pssh(&b, &system_id) {
                    return Err(bad("its PSSH is not one pssh box of this system"));
                }
                Some(b)
            }
            None => None,
        };
        let hls_media = match text("HLSSignalingData", Some("media")) {
            Some(t) => {
                let lines = B64.decode(t).ok().and_then(|b| String::from_utf8(b).ok());
                let lines = lines.ok_or_else(|| bad("its HLS signaling is not base64 text"))?;
                if !lines.lines().all(|l| l.is_empty() || l.starts_with('#')) {
                    return Err(bad("its HLS signaling is not playlist tags"));
                }
                Some(lines.trim_end().to_string())
            }
            None => None,
        };
        signals.push(DrmSignal { system_id, pssh, hls_media });
    }
    Ok(ProvidedKey { kid: *kid, key, signals })
}

#[cfg(test)]
mod tests;
