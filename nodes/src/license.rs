//! The node's side of content protection: the license actor's view of the node (catalog,
//! origin edge, clock), and the license endpoint every node serves:
//!
//! `GET /license/live/NAME/KID?token=TOKEN` answers the 16-byte content key `KID` of the
//! stream to a viewer the license actor admits (`application/octet-stream`,
//! `Cache-Control: no-store, private`), or a JSON refusal `{"error": CODE, "message": ...}`
//! with 401 (token missing or invalid), 403 (revoked, not released, region, stream
//! limit) or 404 (no such key). Keys and tokens are never logged.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use ractor::{Actor, ActorRef};
use serde::Deserialize;
use serde_json::json;
use tessera_actors::license::actor::{KeyQuery, LicenseActor, LicenseConfig, LicenseMsg, LicenseNode, Proposal};
use tessera_actors::license::keys::Kek;
use tessera_packager::encrypt::aes128;
use tessera_packager::SegmentKey;
use tessera_raft::{Catalog, Command, Protection, Visibility};

use crate::cluster::ClusterService;
use crate::http::HttpState;
use crate::store::SegmentStore;

/// The license actor's view of this node.
struct NodeView {
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    clock: crate::release::Clock,
}

impl LicenseNode for NodeView {
    fn peek(&self, f: &mut dyn FnMut(&Catalog)) {
        self.cluster.catalog.peek(|c| f(c))
    }

    fn propose(&self, command: Command) -> Proposal {
        let cluster = self.cluster.clone();
        Box::pin(async move { cluster.propose(command).await.map(|_| ()).map_err(|e| e.to_string()) })
    }

    fn origin_edge(&self, name: &str) -> Option<u64> {
        if !self.store.publishing_here(name) {
            return None;
        }
        Some(self.store.held(name).map_or(0, |h| h.last_msn))
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }
}

/// Starts the license actor when the node has a key-encryption key.
pub async fn start(
    kek: Option<Kek>,
    rotation: Duration,
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    clock: crate::release::Clock,
) -> Result<Option<ActorRef<LicenseMsg>>, String> {
    let Some(kek) = kek else {
        tracing::info!(
            "no key-encryption key (--kek-file, TESSERA_KEK): this node makes and hands out no content keys"
        );
        return Ok(None);
    };
    let config = LicenseConfig {
        node: Arc::new(NodeView { cluster, store, clock }),
        kek: Arc::new(kek),
        rotation,
        rotation_lead_segments: 3,
    };
    let (actor, _) = Actor::spawn(None, LicenseActor, config).await.map_err(|e| format!("license actor: {e}"))?;
    tessera_actors::license::actor::tick(actor.clone(), Duration::from_secs(1));
    Ok(Some(actor))
}

#[derive(Deserialize)]
pub struct KeyParams {
    token: Option<String>,
}

fn refusal(status: u16, code: &str, message: impl std::fmt::Display) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let headers = [(header::CACHE_CONTROL, "no-store, private")];
    (status, headers, Json(json!({ "error": code, "message": message.to_string() }))).into_response()
}

/// `GET /license/live/{name}/{kid}`.
pub async fn live_key(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path((name, kid)): Path<(String, String)>,
    Query(p): Query<KeyParams>,
) -> Response {
    let Some(license) = &state.license else {
        return refusal(503, "no_license", "this node has no key-encryption key and hands out no keys");
    };
    let released = matches!(state.gate.live(&name), Visibility::Public);
    let query = KeyQuery { content: format!("live/{name}"), kid, token: p.token, client: remote.ip(), released };
    match ractor::call_t!(license, LicenseMsg::Key, 5_000, query) {
        Ok(Ok(key)) => (
            [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store, private")],
            key.to_vec(),
        )
            .into_response(),
        Ok(Err(denial)) => refusal(denial.status(), denial.code(), &denial),
        Err(e) => {
            tracing::warn!(stream = %name, error = %e, "the license actor did not answer");
            refusal(503, "unavailable", "the license service did not answer")
        }
    }
}

/// Why media of an encrypted stream cannot be served here now (`503`): never in clear.
#[derive(Debug, Clone, Copy)]
pub struct Unavailable(&'static str);

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        refusal(503, "keys_unavailable", self.0)
    }
}

fn unavailable(why: &'static str) -> Unavailable {
    Unavailable(why)
}

/// The keys a live stream's playlists name: none for a clear stream.
pub fn playlist_keys(state: &HttpState, name: &str) -> Result<Vec<SegmentKey>, Unavailable> {
    let content = format!("live/{name}");
    let (mode, keys) = state
        .cluster
        .catalog
        .peek(|c| (c.protection_of(&content), c.protection.get(&content).map(|p| p.keys.clone()).unwrap_or_default()));
    match mode {
        Protection::None => Ok(Vec::new()),
        Protection::Cbcs => Err(unavailable("cbcs streams are not served by this version")),
        Protection::Aes128 if state.license.is_none() => {
            Err(unavailable("the stream is encrypted and this node has no key-encryption key"))
        }
        Protection::Aes128 if keys.is_empty() => Err(unavailable("the stream's first key is not made yet")),
        Protection::Aes128 => Ok(keys
            .iter()
            .map(|k| SegmentKey { from_msn: k.from_msn, uri: format!("/license/live/{name}/{}", k.kid) })
            .collect()),
    }
}

/// Media encrypted for serving, by stream, rendition and file: a part is encrypted once
/// however many viewers ask for it. The oldest entries leave first.
#[derive(Default)]
pub struct EncryptedCache {
    entries: std::sync::Mutex<(HashMap<CacheKey, Bytes>, VecDeque<CacheKey>)>,
}

/// Stream, rendition, file, key id and clear length: a stream that starts its numbering
/// again (deleted and made anew) does not get another's bytes.
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

/// `data`, a segment or a part of segment `msn` of live stream `name` (its `rendition` and
/// `file`), as this node serves it: encrypted when the stream is (never in clear then).
pub async fn protect(
    state: &HttpState,
    (name, rendition, file): (&str, &str, &str),
    msn: u64,
    data: Bytes,
) -> Result<Bytes, Unavailable> {
    let content = format!("live/{name}");
    let (mode, kid) =
        state.cluster.catalog.peek(|c| (c.protection_of(&content), c.key_for(&content, msn).map(|k| k.kid.clone())));
    match mode {
        Protection::None => return Ok(data),
        Protection::Cbcs => return Err(unavailable("cbcs streams are not served by this version")),
        Protection::Aes128 => {}
    }
    let (Some(license), Some(kid)) = (&state.license, kid) else {
        return Err(unavailable("no key for this segment on this node"));
    };
    let cached = (name.to_string(), rendition.to_string(), file.to_string(), kid.clone(), data.len());
    if let Some(d) = state.encrypted.get(&cached) {
        return Ok(d);
    }
    let key = license.call(|reply| LicenseMsg::MediaKey { content, kid, reply }, Some(Duration::from_secs(5))).await;
    match key {
        Ok(ractor::rpc::CallResult::Success(Some(key))) => {
            let encrypted = Bytes::from(aes128::encrypt(&key, &aes128::segment_iv(msn), &data));
            metrics::counter!("tessera_media_encrypted_bytes_total").increment(data.len() as u64);
            state.encrypted.put(cached, encrypted.clone());
            Ok(encrypted)
        }
        _ => Err(unavailable("the segment's key is not available on this node")),
    }
}

/// A playlist for a viewer who presented `token`: every URI the viewer must follow (the
/// multivariant's renditions, the media playlist's keys) carries it on. A token with
/// characters a URL would need escaped is not echoed.
pub fn with_token(body: String, token: Option<&str>) -> String {
    let Some(token) = token.filter(|t| {
        !t.is_empty() && t.len() <= 4096 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }) else {
        return body;
    };
    let mut out = String::with_capacity(body.len() + 256);
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-KEY:METHOD=AES-128,URI=\"") {
            let end = rest.find('"').unwrap_or(rest.len());
            out.push_str(&format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{}?token={token}{}", &rest[..end], &rest[end..]));
        } else if !line.starts_with('#') && !line.is_empty() && line.ends_with(".m3u8") {
            out.push_str(&format!("{line}?token={token}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The token a viewer presents: `?token=`, or the `tessera_token` cookie.
pub fn viewer_token(query: &HashMap<String, String>, headers: &axum::http::HeaderMap) -> Option<String> {
    if let Some(t) = query.get("token") {
        return Some(t.clone());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("tessera_token=").map(str::to_string))
}

/// For a stream with signed URLs: checks the viewer's token and answers the signature its
/// playlist's media URIs carry (`None`: the stream does not sign its URLs).
pub async fn playlist_access(state: &HttpState, name: &str, token: Option<String>) -> Result<Option<String>, Response> {
    let content = format!("live/{name}");
    if !state.cluster.catalog.peek(|c| c.signed_urls(&content)) {
        return Ok(None);
    }
    let Some(license) = &state.license else {
        return Err(refusal(503, "no_license", "the stream signs its URLs and this node has no key-encryption key"));
    };
    match license.call(|reply| LicenseMsg::Viewer { content, token, reply }, Some(Duration::from_secs(5))).await {
        Ok(ractor::rpc::CallResult::Success(Ok(sig))) => Ok(Some(sig)),
        Ok(ractor::rpc::CallResult::Success(Err(d))) => Err(refusal(d.status(), d.code(), &d)),
        _ => Err(refusal(503, "unavailable", "the license service did not answer")),
    }
}

/// For a stream with signed URLs: whether a media request carries a valid signature.
pub async fn media_access(state: &HttpState, name: &str, sig: Option<&String>) -> Result<(), Response> {
    let content = format!("live/{name}");
    if !state.cluster.catalog.peek(|c| c.signed_urls(&content)) {
        return Ok(());
    }
    let (Some(license), Some(sig)) = (&state.license, sig) else {
        return Err(refusal(403, "url_signature", "this URL needs a signature (?sig=...) from the stream's playlist"));
    };
    let sig = sig.clone();
    match license.call(|reply| LicenseMsg::CheckUrl { content, sig, reply }, Some(Duration::from_secs(5))).await {
        Ok(ractor::rpc::CallResult::Success(true)) => Ok(()),
        _ => Err(refusal(403, "url_signature", "the URL's signature is not valid (or no longer)")),
    }
}

/// A media playlist whose media URIs (init segments, parts, segments, the preload hint)
/// carry the URL signature: the same for every viewer in the signing window.
pub fn with_signature(body: String, sig: &str) -> String {
    let media = |uri: &str| uri.ends_with(".m4s") || uri.ends_with(".mp4");
    let mut out = String::with_capacity(body.len() + 1024);
    for line in body.lines() {
        if let Some((head, rest)) = line.split_once("URI=\"") {
            let end = rest.find('"').unwrap_or(rest.len());
            if media(&rest[..end]) {
                out.push_str(&format!("{head}URI=\"{}?sig={sig}{}", &rest[..end], &rest[end..]));
            } else {
                out.push_str(line);
            }
        } else if !line.starts_with('#') && media(line) {
            out.push_str(&format!("{line}?sig={sig}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_uris_carry_the_signature_and_key_uris_the_token() {
        let playlist = "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"/license/live/a/k\",KEYFORMAT=\"identity\"\n#EXT-X-PART:DURATION=0.2,URI=\"part-4.m4s\",INDEPENDENT=YES\n#EXTINF:2.0,\nseg-1.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-5.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=1\n";
        let signed = with_token(with_signature(playlist.to_string(), "S1g"), Some("T0k.en"));
        assert!(signed.contains("#EXT-X-MAP:URI=\"init-0.mp4?sig=S1g\"\n"), "{signed}");
        assert!(signed.contains("URI=\"part-4.m4s?sig=S1g\",INDEPENDENT=YES\n"), "{signed}");
        assert!(signed.contains("\nseg-1.m4s?sig=S1g\n"), "{signed}");
        assert!(signed.contains("URI=\"part-5.m4s?sig=S1g\"\n"), "{signed}");
        assert!(signed.contains("URI=\"/license/live/a/k?token=T0k.en\",KEYFORMAT"), "{signed}");
        assert!(signed.contains("URI=\"../480p/index.m3u8\",LAST-MSN=1"), "reports are left alone: {signed}");
        // A token a URL would need escaped is not echoed into the playlist.
        assert_eq!(with_token(playlist.to_string(), Some("a\"b")), playlist);
        let mv = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n";
        assert!(with_token(mv.to_string(), Some("tok")).contains("\nsrc/index.m3u8?token=tok\n"));
    }
}
