//! The VOD routes: playback on every node (`/vod/...`), and uploads and assets under the
//! admin API (the node mounts those behind its admin token check).

use std::sync::Arc;

use axum::routing::{get, head, options, post};
use axum::Router;
use tessera_cluster::ClusterService;
use tessera_license::gate::ReleaseGate;
use tessera_license::serving::MediaProtection;

use crate::uploads::{UploadConfig, UploadLocks};
use crate::{assets, serve, uploads};

/// What the VOD handlers share.
pub struct VodState {
    pub cluster: ClusterService,
    /// Where uploads and sources go, and the archive.
    pub uploads: UploadConfig,
    pub upload_locks: UploadLocks,
    /// Whether an asset's release lets this node serve it.
    pub gate: ReleaseGate,
    /// Encrypted assets as this node serves them.
    pub protection: Arc<MediaProtection>,
}

/// The VOD routes, by who may call them.
pub struct VodRoutes {
    /// `/vod/ASSET/...`: players.
    pub playback: Router,
    /// `/api/v1/uploads`, `/api/v1/assets`: admins.
    pub admin: Router,
    /// The tus preflight (`OPTIONS /api/v1/uploads`), which carries no token.
    pub preflight: Router,
}

/// The document of the VOD routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    serve::multivariant,
    serve::rendition_file,
    assets::list,
    assets::get,
    assets::put,
    assets::delete,
    assets::retry,
    uploads::options,
    uploads::create,
    uploads::head,
    uploads::patch,
    uploads::terminate
))]
pub struct VodApi;

pub fn routes(state: Arc<VodState>) -> VodRoutes {
    let playback = Router::new()
        .route("/vod/{asset}/index.m3u8", get(serve::multivariant))
        .route("/vod/{asset}/{rendition}/{file}", get(serve::rendition_file))
        .with_state(state.clone());
    let admin = Router::new()
        .route("/api/v1/assets", get(assets::list))
        .route("/api/v1/assets/{id}", get(assets::get).put(assets::put).delete(assets::delete))
        .route("/api/v1/assets/{id}/jobs/{rendition}/retry", post(assets::retry))
        .route("/api/v1/uploads", post(uploads::create))
        .route("/api/v1/uploads/{id}", head(uploads::head).patch(uploads::patch).delete(uploads::terminate))
        .with_state(state.clone());
    let preflight = Router::new().route("/api/v1/uploads", options(uploads::options)).with_state(state);
    VodRoutes { playback, admin, preflight }
}
