//! The node's side of content protection: the license actor's view of the node (catalog,
//! origin edge, clock), the license endpoints every node serves, access to streams with
//! signed URLs, and ([`media`]) encrypted media as served.
//!
//! - `GET /license/live/NAME/KID?token=TOKEN` answers the 16-byte content key `KID` of the
//!   stream (`application/octet-stream`): the key URI of HLS AES-128.
//! - `POST /license/clearkey/live/NAME[/KID]?token=TOKEN` answers an EME ClearKey license
//!   request (JSON key ids in, a JSON Web Key set out) for a `cbcs` stream.
//!
//! Both only to a viewer the license actor admits, with `Cache-Control: no-store,
//! private`; otherwise a JSON refusal `{"error": CODE, "message": ...}` with 401 (token
//! missing or invalid), 403 (revoked, not released, region, stream limit) or 404 (no such
//! key). Keys and tokens are never logged.

mod media;

pub use media::{
    content_keys, playlist_keys, protect, protect_content, protect_init, protect_init_content, EncryptedCache,
    Unavailable,
};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ractor::{Actor, ActorRef};
use serde::Deserialize;
use serde_json::json;
use tessera_license::actor::{KeyQuery, LicenseActor, LicenseConfig, LicenseMsg, LicenseNode, Proposal, RemoteCount};
use tessera_license::clearkey;
use tessera_license::decision::StreamClaim;
use tessera_license::keys::{parse_kid, Kek};
use tessera_raft::{Catalog, Command, NodeId, Visibility};

use crate::http::HttpState;
use crate::store::SegmentStore;
use tessera_cluster::ClusterService;

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

    fn node_id(&self) -> NodeId {
        self.cluster.identity.id
    }

    fn count_at(&self, node: NodeId, claim: StreamClaim) -> RemoteCount {
        let cluster = self.cluster.clone();
        Box::pin(async move { tessera_license::counting::count_at(&cluster, node, claim, COUNTING_PATIENCE).await })
    }
}

/// How long another node has to count a viewer's stream before the next is asked.
const COUNTING_PATIENCE: Duration = Duration::from_millis(750);

/// Counts the viewers' streams this node counts for the cluster, and starts the license
/// actor when the node has a key-encryption key.
pub async fn start(
    kek: Option<Kek>,
    rotation: Duration,
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    clock: crate::release::Clock,
) -> Result<Option<ActorRef<LicenseMsg>>, ractor::SpawnErr> {
    let streams = Arc::default();
    tessera_license::counting::serve(&cluster, Arc::clone(&streams));
    let Some(kek) = kek else {
        tracing::info!(
            "no key-encryption key (--kek-file, TESSERA_KEK): this node makes and hands out no content keys"
        );
        return Ok(None);
    };
    let config = LicenseConfig {
        streams,
        node: Arc::new(NodeView { cluster, store, clock }),
        kek: Arc::new(kek),
        rotation,
        rotation_lead_segments: 3,
    };
    let (actor, _) = Actor::spawn(None, LicenseActor, config).await?;
    tessera_license::actor::tick(actor.clone(), Duration::from_secs(1));
    Ok(Some(actor))
}

#[derive(Deserialize)]
pub struct KeyParams {
    token: Option<String>,
}

pub(crate) fn refusal(status: u16, code: &str, message: impl std::fmt::Display) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let headers = [(header::CACHE_CONTROL, "no-store, private")];
    (status, headers, Json(json!({ "error": code, "message": message.to_string() }))).into_response()
}

/// Live stream `name` or VOD asset `asset`: its content id and whether its release lets
/// this node serve it.
fn content_of(state: &HttpState, path: &[(String, String)]) -> Option<(String, bool)> {
    let find = |k: &str| path.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(name) = find("name") {
        let released = matches!(state.gate.live(&name), Visibility::Public);
        return Some((format!("live/{name}"), released));
    }
    let content = format!("vod/{}", find("asset")?);
    let released = matches!(state.gate.content(&content), Visibility::Public);
    Some((content, released))
}

/// Asks the license actor for key `kid` of `content` on behalf of a viewer.
async fn viewer_key(
    state: &HttpState,
    (content, released): (String, bool),
    kid: String,
    token: Option<String>,
    client: SocketAddr,
) -> Result<[u8; 16], Response> {
    let Some(license) = &state.license else {
        return Err(refusal(503, "no_license", "this node has no key-encryption key and hands out no keys"));
    };
    let query = KeyQuery { content: content.clone(), kid, token, client: client.ip(), released };
    match ractor::call_t!(license, LicenseMsg::Key, 5_000, query) {
        Ok(Ok(key)) => Ok(key),
        Ok(Err(denial)) => Err(refusal(denial.status(), denial.code(), &denial)),
        Err(e) => {
            tracing::warn!(%content, error = %e, "the license actor did not answer");
            Err(refusal(503, "unavailable", "the license service did not answer"))
        }
    }
}

/// `GET /license/live/{name}/{kid}` and `GET /license/vod/{asset}/{kid}`.
pub async fn content_key(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query<KeyParams>,
) -> Response {
    let (Some(content), Some(kid)) =
        (content_of(&state, &path), path.iter().find(|(k, _)| k == "kid").map(|(_, v)| v.clone()))
    else {
        return refusal(404, "no_such_content", "no stream or asset named");
    };
    match viewer_key(&state, content, kid, p.token, remote).await {
        Ok(key) => (
            [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store, private")],
            key.to_vec(),
        )
            .into_response(),
        Err(refused) => refused,
    }
}

/// `POST /license/clearkey/live/{name}` and `/license/clearkey/vod/{asset}` (and with
/// `/{kid}`, the key URI a `cbcs` playlist names): every key id the request names, or the
/// first refusal.
pub async fn clearkey_license(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query<KeyParams>,
    body: axum::body::Bytes,
) -> Response {
    let Some(content) = content_of(&state, &path) else {
        return refusal(404, "no_such_content", "no stream or asset named");
    };
    let kids = match clearkey::requested_kids(&body) {
        Ok(kids) => kids,
        Err(e) => {
            tracing::info!(content = %content.0, client = %remote, error = %e, "malformed ClearKey license request");
            metrics::counter!("tessera_license_requests_total", "outcome" => "malformed").increment(1);
            return refusal(400, "malformed", e);
        }
    };
    let mut keys = Vec::with_capacity(kids.len());
    for kid in kids {
        let id = parse_kid(&kid).expect("requested_kids answers 32 hex digits");
        match viewer_key(&state, content.clone(), kid, p.token.clone(), remote).await {
            Ok(key) => keys.push((id, key)),
            Err(refused) => return refused,
        }
    }
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store, private")],
        clearkey::response(&keys),
    )
        .into_response()
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
        if let Some((head, rest)) = line.strip_prefix("#EXT-X-KEY:").and_then(|l| l.split_once("URI=\"")) {
            let end = rest.find('"').unwrap_or(rest.len());
            out.push_str(&format!("#EXT-X-KEY:{head}URI=\"{}?token={token}{}", &rest[..end], &rest[end..]));
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
