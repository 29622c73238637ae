//! The cluster's nodes in the admin API: each node's record with what it makes and holds
//! (`GET /api/v1/nodes`, `GET /api/v1/nodes/{id}`), draining (`POST` and `DELETE
//! /api/v1/nodes/{id}/drain`) and removal (`DELETE /api/v1/nodes/{id}`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tessera_cluster::api::{cluster_error as cluster_err, error as err, ApiError, Read, ReadParams};
use tessera_raft::{Catalog, Command, JobState, NodeId, NodeRecord};

use crate::http::HttpState;
use crate::ladder::{HostedLadder, NodeLoad};

/// A node as the admin API shows it: its record, whether it drains, what it holds, and
/// (when it answered) its transcoding.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct NodeView {
    #[serde(flatten)]
    record: NodeRecord,
    draining: bool,
    /// Whether it is a member of the catalog's Raft group.
    member: bool,
    /// Whether it answered this node just now.
    reachable: bool,
    transcode: Option<TranscodeView>,
    holds: Holds,
}

/// A node's transcoding: its capacity, what it promised and used (cores), and its ladders.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TranscodeView {
    capacity: f64,
    reserved: f64,
    busy: f64,
    headroom: f64,
    ladders: Vec<HostedLadder>,
}

/// What a node holds that would be lost or interrupted if it left.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Holds {
    /// The streams it is the origin of.
    origins: Vec<String>,
    /// The streams whose ladders it makes.
    ladders: Vec<String>,
    /// The VOD jobs it runs (`ASSET/RENDITION`).
    jobs: Vec<String>,
    /// Its codec worker processes.
    workers: usize,
    /// None of the above.
    nothing: bool,
}

fn holds(c: &Catalog, id: NodeId, load: Option<&NodeLoad>) -> Holds {
    let origins: Vec<String> =
        c.streams.iter().filter(|(_, s)| s.origin.is_some_and(|o| o.node == id)).map(|(n, _)| n.clone()).collect();
    let ladders: Vec<String> =
        c.streams.iter().filter(|(_, s)| s.placement.is_some_and(|p| p.node == id)).map(|(n, _)| n.clone()).collect();
    let jobs: Vec<String> = c
        .jobs
        .iter()
        .filter(|(_, j)| j.state == JobState::Leased && j.lease.is_some_and(|l| l.node == id))
        .map(|(k, _)| k.clone())
        .collect();
    let workers = load.map_or(0, |l| l.ladders.len());
    let nothing = origins.is_empty() && ladders.is_empty() && jobs.is_empty() && workers == 0;
    Holds { origins, ladders, jobs, workers, nothing }
}

/// Every node, as [`NodeView`].
async fn views(state: &HttpState) -> Vec<NodeView> {
    let loads = crate::ladder::cluster_loads(&state.ladders, &state.cluster).await;
    let members = state.cluster.catalog.status().members;
    state.cluster.catalog.peek(|c| {
        c.nodes
            .values()
            .map(|n| {
                let load = loads.iter().find(|l| l.node == n.id);
                NodeView {
                    record: n.clone(),
                    draining: c.is_draining(n.id),
                    member: members.iter().any(|m| m.id == n.id),
                    reachable: load.is_some(),
                    transcode: load.map(|l| TranscodeView {
                        capacity: l.capacity,
                        reserved: l.reserved,
                        busy: l.busy,
                        headroom: l.headroom(),
                        ladders: l.ladders.clone(),
                    }),
                    holds: holds(c, n.id, load),
                }
            })
            .collect()
    })
}

/// The nodes in the catalog
///
/// Their addresses, transcoding and what they hold. Linearizable (this node catches up
/// with the leader first) unless `?consistency=local`.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "nodes", operation_id = "list_nodes", params(ReadParams),
    responses((status = 200, body = Read<Vec<NodeView>>), (status = 503, body = ApiError)))]
pub(super) async fn list(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    if p.local() {
        let r = state.cluster.catalog.read_local(|_| ());
        return Json(Read::local(views(&state).await, r.applied, r.leader)).into_response();
    }
    if let Err(e) = state.cluster.read(|_| ()).await {
        return cluster_err(e);
    }
    Json(Read::linearizable(views(&state).await)).into_response()
}

/// One node, as in the list
#[utoipa::path(get, path = "/api/v1/nodes/{id}", tag = "nodes", operation_id = "get_node",
    params(("id" = u64, Path, description = "The node")),
    responses((status = 200, body = NodeView), (status = 404, body = ApiError)))]
pub(super) async fn get(State(state): State<Arc<HttpState>>, Path(id): Path<NodeId>) -> Response {
    match views(&state).await.into_iter().find(|v| v.record.id == id) {
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

/// Drains a node
///
/// It takes no new publishers, ladders or VOD jobs, and the ladders it makes move to other
/// nodes; the answer is the node once this node has caught up.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/drain", tag = "nodes", operation_id = "drain_node",
    params(("id" = u64, Path, description = "The node")),
    responses((status = 200, body = NodeView), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
pub(super) async fn drain(State(state): State<Arc<HttpState>>, Path(id): Path<NodeId>) -> Response {
    set_draining(state, id, true).await
}

/// Undrains a node: it takes work again
#[utoipa::path(delete, path = "/api/v1/nodes/{id}/drain", tag = "nodes", operation_id = "undrain_node",
    params(("id" = u64, Path, description = "The node")),
    responses((status = 200, body = NodeView), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
pub(super) async fn undrain(State(state): State<Arc<HttpState>>, Path(id): Path<NodeId>) -> Response {
    set_draining(state, id, false).await
}

/// Removes a node from the cluster (for a node that is gone for good)
#[utoipa::path(delete, path = "/api/v1/nodes/{id}", tag = "nodes", operation_id = "remove_node",
    params(("id" = u64, Path, description = "The node")),
    responses((status = 204, description = "Removed"), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
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
