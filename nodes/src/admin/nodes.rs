//! The cluster's nodes in the admin API: each node's record with what it makes and holds
//! (`GET /api/v1/nodes`, `GET /api/v1/nodes/{id}`), draining (`POST` and `DELETE
//! /api/v1/nodes/{id}/drain`) and removal (`DELETE /api/v1/nodes/{id}`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tessera_cluster::api::{cluster_error as cluster_err, error as err, ReadParams};
use tessera_raft::{Catalog, Command, JobState, NodeId};

use crate::http::HttpState;
use crate::ladder::NodeLoad;

/// What node `id` holds that would be lost or interrupted if it left: the streams it is the
/// origin of, the ladders it makes, the VOD jobs it runs.
fn holds(c: &Catalog, id: NodeId, load: Option<&NodeLoad>) -> Value {
    let origins: Vec<&String> =
        c.streams.iter().filter(|(_, s)| s.origin.is_some_and(|o| o.node == id)).map(|(n, _)| n).collect();
    let ladders: Vec<&String> =
        c.streams.iter().filter(|(_, s)| s.placement.is_some_and(|p| p.node == id)).map(|(n, _)| n).collect();
    let jobs: Vec<String> = c
        .jobs
        .iter()
        .filter(|(_, j)| j.state == JobState::Leased && j.lease.is_some_and(|l| l.node == id))
        .map(|(k, _)| k.clone())
        .collect();
    let workers = load.map_or(0, |l| l.ladders.len());
    let nothing = origins.is_empty() && ladders.is_empty() && jobs.is_empty() && workers == 0;
    json!({ "origins": origins, "ladders": ladders, "jobs": jobs, "workers": workers, "nothing": nothing })
}

/// Every node: its record, whether it drains, what it holds, and (when it answered) its
/// transcoding capacity, promises, measured load and the ladders it makes.
async fn views(state: &HttpState) -> Vec<Value> {
    let loads = crate::ladder::cluster_loads(&state.ladders, &state.cluster).await;
    let members = state.cluster.catalog.status().members;
    state.cluster.catalog.peek(|c| {
        c.nodes
            .values()
            .map(|n| {
                let load = loads.iter().find(|l| l.node == n.id);
                let mut v = serde_json::to_value(n).unwrap_or_default();
                v["draining"] = json!(c.is_draining(n.id));
                v["member"] = json!(members.iter().any(|m| m.id == n.id));
                v["reachable"] = json!(load.is_some());
                v["transcode"] = match load {
                    Some(l) => json!({
                        "capacity": l.capacity,
                        "reserved": l.reserved,
                        "busy": l.busy,
                        "headroom": l.headroom(),
                        "ladders": l.ladders,
                    }),
                    None => Value::Null,
                };
                v["holds"] = holds(c, n.id, load);
                v
            })
            .collect()
    })
}

/// In the admin API's read envelope: linearizable (this node catches up with the leader
/// first) unless `?consistency=local`.
pub(super) async fn list(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    if p.local() {
        let r = state.cluster.catalog.read_local(|_| ());
        let data = views(&state).await;
        return Json(json!({ "consistency": "local", "applied": r.applied, "leader": r.leader, "data": data }))
            .into_response();
    }
    if let Err(e) = state.cluster.read(|_| ()).await {
        return cluster_err(e);
    }
    Json(json!({ "consistency": "linearizable", "data": views(&state).await })).into_response()
}

pub(super) async fn get(State(state): State<Arc<HttpState>>, Path(id): Path<NodeId>) -> Response {
    match views(&state).await.into_iter().find(|v| v["id"].as_u64() == Some(id)) {
        Some(v) => Json(v).into_response(),
        None => err(StatusCode::NOT_FOUND, "not_found", format!("no node {id}")),
    }
}

/// Sets the flag, then answers the node as this node sees it once it has caught up.
async fn set_draining(state: Arc<HttpState>, id: NodeId, draining: bool) -> Response {
    if let Err(e) = state.cluster.propose(Command::SetDraining { node: id, draining }).await {
        return cluster_err(e);
    }
    tracing::info!(node = id, draining, "node drain set");
    if let Err(e) = state.cluster.read(|_| ()).await {
        return cluster_err(e);
    }
    get(State(state), Path(id)).await
}

pub(super) async fn drain(State(state): State<Arc<HttpState>>, Path(id): Path<NodeId>) -> Response {
    set_draining(state, id, true).await
}

pub(super) async fn undrain(State(state): State<Arc<HttpState>>, Path(id): Path<NodeId>) -> Response {
    set_draining(state, id, false).await
}

pub(super) async fn remove(State(state): State<Arc<HttpState>>, Path(id): Path<NodeId>) -> Response {
    let known = state.cluster.catalog.status().members.iter().any(|m| m.id == id);
    if !known {
        return err(StatusCode::NOT_FOUND, "not_found", format!("node {id} is not a member"));
    }
    match state.cluster.remove(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => cluster_err(e),
    }
}
