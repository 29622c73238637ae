//! The catalog as a file: `GET /api/v1/catalog/export` reads it whole (linearizably),
//! `POST /api/v1/catalog/import` brings such a file into a cluster that holds no content yet
//! (see [`tessera_raft::catalog`]'s `export` module for what is carried and what is not).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tessera_raft::{CatalogExport, Command};

use super::{cluster_err, err};
use crate::http::HttpState;

/// Largest export accepted by `import`: keys and assets of a large library fit many times.
pub(super) const IMPORT_MAX_BYTES: usize = 256 << 20;

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

pub(super) async fn import(State(state): State<Arc<HttpState>>, body: axum::body::Bytes) -> Response {
    let export: CatalogExport = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return err(StatusCode::BAD_REQUEST, "invalid", format!("not a catalog export: {e}")),
    };
    let counts = json!({
        "streams": export.streams.len(),
        "releases": export.releases.len(),
        "assets": export.assets.len(),
        "jobs": export.jobs.len(),
        "protected": export.protection.len(),
    });
    match state.cluster.propose(Command::ImportCatalog { export: Box::new(export) }).await {
        Ok(_) => {
            tracing::info!(%counts, "catalog imported");
            Json(json!({ "imported": counts })).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "catalog import refused");
            cluster_err(e)
        }
    }
}
