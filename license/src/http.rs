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

/// The license endpoints' routes.
pub fn router(state: Arc<LicenseEndpoints>) -> Router {
    Router::new()
        .route("/license/live/{name}/{kid}", get(content_key))
        .route("/license/vod/{asset}/{kid}", get(content_key))
        .route("/license/clearkey/live/{name}", post(clearkey_license))
        .route("/license/clearkey/live/{name}/{kid}", post(clearkey_license))
        .route("/license/clearkey/vod/{asset}", post(clearkey_license))
        .route("/license/clearkey/vod/{asset}/{kid}", post(clearkey_license))
        .with_state(state)
}

#[derive(Deserialize)]
struct KeyParams {
    token: Option<String>,
}

/// Live stream `name` or VOD asset `asset`: its content id and whether its release lets
/// this node serve it.
fn content_of(state: &LicenseEndpoints, path: &[(String, String)]) -> Option<(String, bool)> {
    let find = |k: &str| path.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let content = match find("name") {
        Some(name) => format!("live/{name}"),
        None => format!("vod/{}", find("asset")?),
    };
    let released = matches!(state.gate.content(&content), Visibility::Public);
    Some((content, released))
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

/// `GET /license/live/{name}/{kid}` and `GET /license/vod/{asset}/{kid}`.
async fn content_key(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query<KeyParams>,
) -> Response {
    let (Some(content), Some(kid)) =
        (content_of(&state, &path), path.iter().find(|(k, _)| k == "kid").map(|(_, v)| v.clone()))
    else {
        return Refusal::new(404, "no_such_content", "no stream or asset named").into_response();
    };
    match viewer_key(&state, content, kid, p.token, viewer).await {
        Ok(key) => (
            [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store, private")],
            key.to_vec(),
        )
            .into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// `POST /license/clearkey/live/{name}` and `/license/clearkey/vod/{asset}` (and with
/// `/{kid}`, the key URI a `cbcs` playlist names): every key id the request names, or the
/// first refusal.
async fn clearkey_license(
    State(state): State<Arc<LicenseEndpoints>>,
    viewer: Viewer,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query<KeyParams>,
    body: axum::body::Bytes,
) -> Response {
    let Some(content) = content_of(&state, &path) else {
        return Refusal::new(404, "no_such_content", "no stream or asset named").into_response();
    };
    let kids = match clearkey::requested_kids(&body) {
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
        match viewer_key(&state, content.clone(), kid, p.token.clone(), viewer).await {
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
