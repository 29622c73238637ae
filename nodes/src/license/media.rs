//! Media of encrypted streams as this node serves it: the keys its playlists name, and its
//! segments, parts and init segments encrypted on the way out, never in clear.
//!
//! The store holds clear media (what the packager wrote, what the relay carries); each
//! node encrypts what it serves, once per file, with the key the catalog gives the
//! segment's number:
//! - **AES-128**: the whole file, IV = segment number ([`aes128`]).
//! - **cbcs**: samples in place, each key with its own init segment `init-N-KID.mp4` naming
//!   it ([`cmaf`]); the same bytes on every node, so a CDN may mix them.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tessera_license::actor::LicenseMsg;
use tessera_license::keys::parse_kid;
use tessera_packager::encrypt::aes128;
use tessera_packager::encrypt::cmaf::{self, CbcsKey};
use tessera_packager::SegmentKey;
use tessera_raft::Protection;

use super::refusal;
use crate::http::HttpState;

/// Why media of an encrypted stream cannot be served here now (`503`): never in clear.
#[derive(Debug, Clone, Copy)]
pub struct Unavailable(&'static str);

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        refusal(503, "keys_unavailable", self.0)
    }
}

/// The keys a live stream's playlists name: none for a clear stream.
pub fn playlist_keys(state: &HttpState, name: &str) -> Result<Vec<SegmentKey>, Unavailable> {
    content_keys(state, &format!("live/{name}"))
}

/// The keys the playlists of `content` (`live/NAME` or `vod/ASSET`) name, each from its
/// segment number on: none for clear content. Key URIs are `/license/CONTENT/KID` (AES-128)
/// and `/license/clearkey/CONTENT/KID` (cbcs, EME ClearKey).
pub fn content_keys(state: &HttpState, content: &str) -> Result<Vec<SegmentKey>, Unavailable> {
    let (mode, keys) = state
        .cluster
        .catalog
        .peek(|c| (c.protection_of(content), c.protection.get(content).map(|p| p.keys.clone()).unwrap_or_default()));
    if mode == Protection::None {
        return Ok(Vec::new());
    }
    if state.license.is_none() {
        return Err(Unavailable("the stream is encrypted and this node has no key-encryption key"));
    }
    if keys.is_empty() {
        return Err(Unavailable("the content's first key is not made yet"));
    }
    Ok(keys
        .iter()
        .map(|k| match mode {
            Protection::Cbcs => SegmentKey {
                from_msn: k.from_msn,
                uri: format!("/license/clearkey/{content}/{}", k.kid),
                sample_aes: Some(k.kid.to_ascii_lowercase()),
            },
            _ => SegmentKey { from_msn: k.from_msn, uri: format!("/license/{content}/{}", k.kid), sample_aes: None },
        })
        .collect())
}

/// Media encrypted for serving, by stream, rendition and file: a file is encrypted once
/// however many viewers ask for it. The oldest entries leave first.
#[derive(Default)]
pub struct EncryptedCache {
    entries: std::sync::Mutex<(HashMap<CacheKey, Bytes>, VecDeque<CacheKey>)>,
}

/// Content, rendition, file, protection and key id, and clear length: a stream that starts
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

/// A content key for this node's own use, from the license actor.
async fn media_key(state: &HttpState, content: &str, kid: &str) -> Option<[u8; 16]> {
    let license = state.license.as_ref()?;
    let (content, kid) = (content.to_string(), kid.to_string());
    match license.call(|reply| LicenseMsg::MediaKey { content, kid, reply }, Some(Duration::from_secs(5))).await {
        Ok(ractor::rpc::CallResult::Success(key)) => key,
        _ => None,
    }
}

/// A file of `content` (`rendition`, `file`) as served: `encrypt` runs once per file and
/// key, its result cached.
async fn encrypted(
    state: &HttpState,
    content: &str,
    (rendition, file): (&str, &str),
    (mode, kid): (Protection, &str),
    data: &Bytes,
    encrypt: impl FnOnce([u8; 16]) -> Result<Bytes, String>,
) -> Result<Bytes, Unavailable> {
    let cached = (content.to_string(), rendition.to_string(), file.to_string(), format!("{mode:?}/{kid}"), data.len());
    if let Some(d) = state.encrypted.get(&cached) {
        return Ok(d);
    }
    let key =
        media_key(state, content, kid).await.ok_or(Unavailable("the segment's key is not available on this node"))?;
    let out = encrypt(key).map_err(|e| {
        tracing::error!(content, rendition, file, error = %e, "media could not be encrypted");
        metrics::counter!("tessera_media_encryption_failures_total").increment(1);
        Unavailable("the media could not be encrypted")
    })?;
    metrics::counter!("tessera_media_encrypted_bytes_total").increment(data.len() as u64);
    state.encrypted.put(cached, out.clone());
    Ok(out)
}

fn cbcs_key(kid: &str, key: [u8; 16]) -> Result<CbcsKey, String> {
    let kid = parse_kid(kid).ok_or_else(|| format!("key id {kid:?} is not 32 hex digits"))?;
    Ok(CbcsKey::new(kid, key))
}

/// `data`, a segment or a part of segment `msn` of live stream `name` (its `rendition` and
/// `file`), as this node serves it: encrypted when the stream is (never in clear then).
pub async fn protect(
    state: &HttpState,
    (name, rendition, file): (&str, &str, &str),
    msn: u64,
    data: Bytes,
) -> Result<Bytes, Unavailable> {
    let clear_init = || state.store.init_of(name, rendition, msn).ok().map(|(_, init)| init);
    protect_content(state, &format!("live/{name}"), (rendition, file), msn, data, clear_init).await
}

/// `data`, segment `msn` (or a part of it) of `content`, as this node serves it; under
/// cbcs `clear_init` gives the segment's clear init segment.
pub async fn protect_content(
    state: &HttpState,
    content: &str,
    at: (&str, &str),
    msn: u64,
    data: Bytes,
    clear_init: impl FnOnce() -> Option<Bytes>,
) -> Result<Bytes, Unavailable> {
    let (mode, kid) =
        state.cluster.catalog.peek(|c| (c.protection_of(content), c.key_for(content, msn).map(|k| k.kid.clone())));
    if mode == Protection::None {
        return Ok(data);
    }
    let kid = kid.ok_or(Unavailable("no key for this segment on this node"))?;
    match mode {
        Protection::Cbcs => {
            let init = clear_init().ok_or(Unavailable("the segment's init segment is not known on this node"))?;
            encrypted(state, content, at, (mode, &kid), &data, |key| {
                let key = cbcs_key(&kid, key)?;
                let (_, tracks) = cmaf::protect_init(&init, &key).map_err(|e| format!("init segment: {e}"))?;
                cmaf::protect_fragments(&data, &tracks, &key).map_err(|e| e.to_string())
            })
            .await
        }
        _ => {
            encrypted(state, content, at, (mode, &kid), &data, |key| {
                Ok(Bytes::from(aes128::encrypt(&key, &aes128::segment_iv(msn), &data)))
            })
            .await
        }
    }
}

/// Init segment `init` of a `cbcs` stream's rendition, protected for key `kid`
/// (`init-N-KID.mp4`): `None` if the key is not one of the stream's.
pub async fn protect_init(
    state: &HttpState,
    (name, rendition, file): (&str, &str, &str),
    kid: &str,
    init: Bytes,
) -> Result<Option<Bytes>, Unavailable> {
    protect_init_content(state, &format!("live/{name}"), (rendition, file), kid, init).await
}

/// Init segment `init` of `content`, protected for its cbcs key `kid`: `None` if the
/// content is not cbcs or the key not one of its.
pub async fn protect_init_content(
    state: &HttpState,
    content: &str,
    at: (&str, &str),
    kid: &str,
    init: Bytes,
) -> Result<Option<Bytes>, Unavailable> {
    let (mode, known) = state.cluster.catalog.peek(|c| (c.protection_of(content), c.key_by_id(content, kid).is_some()));
    if mode != Protection::Cbcs || !known {
        return Ok(None);
    }
    let kid = kid.to_ascii_lowercase();
    let protected = encrypted(state, content, at, (mode, &kid), &init, |key| {
        let key = cbcs_key(&kid, key)?;
        cmaf::protect_init(&init, &key).map(|(init, _)| init).map_err(|e| e.to_string())
    })
    .await?;
    Ok(Some(protected))
}
