//! The license endpoints every node serves:
//!
//! - `GET /license/live/NAME/KID?token=TOKEN` (and `/license/vod/ASSET/KID`) answers the
//!   16-byte content key `KID` (`application/octet-stream`): the key URI of HLS AES-128.
//! - `POST /license/clearkey/live/NAME[/KID]?token=TOKEN` (and `vod/ASSET`) answers an EME
//!   ClearKey license request (JSON key ids in, a JSON Web Key set out) for `cbcs` content.
//!
//! Both only to a viewer the license actor admits, with `Cache-Control: no-store,
//! private`; otherwise a JSON refusal `{"error": CODE, "message": ...}` with 401 (token
//! missing or invalid), 403 (revoked, not released, region, stream limit) or 404 (no such
//! key). Keys and tokens are never logged.

use std::sync::Arc;
use std::time::Duration;

use crate::supervisor::LicenseRef;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tessera_cluster::api::ApiError;
use tessera_raft::Visibility;

use crate::actor::{KeyQuery, LicenseMsg};
use crate::clearkey;
use crate::gate::ReleaseGate;
use crate::keys::parse_kid;
use crate::rights::RegionLookup;
use crate::serving::Refusal;
use crate::viewer::Viewer;

/// How long the license actor has to answer a viewer's key request.
const KEY_PATIENCE: Duration = Duration::from_secs(5);

/// What the license endpoints need: the actor, whether content is released here, and
/// where viewers are.
pub struct LicenseEndpoints {
    pub license: Option<LicenseRef>,
    pub gate: ReleaseGate,
    pub regions: Arc<RegionLookup>,
}

/// The document of the license endpoints.
#[derive(utoipa::OpenApi)]
#[openapi(paths(live_key, vod_key, clearkey_live, clearkey_live_kid, clearkey_vod, clearkey_vod_kid))]
pub struct LicenseApi;

/// The license endpoints' routes.
pub fn router(state: Arc<LicenseEndpoints>) -> Router {
    Router::new()
        .route("/license/live/{name}/{kid}", get(live_key))
        .route("/license/vod/{asset}/{kid}", get(vod_key))
        .route("/license/clearkey/live/{name}", post(clearkey_live))
        .route("/license/clearkey/live/{name}/{kid}", post(clearkey_live_kid))
        .route("/license/clearkey/vod/{asset}", post(clearkey_vod))
        .route("/license/clearkey/vod/{asset}/{kid}", post(clearkey_vod_kid))
        .with_state(state)
}

/// The viewer's playback token, when the content wants one (or `Authorization: Bearer`).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct KeyParams {
    token: Option<String>,
}

/// Content `live/NAME` or `vod/ASSET` and whether its release lets this node serve it.
fn released(state: &LicenseEndpoints, content: String) -> (String, bool) {
    let released = matches!(state.gate.content(&content), Visibility::Public);
    (content, released)
}

/// Asks the license actor for key `kid` of `content` on behalf of a viewer.
async fn viewer_key(
    state: &LicenseEndpoints,
    (content, released): (String, bool),
    kid: String,
    token: Option<String>,
    viewer: Viewer,
) -> Result<[u8; 16], Refusal> {
    let Some(license) = &state.license else {
        return Err(Refusal::new(503, "no_license", "this node has no key-encryption key and hands out no keys"));
    };
    state.regions.check(&content, viewer.0, "key")?;
    let region = state.regions.region_of(viewer.0);
    let query = KeyQuery { content: content.clone(), kid, token, client: viewer.0, region, released };
    match license.call(|reply| LicenseMsg::Key(query, reply), KEY_PATIENCE).await {
        Some(Ok(key)) => Ok(key),
        Some(Err(denial)) => Err(Refusal::new(denial.status(), denial.code(), &denial)),
        None => {
            tracing::warn!(%content, "the license actor did not answer");
            Err(Refusal::new(503, "unavailable", "the license service did not answer"))
        }
    }
}

/// The content key KID of a live stream
///
/// The key URI of HLS AES-128: the 16 bytes of the key, to a viewer the license actor
/// admits, never cached.
#[utoipa::path(get, path = "/license/live/{name}/{kid}", tag = "license", security((), ("playback" = [])),
    params(("name" = String, Path, description = "The stream"), ("kid" = String, Path, description = "The key id, 32 hex digits"), KeyParams),
    responses((status = 200, description = "The key", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "A token is needed, or it is not valid", body = ApiError),
        (status = 403, description = "Revoked, not released, out of region, or over its stream limit", body = ApiError),
        (status = 404, description = "No such key", body = ApiError)))]
async fn live_key(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path((name, kid)): Path<(String, String)>,
    Query(p): Query<KeyParams>,
) -> Response {
    content_key(&state, viewer, format!("live/{name}"), kid, p).await
}

/// The content key KID of a VOD asset, as for a live stream
#[utoipa::path(get, path = "/license/vod/{asset}/{kid}", tag = "license", security((), ("playback" = [])),
    params(("asset" = String, Path, description = "The asset"), ("kid" = String, Path, description = "The key id, 32 hex digits"), KeyParams),
    responses((status = 200, description = "The key", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn vod_key(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path((asset, kid)): Path<(String, String)>,
    Query(p): Query<KeyParams>,
) -> Response {
    content_key(&state, viewer, format!("vod/{asset}"), kid, p).await
}

async fn content_key(state: &LicenseEndpoints, viewer: Viewer, content: String, kid: String, p: KeyParams) -> Response {
    match viewer_key(state, released(state, content), kid, p.token, viewer).await {
        Ok(key) => (
            [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store, private")],
            key.to_vec(),
        )
            .into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// An EME ClearKey license for a cbcs live stream
///
/// `{"kids": [...]}` in (base64url key ids), a JSON Web Key set out: every key the request
/// names, or the first refusal.
#[utoipa::path(post, path = "/license/clearkey/live/{name}", tag = "license", security((), ("playback" = [])),
    params(("name" = String, Path, description = "The stream"), KeyParams),
    request_body(content = String, content_type = "application/json", description = "An EME ClearKey license request"),
    responses((status = 200, description = "A JSON Web Key set", content_type = "application/json", body = String),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn clearkey_live(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(p): Query<KeyParams>,
    body: axum::body::Bytes,
) -> Response {
    clearkey_license(&state, viewer, format!("live/{name}"), p, &body).await
}

/// The same, for the key KID named in the path (the key URI a cbcs playlist names)
#[utoipa::path(post, path = "/license/clearkey/live/{name}/{kid}", tag = "license", security((), ("playback" = [])),
    params(("name" = String, Path, description = "The stream"), ("kid" = String, Path, description = "The key id"), KeyParams),
    request_body(content = String, content_type = "application/json", description = "An EME ClearKey license request"),
    responses((status = 200, description = "A JSON Web Key set", content_type = "application/json", body = String),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn clearkey_live_kid(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path((name, _kid)): Path<(String, String)>,
    Query(p): Query<KeyParams>,
    body: axum::body::Bytes,
) -> Response {
    clearkey_license(&state, viewer, format!("live/{name}"), p, &body).await
}

/// An EME ClearKey license for a cbcs VOD asset
#[utoipa::path(post, path = "/license/clearkey/vod/{asset}", tag = "license", security((), ("playback" = [])),
    params(("asset" = String, Path, description = "The asset"), KeyParams),
    request_body(content = String, content_type = "application/json", description = "An EME ClearKey license request"),
    responses((status = 200, description = "A JSON Web Key set", content_type = "application/json", body = String),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn clearkey_vod(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path(asset): Path<String>,
    Query(p): Query<KeyParams>,
    body: axum::body::Bytes,
) -> Response {
    clearkey_license(&state, viewer, format!("vod/{asset}"), p, &body).await
}

/// The same, for the key KID named in the path
#[utoipa::path(post, path = "/license/clearkey/vod/{asset}/{kid}", tag = "license", security((), ("playback" = [])),
    params(("asset" = String, Path, description = "The asset"), ("kid" = String, Path, description = "The key id"), KeyParams),
    request_body(content = String, content_type = "application/json", description = "An EME ClearKey license request"),
    responses((status = 200, description = "A JSON Web Key set", content_type = "application/json", body = String),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn clearkey_vod_kid(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path((asset, _kid)): Path<(String, String)>,
    Query(p): Query<KeyParams>,
    body: axum::body::Bytes,
) -> Response {
    clearkey_license(&state, viewer, format!("vod/{asset}"), p, &body).await
}

/// Every key id the request names, or the first refusal.
async fn clearkey_license(
    state: &LicenseEndpoints,
    viewer: Viewer,
    content: String,
    p: KeyParams,
    body: &[u8],
) -> Response {
    let content = released(state, content);
    let kids = match clearkey::requested_kids(body) {
        Ok(kids) => kids,
        Err(e) => {
            tracing::info!(content = %content.0, viewer = %viewer.0, error = %e, "malformed ClearKey license request");
            metrics::counter!("tessera_license_requests_total", "outcome" => "malformed").increment(1);
            return Refusal::new(400, "malformed", e).into_response();
        }
    };
    let mut keys = Vec::with_capacity(kids.len());
    for kid in kids {
        let id = parse_kid(&kid).expect("requested_kids answers 32 hex digits");
        match viewer_key(state, content.clone(), kid, p.token.clone(), viewer).await {
            Ok(key) => keys.push((id, key)),
            Err(refused) => return refused.into_response(),
        }
    }
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store, private")],
        clearkey::response(&keys),
    )
        .into_response()
}
