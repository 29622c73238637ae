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
use serde::{Deserialize, Serialize};
use tessera_raft::{Catalog, ClusterStatus, Command, ContentSettings, Outcome, StreamRecord, StreamSettings};

use crate::http::HttpState;
use tessera_cluster::identity::secret_hash;
use tessera_license::admin::{ProtectionBody, ProtectionView};

/// The document of the admin API's own routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    cluster,
    leave,
    list_streams,
    create_stream,
    get_stream,
    put_stream,
    delete_stream,
    releases::list,
    releases::schedule,
    releases::get,
    releases::move_release,
    releases::cancel,
    nodes::list,
    nodes::get,
    nodes::remove,
    nodes::drain,
    nodes::undrain,
    settings::reload,
    settings::log,
    backup::export,
    backup::import,
    openapi
))]
pub(crate) struct AdminApi;

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
        .route("/api/v1/openapi.json", get(openapi))
        .merge(public)
        .merge(protected)
        .merge(crate::console::router())
}

use tessera_cluster::api::{cluster_error as cluster_err, error as err, ApiError, Read, ReadParams};

/// This document
///
/// OpenAPI 3.1, made from the handlers' own annotations and types; it needs no admin token.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "cluster", operation_id = "api_document", security(()),
    responses((status = 200, description = "The API document", content_type = "application/json", body = Object)))]
async fn openapi() -> Response {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(crate::api_doc::json);
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

/// Reads the catalog, linearizably or (when asked) from this node's copy.
async fn read<T: serde::Serialize>(state: &HttpState, p: &ReadParams, f: impl Fn(&Catalog) -> T) -> Response {
    tessera_cluster::api::read(&state.cluster, p, f).await
}

/// The cluster as this node sees it
///
/// Leader, term, log positions and members, each with its role, replication and HTTP
/// address.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster", operation_id = "get_cluster",
    responses((status = 200, body = ClusterStatus), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn cluster(State(state): State<Arc<HttpState>>) -> Response {
    let mut status = state.cluster.catalog.status();
    state.cluster.catalog.peek(|c| {
        for m in &mut status.members {
            m.http_addr = c.nodes.get(&m.id).map(|n| n.http_addr.clone());
        }
    });
    Json(status).into_response()
}

/// Who left.
#[derive(Serialize, utoipa::ToSchema)]
struct Left {
    left: u64,
}

/// This node leaves the cluster
///
/// Its membership is removed through the leader; it stops serving as a member.
#[utoipa::path(post, path = "/api/v1/cluster/leave", tag = "cluster", operation_id = "leave_cluster",
    responses((status = 202, body = Left), (status = 409, body = ApiError), (status = 503, body = ApiError)))]
async fn leave(State(state): State<Arc<HttpState>>) -> Response {
    match state.cluster.leave().await {
        Ok(()) => (StatusCode::ACCEPTED, Json(Left { left: state.cluster.identity.id })).into_response(),
        Err(e) => cluster_err(e),
    }
}

/// All streams
#[utoipa::path(get, path = "/api/v1/streams", tag = "streams", params(ReadParams),
    responses((status = 200, body = Read<Vec<StreamRecord>>), (status = 503, body = ApiError)))]
async fn list_streams(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    read(&state, &p, |c| c.streams.values().cloned().collect::<Vec<_>>()).await
}

/// One stream, and where every node stands in it
#[utoipa::path(get, path = "/api/v1/streams/{name}", tag = "streams",
    params(("name" = String, Path, description = "The stream"), ReadParams),
    responses((status = 200, body = StreamView), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
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
            Json(StreamView { stream: s, nodes }).into_response()
        }
        Ok(None) => err(StatusCode::NOT_FOUND, "not_found", format!("no stream {name:?}")),
        Err(e) => cluster_err(e),
    }
}

/// A stream and every node's place in it.
#[derive(Serialize, utoipa::ToSchema)]
struct StreamView {
    #[serde(flatten)]
    stream: StreamRecord,
    nodes: Vec<NodePosition>,
}

/// Where a node stands in a stream.
#[derive(Serialize, utoipa::ToSchema)]
struct NodePosition {
    node: u64,
    origin: bool,
    /// Whether the node holds any of the stream.
    holds: bool,
    live: bool,
    /// Whether it follows the origin (a relay of it).
    following: bool,
    /// The node it receives the stream from: the origin, or a relay nearer it.
    upstream: Option<u64>,
    /// Its newest segment and part.
    last_msn: Option<u64>,
    last_part: Option<u64>,
    /// How far it is behind the origin.
    behind: Option<Behind>,
}

/// Segments behind, and parts behind within the same segment.
#[derive(Serialize, utoipa::ToSchema)]
struct Behind {
    segments: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<u64>,
}

/// Every node's place in the stream: its newest segment and part, and how far it is behind
/// the origin (segments, then parts within the same segment).
async fn where_nodes_stand(state: &HttpState, name: &str, origin: Option<u64>) -> Vec<NodePosition> {
    let me = state.cluster.identity.id;
    let mut held = tessera_live::relay::positions(&state.cluster, name, std::time::Duration::from_millis(500)).await;
    held.push((me, state.followers.held(name)));
    held.sort_by_key(|(id, _)| *id);
    let at_origin = origin.and_then(|o| held.iter().find(|(id, _)| *id == o).and_then(|(_, h)| *h));
    held.iter()
        .map(|(id, h)| NodePosition {
            node: *id,
            origin: Some(*id) == origin,
            holds: h.is_some(),
            live: h.is_some_and(|h| h.live),
            following: h.is_some_and(|h| h.following),
            upstream: h.and_then(|h| h.upstream),
            last_msn: h.map(|h| h.last_msn),
            last_part: h.and_then(|h| h.last_part),
            behind: match (at_origin, h) {
                (Some(o), Some(h)) if o.last_msn == h.last_msn => Some(Behind {
                    segments: 0,
                    parts: Some(o.last_part.unwrap_or(0).saturating_sub(h.last_part.unwrap_or(0))),
                }),
                (Some(o), Some(h)) => Some(Behind { segments: o.last_msn.saturating_sub(h.last_msn), parts: None }),
                _ => None,
            },
        })
        .collect()
}

/// A stream as the admin API takes it: the token in clear (only its hash is stored), and
/// optionally its protection (encryption, the viewer regions its rights allow, signed URLs).
#[derive(Deserialize, utoipa::ToSchema)]
struct StreamBody {
    /// Required when creating with `POST`; the path names it in a `PUT`.
    name: Option<String>,
    /// Its ladder: `source` and rungs such as `720p:2500` (the node's default if absent).
    ladder: Option<String>,
    /// The publish token (8 characters or more); only its hash is kept.
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

/// Creates a stream
///
/// 409 `exists` if the name is taken.
#[utoipa::path(post, path = "/api/v1/streams", tag = "streams", request_body = StreamBody,
    responses((status = 201, body = StreamRecord), (status = 400, body = ApiError), (status = 409, body = ApiError),
        (status = 503, body = ApiError)))]
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
        Ok(o) => {
            tracing::error!(outcome = ?o, "a stream command answered with something else");
            err(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the catalog answered a stream command oddly")
        }
        Err(e) => cluster_err(e),
    }
}

/// Creates or updates a stream
///
/// Ladder and token (both replaced when either is given, or when the body names nothing
/// else), recording, placement rule, encryption, regions and URL signing, in one catalog
/// write: all of it applies, or none.
#[utoipa::path(put, path = "/api/v1/streams/{name}", tag = "streams",
    params(("name" = String, Path, description = "The stream")), request_body = StreamBody,
    responses((status = 200, body = StreamSettingsView), (status = 400, body = ApiError), (status = 409, body = ApiError),
        (status = 503, body = ApiError)))]
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
    let view = state.cluster.catalog.peek(|c| StreamSettingsView {
        stream: c.streams.get(&name).cloned(),
        protection: c.protection.get(&content).map(ProtectionView::of),
    });
    Json(view).into_response()
}

/// A stream after a `PUT`, with its protection.
#[derive(Serialize, utoipa::ToSchema)]
struct StreamSettingsView {
    #[serde(flatten)]
    stream: Option<StreamRecord>,
    protection: Option<ProtectionView>,
}

/// Deletes a stream
///
/// 409 `live` while a node is origin for it.
#[utoipa::path(delete, path = "/api/v1/streams/{name}", tag = "streams",
    params(("name" = String, Path, description = "The stream")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 503, body = ApiError)))]

async fn delete_stream(State(state): State<Arc<HttpState>>, Path(name): Path<String>) -> Response {
    match state.cluster.propose(Command::DeleteStream { name }).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => cluster_err(e),
    }
}
