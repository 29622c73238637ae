//! The live origin's HTTP side: LL-HLS playlists, init segments, parts and segments of
//! every live stream, whether published here or followed from another node.
//!
//! URLs, under `/live/NAME/`:
//! - `index.m3u8`: multivariant playlist (every rendition of the ladder); `dvr.m3u8`, the
//!   same naming each rendition's DVR playlist
//! - `RENDITION/index.m3u8`: media playlist (`_HLS_msn`, `_HLS_part`, `_HLS_skip`), where
//!   RENDITION is `src` (the passthrough) or a transcoded rung (`720p`, ...);
//!   `RENDITION/dvr.m3u8`, its DVR window
//! - `RENDITION/init-N.mp4`, `RENDITION/part-N.m4s`, `RENDITION/seg-N.m4s`: media
//!
//! Every request asks the release gate first (gated content answers as unknown content
//! does), then the stream's region rule (for the viewer a trusted proxy names, if any),
//! then its protection (signed URLs, keys); media of an encrypted stream is encrypted on
//! its way out. A blocking request is checked again when it is released.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tessera_cluster::api::ApiError;
use tessera_license::cache::Object;
use tessera_license::gate::ReleaseGate;
use tessera_license::serving::MediaProtection;
use tessera_license::urls::{viewer_token, with_signature, with_token, PlaybackParams};
use tessera_license::viewer::Viewer;
use tessera_packager::Directives;
use tessera_storage::count_lookup;

use crate::relay::{Followers, MediaFile};
use crate::store::{ChainedBytes, SegmentStore, StoreError};

/// What the live handlers share.
pub struct LiveState {
    pub store: Arc<SegmentStore>,
    /// Streams whose origin is another node, followed while they have viewers here.
    pub followers: Arc<Followers>,
    /// What a scheduled release lets this node serve.
    pub gate: ReleaseGate,
    /// Protected content as this node serves it (keys, encryption, signed URLs).
    pub protection: Arc<MediaProtection>,
}

const PLAYLIST: &str = "application/vnd.apple.mpegurl";

/// The document of the live routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(multivariant, dvr_multivariant, rendition_file))]
pub struct LiveApi;

/// The live routes.
pub fn router(state: Arc<LiveState>) -> Router {
    Router::new()
        .route("/live/{name}/index.m3u8", get(multivariant))
        .route("/live/{name}/dvr.m3u8", get(dvr_multivariant))
        .route("/live/{name}/{rendition}/{file}", get(rendition_file))
        .with_state(state)
}

fn error(e: StoreError) -> Response {
    let status = match e {
        StoreError::NotFound => StatusCode::NOT_FOUND,
        StoreError::BadRequest(_) => StatusCode::BAD_REQUEST,
        StoreError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, [(header::CACHE_CONTROL, "no-store")], format!("{e}\n")).into_response()
}

fn bad_request(msg: &'static str) -> Response {
    error(StoreError::BadRequest(msg))
}

fn block_timeout(state: &LiveState, name: &str) -> Duration {
    Duration::from_secs(3 * state.store.target_duration(name).unwrap_or(2))
}

fn record_release(waited_for: Option<Instant>, what: &'static str) {
    if let Some(at) = waited_for {
        metrics::histogram!("tessera_part_publish_to_response_seconds", "what" => what)
            .record(at.elapsed().as_secs_f64());
    }
}

/// A live stream's multivariant playlist
///
/// Every rendition of its ladder (the passthrough `src` and the transcoded rungs) with
/// bandwidth, codecs and resolution. A protected stream's viewer passes `?token=`, which the
/// playlist carries on.
#[utoipa::path(get, path = "/live/{name}/index.m3u8", tag = "playback", operation_id = "live_multivariant", security((), ("playback" = [])),
    params(("name" = String, Path, description = "The stream"), PlaybackParams),
    responses((status = 200, description = "The playlist", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "No such stream, or not released here")))]
async fn multivariant(
    State(state): State<Arc<LiveState>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Response {
    metrics::counter!("tessera_playlist_requests_total", "kind" => "multivariant", "blocking" => "no").increment(1);
    multivariant_naming(&state, &name, "index.m3u8", (&q, &headers, viewer)).await
}

/// The multivariant playlist of the stream's DVR window
///
/// The same renditions, each naming its DVR playlist.
#[utoipa::path(get, path = "/live/{name}/dvr.m3u8", tag = "playback", operation_id = "live_dvr_multivariant", security((), ("playback" = [])),
    params(("name" = String, Path, description = "The stream"), PlaybackParams),
    responses((status = 200, description = "The playlist", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, description = "No such stream")))]
async fn dvr_multivariant(
    State(state): State<Arc<LiveState>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Response {
    metrics::counter!("tessera_playlist_requests_total", "kind" => "dvr-multivariant", "blocking" => "no").increment(1);
    multivariant_naming(&state, &name, "dvr.m3u8", (&q, &headers, viewer)).await
}

/// Gated content answers as unknown content does.
fn gated(state: &LiveState, name: &str) -> bool {
    matches!(state.gate.live(name), tessera_raft::Visibility::Gated(_))
}

async fn multivariant_naming(
    state: &LiveState,
    name: &str,
    playlist: &str,
    (q, headers, viewer): (&HashMap<String, String>, &HeaderMap, Viewer),
) -> Response {
    if gated(state, name) {
        return error(StoreError::NotFound);
    }
    if let Err(refused) = state.protection.region_access(&live(name), viewer, "playlist") {
        return refused.into_response();
    }
    if let Err(refused) = state.protection.playlist_access(&live(name), viewer_token(q, headers), viewer).await {
        return refused.into_response();
    }
    let token = q.get("token");
    state.followers.ensure(name).await;
    match state.store.multivariant(name, playlist, block_timeout(state, name)).await {
        Ok(body) => {
            let body = with_token(body, token.map(String::as_str));
            let cache = state.protection.cache_control(&live(name), Object::Playlist { max_age_s: 0 });
            ([(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST)), (header::CACHE_CONTROL, cache)], body)
                .into_response()
        }
        Err(e) => error(e),
    }
}

/// A rendition's media playlist, init segment, part or segment
///
/// `index.m3u8` (LL-HLS: `_HLS_msn` and `_HLS_part` hold the request until that part
/// exists, `_HLS_skip=YES|v2` asks for a delta update), `dvr.m3u8`, `init-N.mp4`,
/// `part-N.m4s` and `seg-N.m4s` (CMAF fMP4; a part or segment not yet made is held until
/// it is, as the preload hint promises).
#[utoipa::path(get, path = "/live/{name}/{rendition}/{file}", tag = "playback", operation_id = "live_file", security((), ("playback" = [])),
    params(("name" = String, Path, description = "The stream"),
        ("rendition" = String, Path, description = "`src` or a rung (`720p`, ...)"),
        ("file" = String, Path, description = "`index.m3u8`, `dvr.m3u8`, `init-N.mp4`, `part-N.m4s` or `seg-N.m4s`"),
        ("_HLS_msn" = Option<u64>, Query, description = "Block until this media sequence number"),
        ("_HLS_part" = Option<u64>, Query, description = "... and this part of it"),
        ("_HLS_skip" = Option<String>, Query, description = "`YES` or `v2`: a delta update"),
        PlaybackParams),
    responses((status = 200, description = "A playlist (application/vnd.apple.mpegurl) or CMAF media (video/mp4)", body = Vec<u8>),
        (status = 400, description = "A malformed delivery directive", content_type = "text/plain", body = String),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, description = "No such file"),
        (status = 503, description = "A blocking request the stream did not answer in time")))]
async fn rendition_file(
    State(state): State<Arc<LiveState>>,
    Path((name, rendition, file)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Response {
    if rendition.is_empty()
        || rendition.len() > 32
        || !rendition.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return error(StoreError::NotFound);
    }
    if gated(&state, &name) {
        return error(StoreError::NotFound);
    }
    let playlist = file == "index.m3u8" || file == "dvr.m3u8";
    let what = if playlist { "playlist" } else { "media" };
    if let Err(refused) = state.protection.region_access(&live(&name), viewer, what) {
        return refused.into_response();
    }
    state.followers.ensure(&name).await;
    let rendition = rendition.as_str();
    // With signed URLs: a playlist needs the viewer's token, and gives the media signature.
    let sig = if playlist {
        match state.protection.playlist_access(&live(&name), viewer_token(&q, &headers), viewer).await {
            Ok(sig) => sig,
            Err(refused) => return refused.into_response(),
        }
    } else {
        if let Err(refused) = state.protection.media_access(&live(&name), q.get("sig")).await {
            return refused.into_response();
        }
        None
    };
    if playlist && state.store.target_duration(&name).is_some() {
        let agent = headers.get(header::USER_AGENT).map(HeaderValue::as_bytes);
        state.store.viewers.seen(&name, crate::store::viewers::client_key(viewer.0, agent), Instant::now());
    }
    if file == "index.m3u8" {
        return media_playlist(&state, (&name, rendition), &q, sig.as_deref(), viewer).await;
    }
    if file == "dvr.m3u8" {
        metrics::counter!("tessera_playlist_requests_total", "kind" => "dvr", "blocking" => "no").increment(1);
        let keys = match state.protection.content_keys(&live(&name)) {
            Ok(k) => k,
            Err(r) => return r.into_response(),
        };
        return match state.store.dvr_playlist(&name, rendition, state.gate.live_released_at(&name), &keys) {
            Ok(body) => {
                let body = match &sig {
                    Some(sig) => with_signature(body, sig),
                    None => body,
                };
                let body = with_token(body, q.get("token").map(String::as_str));
                let cache = state.protection.cache_control(&live(&name), Object::Playlist { max_age_s: 0 });
                ([(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST)), (header::CACHE_CONTROL, cache)], body)
                    .into_response()
            }
            Err(e) => error(e),
        };
    }
    media_file(&state, &name, rendition, &file, viewer).await
}

/// An init segment, part or segment of a rendition, as this node serves it: from the store,
/// else (finished files) from this node's disk, the archive or another node; encrypted
/// when the stream is.
async fn media_file(state: &LiveState, name: &str, rendition: &str, file: &str, viewer: Viewer) -> Response {
    let Some(requested) = MediaFile::parse(file) else { return error(StoreError::NotFound) };
    let cache = state.protection.cache_control(&live(name), Object::Media);
    let media = |data: ChainedBytes, kind: &'static str| media(data, kind, cache.clone());
    match (requested.file, requested.kid) {
        (MediaFile::Init(id), kid) => {
            let Ok(id) = u32::try_from(id) else { return error(StoreError::NotFound) };
            let found = match state.store.init(name, rendition, id) {
                Err(StoreError::NotFound) => {
                    count_lookup("live", false);
                    past_file(state, name, rendition, requested.file).await.ok_or(StoreError::NotFound)
                }
                found => {
                    count_lookup("live", found.is_ok());
                    found
                }
            };
            match (found, kid) {
                (Ok(d), None) => media(d.into(), "video/mp4"),
                // `init-N-KID.mp4`: protected for one of a cbcs stream's keys.
                (Ok(d), Some(kid)) => match state.protection.protect_init(&live(name), (rendition, file), kid, d).await
                {
                    Ok(Some(d)) => media(d.into(), "video/mp4"),
                    Ok(None) => error(StoreError::NotFound),
                    Err(r) => r.into_response(),
                },
                (Err(e), _) => error(e),
            }
        }
        (MediaFile::Part(seq), None) => {
            match state.store.part(name, rendition, seq, block_timeout(state, name)).await {
                // Taken down, or its rights changed, while the request waited.
                Ok(_) if gated(state, name) => error(StoreError::NotFound),
                Ok((d, msn, waited)) => {
                    if let Err(refused) = recheck(state, name, viewer, waited, "media") {
                        return refused.into_response();
                    }
                    match protect(state, name, (rendition, file), msn, d).await {
                        Ok(d) => {
                            record_release(waited, "part");
                            media(d.into(), "video/iso.segment")
                        }
                        Err(r) => r.into_response(),
                    }
                }
                Err(e) => error(e),
            }
        }
        (MediaFile::Segment(msn), None) => {
            let found = match state.store.segment(name, rendition, msn) {
                Err(StoreError::NotFound) => {
                    count_lookup("live", false);
                    past_file(state, name, rendition, requested.file)
                        .await
                        .map(ChainedBytes::from)
                        .ok_or(StoreError::NotFound)
                }
                found => {
                    count_lookup("live", found.is_ok());
                    found
                }
            };
            match found {
                // A clear segment goes out as its parts, chained: never copied into one buffer.
                Ok(d) if !state.protection.protects(&live(name)) => media(d, "video/iso.segment"),
                Ok(d) => match protect(state, name, (rendition, file), msn, d.to_bytes()).await {
                    Ok(d) => media(d.into(), "video/iso.segment"),
                    Err(r) => r.into_response(),
                },
                Err(e) => error(e),
            }
        }
        _ => error(StoreError::NotFound),
    }
}

/// A media file's answer: its bytes as they are held, for caches as long as its rights allow.
fn media(data: ChainedBytes, kind: &'static str, cache: HeaderValue) -> Response {
    let headers = [(header::CONTENT_TYPE, HeaderValue::from_static(kind)), (header::CACHE_CONTROL, cache)];
    let body = match data.chunks() {
        // One buffer (a part, an init segment, a file from disk): as it is.
        [one] => Body::from(one.clone()),
        _ => Body::new(ChainedBody::from(data)),
    };
    (headers, body).into_response()
}

/// A response body made of chunks, sent one after another, its length known up front.
struct ChainedBody {
    chunks: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl From<ChainedBytes> for ChainedBody {
    fn from(data: ChainedBytes) -> Self {
        ChainedBody { remaining: data.len() as u64, chunks: data.chunks().iter().cloned().collect() }
    }
}

impl http_body::Body for ChainedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let next = this.chunks.pop_front().map(|chunk| {
            this.remaining -= chunk.len() as u64;
            Ok(http_body::Frame::data(chunk))
        });
        std::task::Poll::Ready(next)
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// A request that waited (a blocking reload, a part not made yet) is checked again when
/// it is released: the stream's rights may have changed meanwhile.
fn recheck(
    state: &LiveState,
    name: &str,
    viewer: Viewer,
    waited: Option<Instant>,
    what: &'static str,
) -> Result<(), tessera_license::serving::Refusal> {
    match waited {
        Some(_) => state.protection.region_access(&live(name), viewer, what),
        None => Ok(()),
    }
}

/// The content id of live stream `name`.
fn live(name: &str) -> String {
    format!("live/{name}")
}

/// Part or segment `msn` of live stream `name` as this node serves it (encrypted when the
/// stream is).
async fn protect(
    state: &LiveState,
    name: &str,
    at: (&str, &str),
    msn: u64,
    data: Bytes,
) -> Result<Bytes, tessera_license::serving::Refusal> {
    let clear_init = || state.store.init_of(name, at.0, msn).ok().map(|(_, init)| init);
    state.protection.protect(&live(name), at, msn, data, clear_init).await
}

/// A file the store does not hold (any more): from this node's disk or the archive, else
/// from another node.
async fn past_file(state: &LiveState, name: &str, rendition: &str, file: MediaFile) -> Option<Bytes> {
    // A segment not made yet is looked for nowhere: not on disk, not around the cluster.
    if let (MediaFile::Segment(msn), Some(held)) = (file, state.store.held(name)) {
        if msn >= held.last_msn {
            return None;
        }
    }
    if let Some(data) = state.store.past_file(name, rendition, &file.to_string()).await {
        return Some(data);
    }
    let pulled = state.followers.pull(name, rendition, file).await;
    count_lookup("peer", pulled.is_some());
    pulled
}

async fn media_playlist(
    state: &LiveState,
    (name, rendition): (&str, &str),
    q: &HashMap<String, String>,
    sig: Option<&str>,
    viewer: Viewer,
) -> Response {
    let Directives { block, skip } = match Directives::parse(q.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(d) => d,
        Err(e) => return bad_request(e.message()),
    };
    metrics::counter!("tessera_playlist_requests_total", "kind" => "media", "blocking" => if block.is_some() { "yes" } else { "no" }).increment(1);
    let keys = match state.protection.content_keys(&live(name)) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match state.store.media_playlist(name, rendition, block, skip, block_timeout(state, name), &keys).await {
        Ok(_) if block.is_some() && gated(state, name) => error(StoreError::NotFound),
        Ok(r) => {
            if let Err(refused) = recheck(state, name, viewer, r.waited_for, "playlist") {
                return refused.into_response();
            }
            record_release(r.waited_for, "playlist");
            let lifetime = if block.is_some() { 60 } else { 0 };
            let cache = state.protection.cache_control(&live(name), Object::Playlist { max_age_s: lifetime });
            // Shared playlists are rewritten only for what this viewer carries on.
            let body = if sig.is_some() || (!keys.is_empty() && q.contains_key("token")) {
                let mut text = String::from_utf8_lossy(&r.body).into_owned();
                if let Some(sig) = sig {
                    text = with_signature(text, sig);
                }
                Bytes::from(with_token(text, q.get("token").map(String::as_str)))
            } else {
                r.body
            };
            ([(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST)), (header::CACHE_CONTROL, cache)], body)
                .into_response()
        }
        Err(e) => error(e),
    }
}
