//! Protected content as this node serves it: the keys its playlists name, its media
//! encrypted on the way out (never in clear), and the signed-URL checks.
//!
//! The store holds clear media (what the packager wrote, what the relay carries); each
//! node encrypts what it serves, once per file, with the key the catalog gives the
//! segment's number:
//! - **AES-128**: the whole file, IV = segment number.
//! - **cbcs**: samples in place, each key with its own init segment `init-N-KID.mp4` naming
//!   it; the same bytes on every node, so a CDN may mix them.
//!
//! Content is named `live/NAME` or `vod/ASSET` throughout.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::supervisor::LicenseRef;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use tessera_packager::encrypt::aes128;
use tessera_packager::encrypt::cmaf::{self, CbcsKey};
use tessera_packager::SegmentKey;
use tessera_raft::{CatalogNode, Protection};

use crate::actor::LicenseMsg;
use crate::cache::{cache_control, Bounds, Object, IMMUTABLE};
use crate::keys::parse_kid;
use crate::rights::RegionLookup;
use crate::viewer::Viewer;

/// How long the license actor has to answer a request of the serving path.
const ACTOR_PATIENCE: Duration = Duration::from_secs(5);

/// A request refused: its HTTP status, a reason code and a message, answered as
/// `{"error": CODE, "message": ...}` with `Cache-Control: no-store, private`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, code: &'static str, message: impl std::fmt::Display) -> Self {
        Refusal { status, code, message: message.to_string() }
    }

    /// Media of encrypted content that cannot be served here now: never in clear.
    fn unavailable(message: &str) -> Self {
        Refusal::new(503, "keys_unavailable", message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::FORBIDDEN);
        let headers = [(header::CACHE_CONTROL, "no-store, private")];
        (status, headers, Json(serde_json::json!({ "error": self.code, "message": self.message }))).into_response()
    }
}

/// Media encrypted for serving, by content, rendition and file: a file is encrypted once
/// however many viewers ask for it. The oldest entries leave first.
#[derive(Default)]
struct EncryptedCache {
    entries: std::sync::Mutex<(HashMap<CacheKey, Bytes>, VecDeque<CacheKey>)>,
}

/// Content, rendition, file, protection and key id, and clear length: content that starts
/// its numbering again (deleted and made anew), or whose protection changed, does not get
/// other bytes.
type CacheKey = (String, String, String, String, usize);

/// Files kept encrypted: a few segments' parts of a few hundred renditions.
const ENCRYPTED_KEPT: usize = 4096;

impl EncryptedCache {
    fn get(&self, key: &CacheKey) -> Option<Bytes> {
        self.entries.lock().expect("encrypted cache").0.get(key).cloned()
    }

    fn put(&self, key: CacheKey, data: Bytes) {
        let mut guard = self.entries.lock().expect("encrypted cache");
        let (map, order) = &mut *guard;
        if map.insert(key.clone(), data).is_none() {
            order.push_back(key);
        }
        while order.len() > ENCRYPTED_KEPT {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

/// Why media could not be encrypted (a fault of ours, logged and counted).
#[derive(Debug, thiserror::Error)]
enum EncryptError {
    #[error("key id {0:?} is not 32 hex digits")]
    KeyId(String),
    #[error("init segment: {0}")]
    Init(cmaf::ProtectError),
    #[error("fragments: {0}")]
    Fragments(cmaf::ProtectError),
}

/// What a node's serving path needs of content protection.
pub struct MediaProtection {
    catalog: CatalogNode,
    /// The license actor, when the node has a key-encryption key.
    license: Option<LicenseRef>,
    /// Where viewers are, for the content's region rule.
    regions: Arc<RegionLookup>,
    encrypted: EncryptedCache,
}

impl MediaProtection {
    pub fn new(catalog: CatalogNode, license: Option<LicenseRef>, regions: Arc<RegionLookup>) -> Self {
        MediaProtection { catalog, license, regions, encrypted: EncryptedCache::default() }
    }

    /// Whether the rights of `content` let `viewer` watch it (see [`crate::rights`]).
    pub fn region_access(&self, content: &str, viewer: Viewer, what: &'static str) -> Result<(), Refusal> {
        self.regions.check(content, viewer.0, what)
    }

    /// Where viewers are.
    pub fn regions(&self) -> &Arc<RegionLookup> {
        &self.regions
    }

    /// The `Cache-Control` of `object` of `content` now: never past its rights
    /// ([`crate::cache`]).
    pub fn cache_control(&self, content: &str, object: Object) -> axum::http::HeaderValue {
        let bounds = self.catalog.peek(|c| {
            let p = c.protection.get(content);
            Bounds {
                regions: p.is_some_and(|p| !p.regions.is_empty()),
                signed_urls: p.is_some_and(|p| p.signed_urls),
                ends_ms: c.release_of(content).and_then(|r| r.end_ms),
            }
        });
        if bounds == Bounds::default() && object == Object::Media {
            // Most media requests: no string made.
            return axum::http::HeaderValue::from_static(IMMUTABLE);
        }
        let value = cache_control(bounds, object, tessera_ingest::timestamp::unix_ms());
        axum::http::HeaderValue::from_str(&value).expect("a Cache-Control value is ASCII")
    }

    /// The license actor, when the node has a key-encryption key.
    pub fn license(&self) -> Option<&LicenseRef> {
        self.license.as_ref()
    }

    /// Whether `content` is encrypted as it is served.
    pub fn protects(&self, content: &str) -> bool {
        self.catalog.peek(|c| c.protection_of(content)) != Protection::None
    }

    /// The keys the playlists of `content` name, each from its segment number on: none for
    /// clear content. Key URIs are `/license/CONTENT/KID` (AES-128) and
    /// `/license/clearkey/CONTENT/KID` (cbcs, EME ClearKey).
    pub fn content_keys(&self, content: &str) -> Result<Vec<SegmentKey>, Refusal> {
        let (mode, keys) = self.catalog.peek(|c| {
            (c.protection_of(content), c.protection.get(content).map(|p| p.keys.clone()).unwrap_or_default())
        });
        if mode == Protection::None {
            return Ok(Vec::new());
        }
        if self.license.is_none() {
            return Err(Refusal::unavailable("the content is encrypted and this node has no key-encryption key"));
        }
        if keys.is_empty() {
            return Err(Refusal::unavailable("the content's first key is not made yet"));
        }
        Ok(keys
            .iter()
            .map(|k| match mode {
                Protection::Cbcs => SegmentKey {
                    from_msn: k.from_msn,
                    uri: format!("/license/clearkey/{content}/{}", k.kid),
                    sample_aes: Some(k.kid.to_ascii_lowercase()),
                    drm_tags: k.drm.iter().filter_map(|d| d.hls.as_deref()).collect::<Vec<_>>().join("\n"),
                },
                _ => SegmentKey {
                    from_msn: k.from_msn,
                    uri: format!("/license/{content}/{}", k.kid),
                    sample_aes: None,
                    drm_tags: String::new(),
                },
            })
            .collect())
    }

    /// A content key for this node's own use, from the license actor.
    async fn media_key(&self, content: &str, kid: &str) -> Option<[u8; 16]> {
        let license = self.license.as_ref()?;
        let (content, kid) = (content.to_string(), kid.to_string());
        license.call(|reply| LicenseMsg::MediaKey { content, kid, reply }, ACTOR_PATIENCE).await.flatten()
    }

    /// A file of `content` (`rendition`, `file`) as served: `encrypt` runs once per file
    /// and key, its result cached.
    async fn encrypted(
        &self,
        content: &str,
        (rendition, file): (&str, &str),
        (mode, kid): (Protection, &str),
        data: &Bytes,
        encrypt: impl FnOnce([u8; 16]) -> Result<Bytes, EncryptError>,
    ) -> Result<Bytes, Refusal> {
        let cached =
            (content.to_string(), rendition.to_string(), file.to_string(), format!("{mode:?}/{kid}"), data.len());
        if let Some(d) = self.encrypted.get(&cached) {
            return Ok(d);
        }
        let key = self
            .media_key(content, kid)
            .await
            .ok_or_else(|| Refusal::unavailable("the segment's key is not available on this node"))?;
        let out = encrypt(key).map_err(|e| {
            tracing::error!(content, rendition, file, error = %e, "media could not be encrypted");
            metrics::counter!("tessera_media_encryption_failures_total").increment(1);
            Refusal::unavailable("the media could not be encrypted")
        })?;
        metrics::counter!("tessera_media_encrypted_bytes_total").increment(data.len() as u64);
        self.encrypted.put(cached, out.clone());
        Ok(out)
    }

    /// `data`, segment `msn` (or a part of it) of `content`, as this node serves it:
    /// encrypted when the content is (never in clear then); under cbcs `clear_init` gives
    /// the segment's clear init segment.
    pub async fn protect(
        &self,
        content: &str,
        at: (&str, &str),
        msn: u64,
        data: Bytes,
        clear_init: impl FnOnce() -> Option<Bytes>,
    ) -> Result<Bytes, Refusal> {
        let (mode, kid) =
            self.catalog.peek(|c| (c.protection_of(content), c.key_for(content, msn).map(|k| k.kid.clone())));
        if mode == Protection::None {
            return Ok(data);
        }
        let kid = kid.ok_or_else(|| Refusal::unavailable("no key for this segment on this node"))?;
        match mode {
            Protection::Cbcs => {
                let init = clear_init()
                    .ok_or_else(|| Refusal::unavailable("the segment's init segment is not known on this node"))?;
                self.encrypted(content, at, (mode, &kid), &data, |key| {
                    let key = cbcs_key(&kid, key)?;
                    let (_, tracks) = cmaf::protect_init(&init, &key).map_err(EncryptError::Init)?;
                    cmaf::protect_fragments(&data, &tracks, &key).map_err(EncryptError::Fragments)
                })
                .await
            }
            _ => {
                self.encrypted(content, at, (mode, &kid), &data, |key| {
                    Ok(Bytes::from(aes128::encrypt(&key, &aes128::segment_iv(msn), &data)))
                })
                .await
            }
        }
    }

    /// Init segment `init` of `content`, protected for its cbcs key `kid`
    /// (`init-N-KID.mp4`): `None` if the content is not cbcs or the key not one of its.
    pub async fn protect_init(
        &self,
        content: &str,
        at: (&str, &str),
        kid: &str,
        init: Bytes,
    ) -> Result<Option<Bytes>, Refusal> {
        let (mode, drm) =
            self.catalog.peek(|c| (c.protection_of(content), c.key_by_id(content, kid).map(|k| k.drm.clone())));
        let (Protection::Cbcs, Some(drm)) = (mode, drm) else { return Ok(None) };
        let kid = kid.to_ascii_lowercase();
        // The provider's pssh boxes (Widevine, PlayReady) go in beside the common one.
        let pssh: Vec<Bytes> = drm
            .iter()
            .filter_map(|d| d.pssh.as_deref())
            .filter_map(|p| base64::engine::general_purpose::STANDARD.decode(p).ok().map(Bytes::from))
            .collect();
        let protected = self
            .encrypted(content, at, (mode, &kid), &init, |key| {
                let key = CbcsKey { pssh, ..cbcs_key(&kid, key)? };
                cmaf::protect_init(&init, &key).map(|(init, _)| init).map_err(EncryptError::Init)
            })
            .await?;
        Ok(Some(protected))
    }

    /// For content with signed URLs: checks the viewer's token (its regions too) and
    /// answers the signature its playlist's media URIs carry (`None`: the content does not
    /// sign its URLs).
    pub async fn playlist_access(
        &self,
        content: &str,
        token: Option<String>,
        viewer: Viewer,
    ) -> Result<Option<String>, Refusal> {
        if !self.catalog.peek(|c| c.signed_urls(content)) {
            return Ok(None);
        }
        let Some(license) = &self.license else {
            return Err(Refusal::new(
                503,
                "no_license",
                "the stream signs its URLs and this node has no key-encryption key",
            ));
        };
        let (content, region) = (content.to_string(), self.regions.region_of(viewer.0));
        match license.call(|reply| LicenseMsg::Viewer { content, token, region, reply }, ACTOR_PATIENCE).await {
            Some(Ok(sig)) => Ok(Some(sig)),
            Some(Err(d)) => Err(Refusal::new(d.status(), d.code(), &d)),
            None => Err(Refusal::new(503, "unavailable", "the license service did not answer")),
        }
    }

    /// For content with signed URLs: whether a media request carries a valid signature.
    pub async fn media_access(&self, content: &str, sig: Option<&String>) -> Result<(), Refusal> {
        if !self.catalog.peek(|c| c.signed_urls(content)) {
            return Ok(());
        }
        let (Some(license), Some(sig)) = (&self.license, sig) else {
            return Err(Refusal::new(
                403,
                "url_signature",
                "this URL needs a signature (?sig=...) from the stream's playlist",
            ));
        };
        let (content, sig) = (content.to_string(), sig.clone());
        match license.call(|reply| LicenseMsg::CheckUrl { content, sig, reply }, ACTOR_PATIENCE).await {
            Some(true) => Ok(()),
            _ => Err(Refusal::new(403, "url_signature", "the URL's signature is not valid (or no longer)")),
        }
    }
}

fn cbcs_key(kid: &str, key: [u8; 16]) -> Result<CbcsKey, EncryptError> {
    let id = parse_kid(kid).ok_or_else(|| EncryptError::KeyId(kid.to_string()))?;
    Ok(CbcsKey::new(id, key))
}
