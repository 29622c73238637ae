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
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use tessera_raft::{Catalog, Command, Outcome, ReleaseRecord};

use super::{cluster_err, err, ReadParams};
use crate::http::HttpState;

fn rfc3339(ms: i64) -> Value {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or(Value::Null, |t| json!(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
}

fn parse_time(what: &str, text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{what}: {text:?} is not an RFC 3339 time ({e})"))
}

fn invalid(why: String) -> Response {
    err(StatusCode::BAD_REQUEST, "invalid", why)
}

/// A release as the API shows it, with every node's part in it.
pub(super) fn view(r: &ReleaseRecord, c: &Catalog) -> Value {
    let nodes: Vec<Value> = c
        .nodes
        .values()
        .map(|n| {
            let ready = r.ready.get(&n.id);
            json!({
                "node": n.id,
                "region": n.region,
                "serves": r.serves_region(n.region.as_deref()),
                "ready": ready.is_some_and(|x| x.ready),
                "ready_since": ready.map(|x| rfc3339(x.since_ms)),
                "detail": ready.map(|x| x.detail.clone()),
                "open_vote_clock": r.open_votes.get(&n.id).map(|ms| rfc3339(*ms)),
            })
        })
        .collect();
    let serving: Vec<&Value> = nodes.iter().filter(|n| n["serves"] == json!(true)).collect();
    json!({
        "id": r.id,
        "content": r.content,
        "at": rfc3339(r.at_ms),
        "end": r.end_ms.map(rfc3339),
        "regions": r.regions,
        "state": r.state,
        "revision": r.revision,
        "created": rfc3339(r.created_ms),
        "committed": r.opened_ms.map(rfc3339),
        "commit_after_ms": r.opened_ms.map(|o| o - r.at_ms),
        "closed": r.closed_ms.map(rfc3339),
        "ready_nodes": serving.iter().filter(|n| n["ready"] == json!(true)).count(),
        "serving_nodes": serving.len(),
        "nodes": nodes,
    })
}

#[derive(Deserialize)]
pub(super) struct ScheduleBody {
    content: String,
    at: String,
    end: Option<String>,
    #[serde(default)]
    regions: Vec<String>,
}

/// Absent and `null` differ: `"end": null` removes the end.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub(super) struct MoveBody {
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
        Ok(o) => Json(json!({ "outcome": format!("{o:?}") })).into_response(),
        Err(e) => cluster_err(e),
    }
}

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

pub(super) async fn cancel(State(state): State<Arc<HttpState>>, Path(id): Path<u64>) -> Response {
    write(&state, Command::CancelRelease { id }, false).await
}

pub(super) async fn list(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    super::read(&state, &p, |c| c.releases.values().rev().map(|r| view(r, c)).collect::<Vec<_>>()).await
}

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
