//! The node's HTTP routes: every part's own (live, VOD, license endpoints) under CORS,
//! `/metrics`, `/streams` (the streams with their renditions and transcoder state, as
//! JSON), and the admin API. A path no route knows answers 404 (`not_found`, as the admin
//! API's errors are written), whether or not the request carries a token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tessera_license::gate::ReleaseGate;
use tessera_live::relay::Followers;
use tessera_live::store::SegmentStore;
use tower_http::cors::{Any, CorsLayer};

/// What the node's own handlers (and its admin API) share.
pub struct HttpState {
    pub store: Arc<SegmentStore>,
    pub metrics: PrometheusHandle,
    pub node_id: String,
    /// The node's catalog member (admin API).
    pub cluster: tessera_cluster::ClusterService,
    /// Streams whose origin is another node (where each node stands, for the admin API).
    pub followers: Arc<Followers>,
    /// Who may call the admin API.
    pub admin: Arc<tessera_cluster::api::AdminAuth>,
    /// What a scheduled release lets this node serve (`/streams` lists public streams only).
    pub gate: ReleaseGate,
    /// The ladders this node makes (the admin API's nodes and drain).
    pub ladders: Arc<crate::ladder::LadderHost>,
    /// The node's data folder (its filesystem's free space is a gauge).
    pub data_dir: std::path::PathBuf,
    /// Reloads the configuration, changes the log filter (admin API).
    pub reloader: Arc<crate::reload::Reloader>,
    /// Where the alert rules are evaluated (the console's alerts).
    pub prometheus_url: Option<String>,
}

/// The node's routes and the `public` ones of its parts (live, VOD playback, license
/// endpoints) under CORS; the admin API, with the `admin` routes of its parts behind the
/// admin token check and their `preflight` ones before it.
pub fn router(state: Arc<HttpState>, public: Router, admin: Router, preflight: Router) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers(Any);
    Router::new()
        .route("/metrics", get(metrics))
        .route("/streams", get(streams))
        .with_state(state.clone())
        .merge(public)
        .layer(cors)
        .merge(crate::admin::router(state.clone(), state.admin.clone(), admin, preflight))
        .fallback(not_found)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    tessera_cluster::api::error(axum::http::StatusCode::NOT_FOUND, "not_found", format!("nothing at {}", uri.path()))
}

/// The document of the node's own public routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(metrics, streams))]
pub struct NodePublicApi;

/// The node's Prometheus series
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4", body = String)))]
async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    crate::telemetry::record_process();
    crate::catalog_metrics::record_catalog(&state.cluster);
    crate::telemetry::record_disk(&state.data_dir);
    let viewers: usize = state.store.viewers.counts(std::time::Instant::now()).values().sum();
    metrics::gauge!("tessera_viewers").set(viewers as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// The public live streams this node holds.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct NodeStreams {
    /// The node's name, as its configuration gives it.
    node: String,
    streams: Vec<tessera_live::store::StreamStatus>,
}

/// The public live streams this node holds
///
/// Their renditions (measured bitrate, codecs, resolution, whether offered or dropped), the
/// transcoder and the viewers here. Released content only.
#[utoipa::path(get, path = "/streams", tag = "playback", operation_id = "node_streams", security(()),
    responses((status = 200, body = NodeStreams)))]
async fn streams(State(state): State<Arc<HttpState>>) -> Response {
    let mut streams = state.store.status();
    streams.retain(|s| state.gate.live_is_public(&s.name));
    axum::Json(NodeStreams { node: state.node_id.clone(), streams }).into_response()
}
