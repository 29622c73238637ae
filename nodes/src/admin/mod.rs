//! The admin API, `/api/v1/...` on every node: JSON, `Authorization: Bearer ADMIN_TOKEN`
//! (a token from the catalog or the node's configuration), errors as
//! `{"error": CODE, "message": ...}`. Writes go to the catalog's leader from any node; reads
//! are linearizable unless `?consistency=local` asks for this node's copy, which the answer
//! says how far it has got (`applied`, `leader`). `/api/v1/openapi.json` describes it;
//! the console (`/console/`) is a page that speaks it;
//! `tessera_cli::admin::AdminClient` speaks it.

mod backup;
mod nodes;
mod releases;
mod settings;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_raft::{Catalog, Command, ContentSettings, Outcome, StreamSettings};

use crate::http::HttpState;
use tessera_cluster::identity::secret_hash;
use tessera_license::admin::ProtectionBody;

const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// The admin API: this module's routes and the `tenants`' (VOD, content protection) behind
/// the admin token check, and what needs no token (`openapi.json`, `public`).
pub fn router(
    state: Arc<HttpState>,
    auth: Arc<tessera_cluster::api::AdminAuth>,
    tenants: Router,
    public: Router,
) -> Router {
    let protected = Router::new()
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/cluster/leave", post(leave))
        .route("/api/v1/streams", get(list_streams).post(create_stream))
        .route("/api/v1/streams/{name}", get(get_stream).put(put_stream).delete(delete_stream))
        .route("/api/v1/releases", get(releases::list).post(releases::schedule))
        .route("/api/v1/releases/{id}", get(releases::get).put(releases::move_release).delete(releases::cancel))
        .route("/api/v1/nodes", get(nodes::list))
        .route("/api/v1/nodes/{id}", get(nodes::get).delete(nodes::remove))
        .route("/api/v1/nodes/{id}/drain", post(nodes::drain).delete(nodes::undrain))
        .route("/api/v1/node/reload", post(settings::reload))
        .route("/api/v1/node/log", axum::routing::put(settings::log))
        .route("/api/v1/catalog/export", get(backup::export))
        .route(
            "/api/v1/catalog/import",
            post(backup::import).layer(axum::extract::DefaultBodyLimit::max(backup::IMPORT_MAX_BYTES)),
        )
        .with_state(state.clone())
        .merge(tenants);
    let feed = crate::console::ConsoleFeed {
        api: protected.clone(),
        cluster: state.cluster.clone(),
        client: crate::outbound::https_client()
            .inspect_err(|e| tracing::warn!(error = %e, "the console cannot ask other nodes: no root certificates"))
            .ok(),
        prometheus_url: state.prometheus_url.clone(),
    };
    let protected = protected
        .merge(crate::console::feed_router(Arc::new(feed)))
        .route_layer(axum::middleware::from_fn_with_state(auth, tessera_cluster::api::authorize));
    Router::new()
        .route("/api/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .merge(public)
        .merge(protected)
        .merge(crate::console::router())
}

use tessera_cluster::api::{cluster_error as cluster_err, error as err, ReadParams};

/// Reads the catalog, linearizably or (when asked) from this node's copy.
async fn read<T: serde::Serialize>(state: &HttpState, p: &ReadParams, f: impl Fn(&Catalog) -> T) -> Response {
    tessera_cluster::api::read(&state.cluster, p, f).await
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
    let local = p.local();
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
    let mut held = tessera_live::relay::positions(&state.cluster, name, std::time::Duration::from_millis(500)).await;
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
/// optionally its protection (encryption, the viewer regions its rights allow, signed URLs).
#[derive(Deserialize)]
struct StreamBody {
    name: Option<String>,
    ladder: Option<String>,
    token: Option<String>,
    #[serde(flatten)]
    protection: ProtectionBody,
    /// Record each publish as a VOD asset.
    record: Option<bool>,
    /// Which nodes may make the ladder (`pin`) or are tried first (`prefer`).
    placement: Option<tessera_raft::PlacementRule>,
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

/// `PUT /api/v1/streams/{name}`: ladder and token (both replaced when either is given, or
/// when the body names nothing else), recording, placement rule, encryption, regions and
/// URL signing, in one catalog write: all of it applies, or none.
async fn put_stream(
    State(state): State<Arc<HttpState>>,
    Path(name): Path<String>,
    Json(body): Json<StreamBody>,
) -> Response {
    let protection = body.protection.settings();
    let touches_protection = protection != ContentSettings::default();
    // A body of encryption, regions, recording or placement alone leaves the ladder and token as they are.
    let replaces = body.ladder.is_some()
        || body.token.is_some()
        || (!touches_protection && body.record.is_none() && body.placement.is_none());
    let stream = match stream_command(name.clone(), &body, false) {
        Ok(Command::PutStream { ladder, token_sha256, .. }) => {
            replaces.then_some(StreamSettings { ladder, token_sha256 })
        }
        Ok(_) => None,
        Err(why) => return err(StatusCode::BAD_REQUEST, "invalid", why),
    };
    let settings = ContentSettings { stream, record: body.record, placement: body.placement.clone(), ..protection };
    let content = format!("live/{name}");
    match state.cluster.propose(Command::ConfigureContent { content: content.clone(), settings }).await {
        Ok(Outcome::Rejected(r)) => return err(StatusCode::CONFLICT, "rejected", r.to_string()),
        Ok(_) => {}
        Err(e) => return cluster_err(e),
    }
    let view = state.cluster.catalog.peek(|c| {
        let mut view = serde_json::to_value(c.streams.get(&name)).unwrap_or_default();
        view["protection"] = json!(c.protection.get(&content).map(
            |p| json!({ "mode": p.mode, "regions": p.regions, "keys": p.keys.len(), "signed_urls": p.signed_urls, "key_server": p.key_server })
        ));
        view
    });
    Json(view).into_response()
}

async fn delete_stream(State(state): State<Arc<HttpState>>, Path(name): Path<String>) -> Response {
    match state.cluster.propose(Command::DeleteStream { name }).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => cluster_err(e),
    }
}
