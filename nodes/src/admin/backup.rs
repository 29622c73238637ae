//! The catalog as a file: `GET /api/v1/catalog/export` reads it whole (linearizably),
//! `POST /api/v1/catalog/import` brings such a file into a cluster that holds no content yet
//! (see [`tessera_raft::catalog`]'s `export` module for what is carried and what is not).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tessera_raft::{CatalogExport, Command};

use super::{cluster_err, err, ApiError};
use crate::http::HttpState;

/// Largest export accepted by `import`: keys and assets of a large library fit many times.
pub(super) const IMPORT_MAX_BYTES: usize = 256 << 20;

/// The catalog's content as a file
///
/// Streams, admin tokens (hashed), releases, protection and keys (wrapped), the region
/// table, revocations, assets and jobs, read linearizably.
#[utoipa::path(get, path = "/api/v1/catalog/export", tag = "catalog", operation_id = "export_catalog",
    responses((status = 200, body = CatalogExport), (status = 503, body = ApiError)))]
pub(super) async fn export(State(state): State<Arc<HttpState>>) -> Response {
    let now = state.cluster.catalog.now_ms();
    match state.cluster.read(move |c| c.export(now)).await {
        Ok(export) => {
            tracing::info!(streams = export.streams.len(), assets = export.assets.len(), "catalog exported");
            let name = format!("attachment; filename=\"tessera-catalog-{now}.json\"");
            ([(header::CONTENT_DISPOSITION, name)], Json(export)).into_response()
        }
        Err(e) => cluster_err(e),
    }
}

/// What an import brought in.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Imported {
    imported: ImportCounts,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ImportCounts {
    streams: usize,
    releases: usize,
    assets: usize,
    jobs: usize,
    /// Protected contents.
    protected: usize,
}

/// Brings an export into this cluster
///
/// The cluster must hold no content yet (409 `not_empty`); what the file holds applies in
/// one catalog write.
#[utoipa::path(post, path = "/api/v1/catalog/import", tag = "catalog", operation_id = "import_catalog", request_body = CatalogExport,
    responses((status = 200, body = Imported), (status = 400, body = ApiError), (status = 409, body = ApiError),
        (status = 503, body = ApiError)))]
pub(super) async fn import(State(state): State<Arc<HttpState>>, body: axum::body::Bytes) -> Response {
    let export: CatalogExport = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return err(StatusCode::BAD_REQUEST, "invalid", format!("not a catalog export: {e}")),
    };
    let counts = ImportCounts {
        streams: export.streams.len(),
        releases: export.releases.len(),
        assets: export.assets.len(),
        jobs: export.jobs.len(),
        protected: export.protection.len(),
    };
    match state.cluster.propose(Command::ImportCatalog { export: Box::new(export) }).await {
        Ok(_) => {
            tracing::info!(streams = counts.streams, assets = counts.assets, "catalog imported");
            Json(Imported { imported: counts }).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "catalog import refused");
            cluster_err(e)
        }
    }
}
