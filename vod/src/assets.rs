//! `GET /api/v1/assets`, `GET/DELETE /api/v1/assets/{id}`: VOD assets as the catalog has
//! them. Uploads are `/api/v1/uploads` ([`crate::uploads`]).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_license::admin::{ProtectionBody, ProtectionView};
use tessera_raft::{AssetRecord, Catalog, Command, JobRecord, JobState, Outcome};

use crate::VodState;
use tessera_cluster::api::{cluster_error as cluster_err, error as err, read, ApiError, Read, ReadParams};

/// What `PUT /api/v1/assets/{id}` takes: its protection. A stream's other fields are
/// named only to be refused.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct AssetBody {
    #[serde(flatten)]
    protection: ProtectionBody,
    #[schema(ignore)]
    name: Option<serde_json::Value>,
    #[schema(ignore)]
    ladder: Option<serde_json::Value>,
    #[schema(ignore)]
    token: Option<serde_json::Value>,
    #[schema(ignore)]
    record: Option<serde_json::Value>,
}

/// An asset with its jobs and how far they are.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct AssetView {
    #[serde(flatten)]
    asset: AssetRecord,
    /// Segments made over segments to make, of every job.
    progress: f64,
    /// The renditions that can be played.
    renditions: Vec<String>,
    jobs: Vec<JobRecord>,
}

fn view(c: &Catalog, asset: &AssetRecord) -> AssetView {
    let jobs: Vec<JobRecord> = c.jobs_of(&asset.id).cloned().collect();
    let (done, total) = c.asset_progress(&asset.id);
    AssetView {
        asset: asset.clone(),
        progress: if total == 0 { 0.0 } else { done as f64 / total as f64 },
        renditions: jobs.iter().filter(|j| j.state == JobState::Done).map(|j| j.rendition.clone()).collect(),
        jobs,
    }
}

/// Every VOD asset, with its jobs and how far they are
#[utoipa::path(get, path = "/api/v1/assets", tag = "vod", operation_id = "list_assets", params(ReadParams),
    responses((status = 200, body = Read<Vec<AssetView>>), (status = 503, body = ApiError)))]
pub(crate) async fn list(State(state): State<Arc<VodState>>, Query(p): Query<ReadParams>) -> Response {
    read(&state.cluster, &p, |c| c.assets.values().map(|a| view(c, a)).collect::<Vec<_>>()).await
}

/// One asset
///
/// Its state, source, renditions and the progress of its jobs.
#[utoipa::path(get, path = "/api/v1/assets/{id}", tag = "vod", operation_id = "get_asset",
    params(("id" = String, Path, description = "The asset")),
    responses((status = 200, body = AssetView), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
pub(crate) async fn get(State(state): State<Arc<VodState>>, Path(id): Path<String>) -> Response {
    match state.cluster.read(|c| c.assets.get(&id).map(|a| view(c, a))).await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => err(StatusCode::NOT_FOUND, "not_found", format!("no asset {id:?}")),
        Err(e) => cluster_err(e),
    }
}

/// An asset's protection after a `PUT`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct AssetProtection {
    id: String,
    protection: Option<ProtectionView>,
}

/// Sets how an asset is protected
///
/// Encryption (`none`, `aes-128`, `cbcs`), the viewer regions its rights allow, signed URLs
/// and a DRM key server, in one catalog write. Its key is made by the node that took the
/// upload.
#[utoipa::path(put, path = "/api/v1/assets/{id}", tag = "vod", operation_id = "protect_asset",
    params(("id" = String, Path, description = "The asset")), request_body = AssetBody,
    responses((status = 200, body = AssetProtection), (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError), (status = 503, body = ApiError)))]
pub(crate) async fn put(
    State(state): State<Arc<VodState>>,
    Path(id): Path<String>,
    Json(body): Json<AssetBody>,
) -> Response {
    if body.name.is_some() || body.ladder.is_some() || body.token.is_some() || body.record.is_some() {
        return err(StatusCode::BAD_REQUEST, "invalid", "an asset takes encryption, regions and signed_urls");
    }
    let body = body.protection;
    if !state.cluster.catalog.read_local(|c| c.assets.contains_key(&id)).value {
        return err(StatusCode::NOT_FOUND, "not_found", format!("no asset {id:?}"));
    }
    let content = format!("vod/{id}");
    // One write: encryption, regions and signing apply together or not at all.
    match state.cluster.propose(Command::ConfigureContent { content: content.clone(), settings: body.settings() }).await
    {
        Ok(Outcome::Rejected(r)) => return err(StatusCode::CONFLICT, "rejected", r.to_string()),
        Ok(_) => {}
        Err(e) => return cluster_err(e),
    }
    let protection = state.cluster.catalog.peek(|c| c.protection.get(&content).map(ProtectionView::of));
    Json(AssetProtection { id, protection }).into_response()
}

/// Tries a dead-lettered (or failed) job again
///
/// Its attempts are counted afresh.
#[utoipa::path(post, path = "/api/v1/assets/{id}/jobs/{rendition}/retry", tag = "vod", operation_id = "retry_job",
    params(("id" = String, Path, description = "The asset"), ("rendition" = String, Path, description = "The job's rendition")),
    responses((status = 204, description = "Queued again"), (status = 409, body = ApiError), (status = 503, body = ApiError)))]
pub(crate) async fn retry(
    State(state): State<Arc<VodState>>,
    Path((id, rendition)): Path<(String, String)>,
) -> Response {
    match state.cluster.propose(Command::RetryJob { asset: id, rendition }).await {
        Ok(Outcome::Rejected(r)) => err(StatusCode::CONFLICT, "rejected", r.to_string()),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => cluster_err(e),
    }
}

/// Deletes an asset
///
/// Its source and renditions go with it: from the archive and this node at once, from the
/// node holding the source by its own sweep. A worker still busy with one of its jobs stops
/// at its next lease renewal; anything it writes meanwhile is swept from the archive an
/// hour later.
#[utoipa::path(delete, path = "/api/v1/assets/{id}", tag = "vod", operation_id = "delete_asset",
    params(("id" = String, Path, description = "The asset")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ApiError), (status = 503, body = ApiError)))]
pub(crate) async fn delete(State(state): State<Arc<VodState>>, Path(id): Path<String>) -> Response {
    let holder = state.cluster.catalog.read_local(|c| c.assets.get(&id).map(|a| a.source.node)).value;
    match state.cluster.propose(Command::DeleteAsset { id: id.clone() }).await {
        Ok(_) => {
            if holder == Some(state.cluster.identity.id) {
                crate::remove_source(&state.uploads.sources, &id).await;
            }
            match state.uploads.archive.delete_asset(&id).await {
                Ok(n) => tracing::info!(asset = %id, files = n, "deleted asset's archived files removed"),
                Err(e) => {
                    tracing::warn!(asset = %id, error = %e, "archived files of a deleted asset left for the sweep")
                }
            }
            crate::reconcile(&state.cluster, &state.uploads).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => cluster_err(e),
    }
}
