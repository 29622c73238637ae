//! `/api/v1/releases`: schedule, show (with readiness per node), move and cancel releases.
//!
//! Times are RFC 3339 (`2026-11-26T20:00:00Z`). A release's answer shows its state, when
//! the cluster committed it open (and how long after its time that was), each node's
//! clock vote, and per node whether it serves the release (its region) and holds the
//! content yet.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tessera_raft::{Catalog, Command, Outcome, ReleaseRecord};

use super::{cluster_err, err, ApiError, Read, ReadParams};
use crate::http::HttpState;

fn rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn parse_time(what: &str, text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{what}: {text:?} is not an RFC 3339 time ({e})"))
}

fn invalid(why: String) -> Response {
    err(StatusCode::BAD_REQUEST, "invalid", why)
}

/// A release as the API shows it, with every node's part in it. Times are RFC 3339.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ReleaseView {
    id: u64,
    /// `live/NAME` or `vod/ASSET`.
    content: String,
    at: Option<String>,
    end: Option<String>,
    /// The viewer regions it opens in (empty: everywhere).
    regions: Vec<String>,
    state: tessera_raft::ReleaseState,
    revision: u64,
    created: Option<String>,
    /// When the cluster committed it open.
    committed: Option<String>,
    /// How long after its time the open committed.
    commit_after_ms: Option<i64>,
    closed: Option<String>,
    /// Of the nodes that serve its regions, how many hold the content.
    ready_nodes: usize,
    serving_nodes: usize,
    nodes: Vec<NodeReadiness>,
}

/// A node's part in a release.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct NodeReadiness {
    node: u64,
    region: Option<String>,
    /// Whether the node serves one of the release's regions.
    serves: bool,
    /// Whether it holds the content.
    ready: bool,
    ready_since: Option<String>,
    /// What it holds, or lacks, in words.
    detail: Option<String>,
    /// The node's clock when it voted the release open.
    open_vote_clock: Option<String>,
}

pub(super) fn view(r: &ReleaseRecord, c: &Catalog) -> ReleaseView {
    let nodes: Vec<NodeReadiness> = c
        .nodes
        .values()
        .map(|n| {
            let ready = r.ready.get(&n.id);
            NodeReadiness {
                node: n.id,
                region: n.region.clone(),
                serves: r.serves_region(n.region.as_deref()),
                ready: ready.is_some_and(|x| x.ready),
                ready_since: ready.and_then(|x| rfc3339(x.since_ms)),
                detail: ready.map(|x| x.detail.clone()),
                open_vote_clock: r.open_votes.get(&n.id).and_then(|ms| rfc3339(*ms)),
            }
        })
        .collect();
    let serving = nodes.iter().filter(|n| n.serves);
    ReleaseView {
        id: r.id,
        content: r.content.clone(),
        at: rfc3339(r.at_ms),
        end: r.end_ms.and_then(rfc3339),
        regions: r.regions.clone(),
        state: r.state,
        revision: r.revision,
        created: rfc3339(r.created_ms),
        committed: r.opened_ms.and_then(rfc3339),
        commit_after_ms: r.opened_ms.map(|o| o - r.at_ms),
        closed: r.closed_ms.and_then(rfc3339),
        ready_nodes: serving.clone().filter(|n| n.ready).count(),
        serving_nodes: serving.count(),
        nodes,
    }
}

/// A release to schedule: its content gated from now, opened at `at` (RFC 3339).
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ScheduleBody {
    /// `live/NAME` or `vod/ASSET`.
    content: String,
    at: String,
    /// When it closes again (a takedown).
    end: Option<String>,
    /// The viewer regions it opens in (empty: everywhere).
    #[serde(default)]
    regions: Vec<String>,
}

/// Absent and `null` differ: `"end": null` removes the end.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What a move changes; what is absent stays. `"end": null` removes the end.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct MoveBody {
    /// A new time, while it is scheduled.
    at: Option<String>,
    #[serde(default, deserialize_with = "present")]
    end: Option<Option<String>>,
    regions: Option<Vec<String>>,
}

async fn write(state: &HttpState, command: Command, created: bool) -> Response {
    match state.cluster.propose(command).await {
        Ok(Outcome::Release(r)) => {
            let body = state.cluster.catalog.peek(|c| view(&r, c));
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, Json(body)).into_response()
        }
        Ok(o) => {
            tracing::error!(outcome = ?o, "a release command answered with something else");
            err(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the catalog answered a release command oddly")
        }
        Err(e) => cluster_err(e),
    }
}

/// Schedules a release
///
/// From now on the content is gated on every node (as unknown content answers); at `at` the
/// cluster commits it open, once its nodes hold the content.
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", operation_id = "schedule_release", request_body = ScheduleBody,
    responses((status = 201, body = ReleaseView), (status = 400, body = ApiError), (status = 409, body = ApiError),
        (status = 503, body = ApiError)))]
pub(super) async fn schedule(State(state): State<Arc<HttpState>>, Json(body): Json<ScheduleBody>) -> Response {
    let at_ms = match parse_time("at", &body.at) {
        Ok(t) => t,
        Err(why) => return invalid(why),
    };
    let end_ms = match body.end.as_deref().map(|e| parse_time("end", e)).transpose() {
        Ok(t) => t,
        Err(why) => return invalid(why),
    };
    tracing::info!(content = %body.content, at = %body.at, "release scheduled through the admin API");
    let command = Command::ScheduleRelease { content: body.content, at_ms, end_ms, regions: body.regions };
    write(&state, command, true).await
}

/// Moves a release
///
/// Its time (while scheduled), its end (a takedown) or its regions.
#[utoipa::path(put, path = "/api/v1/releases/{id}", tag = "releases", operation_id = "move_release",
    params(("id" = u64, Path, description = "The release")), request_body = MoveBody,
    responses((status = 200, body = ReleaseView), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 503, body = ApiError)))]
pub(super) async fn move_release(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<u64>,
    Json(body): Json<MoveBody>,
) -> Response {
    let at_ms = match body.at.as_deref().map(|t| parse_time("at", t)).transpose() {
        Ok(t) => t,
        Err(why) => return invalid(why),
    };
    let end_ms = match body.end.map(|e| e.map(|t| parse_time("end", &t)).transpose()).transpose() {
        Ok(t) => t,
        Err(why) => return invalid(why),
    };
    write(&state, Command::MoveRelease { id, at_ms, end_ms, regions: body.regions }, false).await
}

/// Cancels a release that has not opened
///
/// The content stays gated. 409 `release_state` once it is open.
#[utoipa::path(delete, path = "/api/v1/releases/{id}", tag = "releases", operation_id = "cancel_release",
    params(("id" = u64, Path, description = "The release")),
    responses((status = 200, body = ReleaseView), (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 503, body = ApiError)))]
pub(super) async fn cancel(State(state): State<Arc<HttpState>>, Path(id): Path<u64>) -> Response {
    write(&state, Command::CancelRelease { id }, false).await
}

/// Every release, newest first, with readiness per node
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", operation_id = "list_releases", params(ReadParams),
    responses((status = 200, body = Read<Vec<ReleaseView>>), (status = 503, body = ApiError)))]
pub(super) async fn list(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    super::read(&state, &p, |c| c.releases.values().rev().map(|r| view(r, c)).collect::<Vec<_>>()).await
}

/// One release
///
/// Its state, when it committed, each node's clock vote, regions and readiness.
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases", operation_id = "get_release",
    params(("id" = u64, Path, description = "The release"), ReadParams),
    responses((status = 200, body = ReleaseView), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
pub(super) async fn get(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<u64>,
    Query(p): Query<ReadParams>,
) -> Response {
    let local = p.local();
    let f = |c: &Catalog| c.releases.get(&id).map(|r| view(r, c));
    let found = if local { Ok(state.cluster.catalog.peek(f)) } else { state.cluster.read(f).await };
    match found {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => err(StatusCode::NOT_FOUND, "not_found", format!("no release {id}")),
        Err(e) => cluster_err(e),
    }
}
