//! The admin API, `/api/v1/...` on every node: JSON, `Authorization: Bearer ADMIN_TOKEN`
//! (a token from the catalog or the node's configuration), errors as
//! `{"error": CODE, "message": ...}`. Writes go to the catalog's leader from any node; reads
//! are linearizable unless `?consistency=local` asks for this node's copy, which the answer
//! says how far it has got (`applied`, `leader`). `/api/v1/openapi.json` describes it;
//! [`client::AdminClient`] speaks it.

mod assets;
pub mod client;
mod protection;
mod releases;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_raft::{Catalog, CatalogError, Command, Outcome, Rejection, TokenKind};

use crate::http::HttpState;
use tessera_cluster::identity::secret_hash;
use tessera_cluster::ClusterError;

const OPENAPI: &str = include_str!("../../../docs/openapi.json");

pub fn router(state: Arc<HttpState>) -> Router<Arc<HttpState>> {
    let protected = Router::new()
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/cluster/leave", post(leave))
        .route("/api/v1/streams", get(list_streams).post(create_stream))
        .route("/api/v1/streams/{name}", get(get_stream).put(put_stream).delete(delete_stream))
        .route("/api/v1/releases", get(releases::list).post(releases::schedule))
        .route("/api/v1/releases/{id}", get(releases::get).put(releases::move_release).delete(releases::cancel))
        .route("/api/v1/tokens", post(protection::issue))
        .route("/api/v1/revocations", post(protection::revoke))
        .route("/api/v1/revocations/{subject}", axum::routing::delete(protection::restore))
        .route("/api/v1/regions", axum::routing::put(protection::regions))
        .route("/api/v1/assets", get(assets::list))
        .route("/api/v1/assets/{id}", get(assets::get).put(assets::put).delete(assets::delete))
        .route("/api/v1/assets/{id}/jobs/{rendition}/retry", post(assets::retry))
        .route("/api/v1/uploads", post(crate::vod::uploads::create))
        .route(
            "/api/v1/uploads/{id}",
            axum::routing::head(crate::vod::uploads::head)
                .patch(crate::vod::uploads::patch)
                .delete(crate::vod::uploads::terminate),
        )
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/nodes/{id}", axum::routing::delete(remove_node))
        .layer(axum::middleware::from_fn_with_state(state, authorize));
    Router::new()
        .route("/api/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/api/v1/uploads", axum::routing::options(crate::vod::uploads::options))
        .merge(protected)
}

/// An error answer.
fn err(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": code, "message": message.to_string() }))).into_response()
}

fn catalog_err(e: CatalogError) -> Response {
    match e {
        CatalogError::Rejected(r) => rejection(r),
        CatalogError::NotLeader(_) | CatalogError::Unavailable(_) => {
            err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e)
        }
        CatalogError::Fatal(_) => err(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

fn rejection(r: Rejection) -> Response {
    let (status, code) = match &r {
        Rejection::NoSuchStream(_)
        | Rejection::NoSuchNode(_)
        | Rejection::NoSuchRelease(_)
        | Rejection::NoSuchAsset(_) => (StatusCode::NOT_FOUND, "not_found"),
        Rejection::ReleasePending { .. } | Rejection::ReleaseOpen(_) | Rejection::ReleaseOver(_) => {
            (StatusCode::CONFLICT, "release_state")
        }
        Rejection::StaleRelease { .. } => (StatusCode::CONFLICT, "stale_release"),
        Rejection::InvalidProtection(_) => (StatusCode::BAD_REQUEST, "invalid"),
        Rejection::StreamExists(_) | Rejection::AssetExists(_) => (StatusCode::CONFLICT, "exists"),
        Rejection::StreamLive(_) => (StatusCode::CONFLICT, "live"),
        Rejection::StaleEpoch { .. } | Rejection::StaleJobLease { .. } => (StatusCode::CONFLICT, "stale_epoch"),
        Rejection::JobNotClaimable { .. } => (StatusCode::CONFLICT, "job_state"),
        _ => (StatusCode::BAD_REQUEST, "invalid"),
    };
    err(status, code, r)
}

fn cluster_err(e: ClusterError) -> Response {
    match e {
        ClusterError::Catalog(c) => catalog_err(c),
        other => err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", other),
    }
}

async fn authorize(State(state): State<Arc<HttpState>>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        metrics::counter!("tessera_admin_unauthorized_total").increment(1);
        return err(StatusCode::UNAUTHORIZED, "unauthorized", "an admin token is required (Authorization: Bearer ...)");
    };
    let hash = secret_hash(token);
    let (accepted, initialized) =
        state.cluster.catalog.read_local(|c| (c.accepts(TokenKind::Admin, &hash), c.ca.is_some())).value;
    let known = accepted || state.admin_tokens.contains(&hash);
    if !known && !initialized {
        // A node that has just joined may not hold the catalog (and its tokens) yet.
        return err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "this node has not caught up with the catalog yet");
    }
    if !known {
        metrics::counter!("tessera_admin_unauthorized_total").increment(1);
        tracing::warn!("admin API call with an unknown token refused");
        return err(StatusCode::FORBIDDEN, "forbidden", "unknown admin token");
    }
    next.run(req).await
}

#[derive(Deserialize, Default)]
struct ReadParams {
    consistency: Option<String>,
}

/// Reads the catalog, linearizably or (when asked) from this node's copy.
async fn read<T: serde::Serialize>(state: &HttpState, p: &ReadParams, f: impl Fn(&Catalog) -> T) -> Response {
    if p.consistency.as_deref() == Some("local") {
        let r = state.cluster.catalog.read_local(&f);
        return Json(json!({ "consistency": "local", "applied": r.applied, "leader": r.leader, "data": r.value }))
            .into_response();
    }
    match state.cluster.read(&f).await {
        Ok(v) => Json(json!({ "consistency": "linearizable", "data": v })).into_response(),
        Err(e) => cluster_err(e),
    }
}

async fn cluster(State(state): State<Arc<HttpState>>) -> Response {
    let status = state.cluster.catalog.status();
    let nodes = state.cluster.catalog.read_local(|c| c.nodes.clone()).value;
    let mut v = serde_json::to_value(&status).unwrap_or(Value::Null);
    if let Some(members) = v.get_mut("members").and_then(Value::as_array_mut) {
        for m in members {
            let id = m.get("id").and_then(Value::as_u64).unwrap_or(0);
            if let Some(n) = nodes.get(&id) {
                m["http_addr"] = json!(n.http_addr);
            }
        }
    }
    Json(v).into_response()
}

async fn leave(State(state): State<Arc<HttpState>>) -> Response {
    match state.cluster.leave().await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "left": state.cluster.identity.id }))).into_response(),
        Err(e) => cluster_err(e),
    }
}

async fn list_streams(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    read(&state, &p, |c| c.streams.values().cloned().collect::<Vec<_>>()).await
}

async fn get_stream(
    State(state): State<Arc<HttpState>>,
    Path(name): Path<String>,
    Query(p): Query<ReadParams>,
) -> Response {
    let local = p.consistency.as_deref() == Some("local");
    let found = if local {
        Ok(state.cluster.catalog.read_local(|c| c.streams.get(&name).cloned()).value)
    } else {
        state.cluster.read(|c| c.streams.get(&name).cloned()).await
    };
    match found {
        Ok(Some(s)) => {
            let nodes = where_nodes_stand(&state, &name, s.origin.map(|o| o.node)).await;
            let mut body = serde_json::to_value(&s).unwrap_or_default();
            body["nodes"] = nodes;
            Json(body).into_response()
        }
        Ok(None) => err(StatusCode::NOT_FOUND, "not_found", format!("no stream {name:?}")),
        Err(e) => cluster_err(e),
    }
}

/// Every node's place in the stream: its newest segment and part, and how far it is behind
/// the origin (segments, then parts within the same segment).
async fn where_nodes_stand(state: &HttpState, name: &str, origin: Option<u64>) -> serde_json::Value {
    let me = state.cluster.identity.id;
    let mut held = crate::relay::positions(&state.cluster, name, std::time::Duration::from_millis(500)).await;
    held.push((me, state.followers.held(name)));
    held.sort_by_key(|(id, _)| *id);
    let at_origin = origin.and_then(|o| held.iter().find(|(id, _)| *id == o).and_then(|(_, h)| *h));
    let rows: Vec<serde_json::Value> = held
        .iter()
        .map(|(id, h)| {
            let behind = match (at_origin, h) {
                (Some(o), Some(h)) if o.last_msn == h.last_msn => {
                    json!({ "segments": 0, "parts": o.last_part.unwrap_or(0).saturating_sub(h.last_part.unwrap_or(0)) })
                }
                (Some(o), Some(h)) => json!({ "segments": o.last_msn.saturating_sub(h.last_msn) }),
                _ => serde_json::Value::Null,
            };
            json!({
                "node": id,
                "origin": Some(*id) == origin,
                "holds": h.is_some(),
                "live": h.is_some_and(|h| h.live),
                "following": h.is_some_and(|h| h.following),
                "upstream": h.and_then(|h| h.upstream),
                "last_msn": h.map(|h| h.last_msn),
                "last_part": h.and_then(|h| h.last_part),
                "behind": behind,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

/// A stream as the admin API takes it: the token in clear (only its hash is stored), and
/// optionally its encryption and the viewer regions its rights allow.
#[derive(Deserialize)]
pub(super) struct StreamBody {
    name: Option<String>,
    ladder: Option<String>,
    token: Option<String>,
    encryption: Option<tessera_raft::Protection>,
    regions: Option<Vec<String>>,
    signed_urls: Option<bool>,
    /// Record each publish as a VOD asset.
    record: Option<bool>,
}

/// The protection commands a body asks for `content` (`live/NAME`, `vod/ASSET`), or why
/// it cannot have them.
fn protection_commands(content: &str, body: &StreamBody) -> Result<Vec<Command>, String> {
    let content = content.to_string();
    let mut out = Vec::new();
    if let Some(mode) = body.encryption {
        out.push(Command::SetProtection { content: content.clone(), mode });
    }
    if let Some(regions) = &body.regions {
        out.push(Command::SetRights { content: content.clone(), regions: regions.clone() });
    }
    if let Some(required) = body.signed_urls {
        out.push(Command::SetSignedUrls { content, required });
    }
    Ok(out)
}

/// The command for a stream body, or why the body is invalid.
fn stream_command(name: String, body: &StreamBody, create_only: bool) -> Result<Command, String> {
    if let Some(l) = &body.ladder {
        l.parse::<tessera_transcode::LadderSpec>().map_err(|e| format!("ladder: {e}"))?;
    }
    if body.token.as_deref().is_some_and(|t| t.len() < 8) {
        return Err("a publish token needs at least 8 characters".into());
    }
    Ok(Command::PutStream {
        name,
        ladder: body.ladder.clone(),
        token_sha256: body.token.as_deref().map(secret_hash),
        create_only,
    })
}

async fn create_stream(State(state): State<Arc<HttpState>>, Json(body): Json<StreamBody>) -> Response {
    let Some(name) = body.name.clone() else {
        return err(StatusCode::BAD_REQUEST, "invalid", "name is required");
    };
    let cmd = match stream_command(name, &body, true) {
        Ok(c) => c,
        Err(why) => return err(StatusCode::BAD_REQUEST, "invalid", why),
    };
    match state.cluster.propose(cmd).await {
        Ok(Outcome::Stream(s)) => (StatusCode::CREATED, Json(s)).into_response(),
        Ok(o) => Json(json!({ "outcome": format!("{o:?}") })).into_response(),
        Err(e) => cluster_err(e),
    }
}

async fn put_stream(
    State(state): State<Arc<HttpState>>,
    Path(name): Path<String>,
    Json(body): Json<StreamBody>,
) -> Response {
    let protection = match protection_commands(&format!("live/{name}"), &body) {
        Ok(p) => p,
        Err(why) => return err(StatusCode::BAD_REQUEST, "invalid", why),
    };
    // A body of encryption, regions or recording alone leaves the ladder and token as they are.
    let replaces = body.ladder.is_some() || body.token.is_some() || (protection.is_empty() && body.record.is_none());
    let cmd = match stream_command(name.clone(), &body, false) {
        Ok(c) => c,
        Err(why) => return err(StatusCode::BAD_REQUEST, "invalid", why),
    };
    for c in protection {
        if let Err(e) = state.cluster.propose(c).await {
            return cluster_err(e);
        }
    }
    if replaces {
        match state.cluster.propose(cmd).await {
            Ok(Outcome::Stream(s)) if body.record.is_none() => return Json(s).into_response(),
            Ok(Outcome::Stream(_)) => {}
            Ok(o) => return Json(json!({ "outcome": format!("{o:?}") })).into_response(),
            Err(e) => return cluster_err(e),
        }
    }
    if let Some(record) = body.record {
        match state.cluster.propose(Command::SetRecording { stream: name.clone(), record }).await {
            Ok(Outcome::Stream(s)) if replaces => return Json(s).into_response(),
            Ok(Outcome::Rejected(r)) => return err(StatusCode::CONFLICT, "rejected", r.to_string()),
            Ok(_) => {}
            Err(e) => return cluster_err(e),
        }
    }
    let record = state.cluster.catalog.peek(|c| {
        json!({
            "name": name,
            "record": c.streams.get(&name).is_some_and(|s| s.record),
            "protection": c.protection.get(&format!("live/{name}")).map(|p| json!({ "mode": p.mode, "regions": p.regions, "keys": p.keys.len(), "signed_urls": p.signed_urls })),
        })
    });
    Json(record).into_response()
}

async fn delete_stream(State(state): State<Arc<HttpState>>, Path(name): Path<String>) -> Response {
    match state.cluster.propose(Command::DeleteStream { name }).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => cluster_err(e),
    }
}

async fn nodes(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    read(&state, &p, |c| c.nodes.values().cloned().collect::<Vec<_>>()).await
}

async fn remove_node(State(state): State<Arc<HttpState>>, Path(id): Path<u64>) -> Response {
    let known = state.cluster.catalog.status().members.iter().any(|m| m.id == id);
    if !known {
        return err(StatusCode::NOT_FOUND, "not_found", format!("node {id} is not a member"));
    }
    match state.cluster.remove(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => cluster_err(e),
    }
}
