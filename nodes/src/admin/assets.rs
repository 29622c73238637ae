//! `GET /api/v1/assets`, `GET/DELETE /api/v1/assets/{id}`: VOD assets as the catalog has
//! them. Uploads are `/api/v1/uploads` ([`crate::vod::uploads`]).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_raft::Command;

use super::{cluster_err, err, read, ReadParams};
use crate::http::HttpState;

pub(super) async fn list(State(state): State<Arc<HttpState>>, Query(p): Query<ReadParams>) -> Response {
    read(&state, &p, |c| c.assets.values().cloned().collect::<Vec<_>>()).await
}

pub(super) async fn get(State(state): State<Arc<HttpState>>, Path(id): Path<String>) -> Response {
    match state.cluster.read(|c| c.assets.get(&id).cloned()).await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => err(StatusCode::NOT_FOUND, "not_found", format!("no asset {id:?}")),
        Err(e) => cluster_err(e),
    }
}

/// Deletes the asset; its source and renditions go with it: from the archive and this
/// node at once, from the node holding the source by its own sweep. A worker still busy
/// with one of its jobs stops at its next lease renewal; anything it writes meanwhile is
/// swept from the archive an hour later.
pub(super) async fn delete(State(state): State<Arc<HttpState>>, Path(id): Path<String>) -> Response {
    let holder = state.cluster.catalog.read_local(|c| c.assets.get(&id).map(|a| a.source.node)).value;
    match state.cluster.propose(Command::DeleteAsset { id: id.clone() }).await {
        Ok(_) => {
            if holder == Some(state.cluster.identity.id) {
                crate::vod::remove_source(&state.uploads.sources, &id).await;
            }
            match state.uploads.archive.delete_asset(&id).await {
                Ok(n) => tracing::info!(asset = %id, files = n, "deleted asset's archived files removed"),
                Err(e) => tracing::warn!(asset = %id, error = %e, "archived files of a deleted asset left for the sweep"),
            }
            crate::vod::reconcile(&state.cluster, &state.uploads).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => cluster_err(e),
    }
}
