//! What every part of the admin API (`/api/v1/...`) shares: who may call it (a bearer admin
//! token from the catalog or the node's configuration), errors as
//! `{"error": CODE, "message": ...}` with the status a catalog error deserves, and reads
//! that are linearizable unless `?consistency=local` asks for this node's copy.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tessera_raft::{Catalog, CatalogError, CatalogNode, Rejection, TokenKind};

use crate::identity::secret_hash;
use crate::{ClusterError, ClusterService};
use tessera_raft::{
    AssetRejection, ImportRejection, JobRejection, NodeRejection, ProtectionRejection, ReleaseRejection,
    StreamRejection,
};

/// An error answer.
/// Every error of the HTTP API: a stable code and a sentence for people.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// `not_found`, `invalid`, `exists`, `live`, `unavailable`, `unauthorized`, `forbidden`,
    /// `release_state`, `stale_epoch`, `not_empty`, ...
    pub error: String,
    pub message: String,
}

pub fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (status, Json(ApiError { error: code.to_string(), message: message.to_string() })).into_response()
}

pub fn catalog_error(e: CatalogError) -> Response {
    match e {
        CatalogError::Rejected(r) => rejection(r),
        CatalogError::NotLeader(_) | CatalogError::Unavailable(_) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e)
        }
        CatalogError::Fatal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

/// A command the catalog refused: not found, a conflict with the state, or invalid.
pub fn rejection(r: Rejection) -> Response {
    let (status, code) = match &r {
        Rejection::Stream(StreamRejection::NoSuchStream(_))
        | Rejection::Node(NodeRejection::NoSuchNode(_))
        | Rejection::Release(ReleaseRejection::NoSuchRelease(_))
        | Rejection::Asset(AssetRejection::NoSuchAsset(_)) => (StatusCode::NOT_FOUND, "not_found"),
        Rejection::Release(ReleaseRejection::ReleasePending { .. })
        | Rejection::Release(ReleaseRejection::ReleaseOpen(_))
        | Rejection::Release(ReleaseRejection::ReleaseOver(_)) => (StatusCode::CONFLICT, "release_state"),
        Rejection::Release(ReleaseRejection::StaleRelease { .. }) => (StatusCode::CONFLICT, "stale_release"),
        Rejection::Protection(ProtectionRejection::InvalidProtection(_)) => (StatusCode::BAD_REQUEST, "invalid"),
        Rejection::Stream(StreamRejection::StreamExists(_)) | Rejection::Asset(AssetRejection::AssetExists(_)) => {
            (StatusCode::CONFLICT, "exists")
        }
        Rejection::Stream(StreamRejection::StreamLive(_)) => (StatusCode::CONFLICT, "live"),
        Rejection::Stream(StreamRejection::StaleEpoch { .. }) | Rejection::Job(JobRejection::StaleJobLease { .. }) => {
            (StatusCode::CONFLICT, "stale_epoch")
        }
        Rejection::Job(JobRejection::JobNotClaimable { .. }) => (StatusCode::CONFLICT, "job_state"),
        Rejection::Import(ImportRejection::NotEmpty(_)) => (StatusCode::CONFLICT, "not_empty"),
        _ => (StatusCode::BAD_REQUEST, "invalid"),
    };
    error(status, code, r)
}

pub fn cluster_error(e: ClusterError) -> Response {
    match e {
        ClusterError::Catalog(c) => catalog_error(c),
        other => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", other),
    }
}

/// Who may call the admin API.
pub struct AdminAuth {
    pub catalog: CatalogNode,
    /// SHA-256 of the admin tokens of the node's configuration (the catalog has its own).
    pub configured: Vec<String>,
}

/// Admits a request with a known admin token (`Authorization: Bearer ...`).
pub async fn authorize(State(auth): State<Arc<AdminAuth>>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        metrics::counter!("tessera_admin_unauthorized_total").increment(1);
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an admin token is required (Authorization: Bearer ...)",
        );
    };
    let hash = secret_hash(token);
    let (accepted, initialized) =
        auth.catalog.read_local(|c| (c.accepts(TokenKind::Admin, &hash), c.ca.is_some())).value;
    let known = accepted || auth.configured.contains(&hash);
    if !known && !initialized {
        // A node that has just joined may not hold the catalog (and its tokens) yet.
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node has not caught up with the catalog yet",
        );
    }
    if !known {
        metrics::counter!("tessera_admin_unauthorized_total").increment(1);
        tracing::warn!("admin API call with an unknown token refused");
        return error(StatusCode::FORBIDDEN, "forbidden", "unknown admin token");
    }
    next.run(req).await
}

/// `?consistency=local` for a read from this node's copy.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// `local` reads this node's own copy at once (the answer says how far it has got);
    /// anything else, or nothing, reads linearizably.
    consistency: Option<String>,
}

/// How a read was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// After this node caught up with the leader's commit.
    Linearizable,
    /// From this node's copy, as far as it has got.
    Local,
}

/// How far a local read's copy had got.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct Staleness {
    /// The last catalog log index this node applied.
    pub applied: Option<u64>,
    /// The leader this node follows; without one the copy may be arbitrarily old.
    pub leader: Option<u64>,
}

/// A catalog read's answer: what was read in `data`, and how.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Read<T> {
    pub consistency: Consistency,
    /// Only for local reads.
    #[serde(flatten)]
    pub staleness: Option<Staleness>,
    pub data: T,
}

impl<T> Read<T> {
    pub fn linearizable(data: T) -> Self {
        Read { consistency: Consistency::Linearizable, staleness: None, data }
    }

    pub fn local(data: T, applied: Option<u64>, leader: Option<u64>) -> Self {
        Read { consistency: Consistency::Local, staleness: Some(Staleness { applied, leader }), data }
    }
}

impl ReadParams {
    /// Whether the caller asked for this node's copy.
    pub fn local(&self) -> bool {
        self.consistency.as_deref() == Some("local")
    }
}

/// Reads the catalog, linearizably or (when asked) from this node's copy, which the answer
/// says how far it has got (`applied`, `leader`).
pub async fn read<T: serde::Serialize>(
    cluster: &ClusterService,
    p: &ReadParams,
    f: impl Fn(&Catalog) -> T,
) -> Response {
    if p.local() {
        let r = cluster.catalog.read_local(&f);
        return Json(Read::local(r.value, r.applied, r.leader)).into_response();
    }
    match cluster.read(&f).await {
        Ok(v) => Json(Read::linearizable(v)).into_response(),
        Err(e) => cluster_error(e),
    }
}
