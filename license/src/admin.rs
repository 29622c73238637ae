//! Content protection through the admin API: playback tokens (`POST /api/v1/tokens`),
//! revoked viewers (`GET` and `POST /api/v1/revocations`, `DELETE /api/v1/revocations/{subject}`)
//! and the address-to-region table (`PUT /api/v1/regions`); and what a stream's or an
//! asset's `PUT` body says of its protection ([`ProtectionBody`]). The node mounts these
//! routes behind its admin token check.

use std::sync::Arc;
use std::time::Duration;

use crate::supervisor::LicenseRef;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use tessera_cluster::api::{cluster_error as cluster_err, error as err, ApiError, Read, ReadParams};
use tessera_cluster::ClusterService;
use tessera_raft::{valid_content, Command, ContentSettings, Protection, ProtectionRecord};

use crate::actor::LicenseMsg;
use crate::gate::Clock;
use crate::regions::Range;
use crate::token::Claims;

/// What a `PUT` of a stream or an asset says of its protection.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ProtectionBody {
    /// `none`, `aes-128` or `cbcs`.
    pub encryption: Option<Protection>,
    /// The viewer regions its rights allow.
    pub regions: Option<Vec<String>>,
    pub signed_urls: Option<bool>,
    /// A DRM provider's SPEKE v2 key server (`cbcs`): a URL, or `null` to stop using one.
    #[serde(default, deserialize_with = "present")]
    pub key_server: Option<Option<String>>,
}

/// A field that may be `null`: present (`Some`, maybe `None`) or absent (`None`, by default).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl ProtectionBody {
    /// What the body sets, as part of one [`Command::ConfigureContent`].
    pub fn settings(&self) -> ContentSettings {
        ContentSettings {
            encryption: self.encryption,
            regions: self.regions.clone(),
            signed_urls: self.signed_urls,
            key_server: self.key_server.clone(),
            ..ContentSettings::default()
        }
    }
}

/// A content's protection as the admin API shows it (its keys counted, never shown).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProtectionView {
    pub mode: Protection,
    /// The viewer regions its rights allow (empty: everywhere).
    pub regions: Vec<String>,
    /// How many content keys it has had (the newest is in use).
    pub keys: usize,
    pub signed_urls: bool,
    pub key_server: Option<String>,
}

impl ProtectionView {
    pub fn of(p: &ProtectionRecord) -> Self {
        ProtectionView {
            mode: p.mode,
            regions: p.regions.clone(),
            keys: p.keys.len(),
            signed_urls: p.signed_urls,
            key_server: p.key_server.clone(),
        }
    }
}

/// What the protection admin routes need.
pub struct ProtectionAdmin {
    pub cluster: ClusterService,
    /// The license actor, when the node has a key-encryption key (it signs tokens).
    pub license: Option<LicenseRef>,
    pub clock: Clock,
}

/// The document of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(issue, revoke, revoked, restore, regions))]
pub struct ProtectionAdminApi;

/// The routes, to be mounted behind the admin token check.
pub fn router(state: Arc<ProtectionAdmin>) -> Router {
    Router::new()
        .route("/api/v1/tokens", post(issue))
        .route("/api/v1/revocations", get(revoked).post(revoke))
        .route("/api/v1/revocations/{subject}", delete(restore))
        .route("/api/v1/regions", put(regions))
        .with_state(state)
}

/// A playback token to issue.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct TokenBody {
    /// The viewer (1 to 256 characters); revocations name it.
    subject: String,
    /// `live/NAME` or `vod/ASSET`.
    content: String,
    /// RFC 3339.
    expires: String,
    /// The viewer regions it plays in (none: wherever the content's rights allow).
    regions: Option<Vec<String>>,
    /// How many streams the viewer may play at once.
    max_streams: Option<u32>,
}

/// An issued playback token.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IssuedToken {
    /// For `?token=` or `Authorization: Bearer`.
    token: String,
    expires: String,
}

/// Issues a playback token
///
/// HMAC-SHA256 under the cluster's secret; players present it as `?token=` or a bearer
/// token, and every node checks it without asking another.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "protection", operation_id = "issue_token", request_body = TokenBody,
    responses((status = 201, body = IssuedToken), (status = 400, body = ApiError),
        (status = 503, description = "No key-encryption key on this node, or no catalog", body = ApiError)))]
async fn issue(State(state): State<Arc<ProtectionAdmin>>, Json(body): Json<TokenBody>) -> Response {
    let Some(license) = &state.license else {
        return err(StatusCode::SERVICE_UNAVAILABLE, "no_license", "this node has no key-encryption key");
    };
    if body.subject.is_empty() || body.subject.len() > 256 {
        return err(StatusCode::BAD_REQUEST, "invalid", "subject: 1 to 256 characters");
    }
    if !valid_content(&body.content) {
        return err(StatusCode::BAD_REQUEST, "invalid", format!("content {:?}: live/NAME or vod/ASSET", body.content));
    }
    let exp = match DateTime::parse_from_rfc3339(&body.expires) {
        Ok(t) => t.timestamp(),
        Err(e) => return err(StatusCode::BAD_REQUEST, "invalid", format!("expires: not an RFC 3339 time ({e})")),
    };
    let now = (state.clock)() / 1000;
    let claims = Claims {
        sub: body.subject,
        content: body.content,
        exp,
        iat: now,
        regions: body.regions,
        max_streams: body.max_streams,
    };
    match license.call(|reply| LicenseMsg::Issue(claims, reply), Duration::from_secs(10)).await {
        Some(Ok(token)) => (StatusCode::CREATED, Json(IssuedToken { token, expires: body.expires })).into_response(),
        Some(Err(e)) => err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
        None => err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the license service did not answer"),
    }
}

/// The viewer to revoke.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct RevokeBody {
    subject: String,
}

async fn propose(state: &ProtectionAdmin, command: Command, ok: StatusCode) -> Response {
    match state.cluster.propose(command).await {
        Ok(_) => ok.into_response(),
        Err(e) => cluster_err(e),
    }
}

/// Revokes a viewer
///
/// Every node refuses its key requests once it has applied the revocation.
#[utoipa::path(post, path = "/api/v1/revocations", tag = "protection", operation_id = "revoke_viewer", request_body = RevokeBody,
    responses((status = 204, description = "Revoked"), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn revoke(State(state): State<Arc<ProtectionAdmin>>, Json(body): Json<RevokeBody>) -> Response {
    tracing::info!(subject = %body.subject, "viewer revoked through the admin API");
    propose(&state, Command::RevokeSubject { subject: body.subject, revoked: true }, StatusCode::NO_CONTENT).await
}

/// The revoked viewers' subjects, sorted
#[utoipa::path(get, path = "/api/v1/revocations", tag = "protection", operation_id = "list_revocations", params(ReadParams),
    responses((status = 200, body = Read<Vec<String>>), (status = 503, body = ApiError)))]
async fn revoked(State(state): State<Arc<ProtectionAdmin>>, Query(p): Query<ReadParams>) -> Response {
    tessera_cluster::api::read(&state.cluster, &p, |c| c.revoked_subjects.clone()).await
}

/// Allows a revoked viewer again
#[utoipa::path(delete, path = "/api/v1/revocations/{subject}", tag = "protection", operation_id = "restore_viewer",
    params(("subject" = String, Path, description = "The viewer")),
    responses((status = 204, description = "Allowed again"), (status = 503, body = ApiError)))]
async fn restore(State(state): State<Arc<ProtectionAdmin>>, Path(subject): Path<String>) -> Response {
    propose(&state, Command::RevokeSubject { subject, revoked: false }, StatusCode::NO_CONTENT).await
}

/// The table that maps viewer addresses to regions.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct RegionsBody {
    /// `ADDRESS/PREFIX=REGION` lines.
    ranges: Vec<String>,
}

/// Replaces the address-to-region table
///
/// The most specific range wins; viewers outside every range have no region.
#[utoipa::path(put, path = "/api/v1/regions", tag = "protection", operation_id = "set_regions", request_body = RegionsBody,
    responses((status = 204, description = "Replaced"), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn regions(State(state): State<Arc<ProtectionAdmin>>, Json(body): Json<RegionsBody>) -> Response {
    if let Some(e) = body.ranges.iter().find_map(|l| Range::parse(l).err()) {
        return err(StatusCode::BAD_REQUEST, "invalid", e);
    }
    propose(&state, Command::SetRegionTable { lines: body.ranges }, StatusCode::NO_CONTENT).await
}
