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
use serde::Deserialize;
use serde_json::json;
use tessera_cluster::api::{cluster_error as cluster_err, error as err, ReadParams};
use tessera_cluster::ClusterService;
use tessera_raft::{valid_content, Command, ContentSettings, Protection};

use crate::actor::LicenseMsg;
use crate::gate::Clock;
use crate::regions::Range;
use crate::token::Claims;

/// What a `PUT` of a stream or an asset says of its protection.
#[derive(Debug, Default, Deserialize)]
pub struct ProtectionBody {
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

/// What the protection admin routes need.
pub struct ProtectionAdmin {
    pub cluster: ClusterService,
    /// The license actor, when the node has a key-encryption key (it signs tokens).
    pub license: Option<LicenseRef>,
    pub clock: Clock,
}

/// The routes, to be mounted behind the admin token check.
pub fn router(state: Arc<ProtectionAdmin>) -> Router {
    Router::new()
        .route("/api/v1/tokens", post(issue))
        .route("/api/v1/revocations", get(revoked).post(revoke))
        .route("/api/v1/revocations/{subject}", delete(restore))
        .route("/api/v1/regions", put(regions))
        .with_state(state)
}

#[derive(Deserialize)]
struct TokenBody {
    subject: String,
    content: String,
    /// RFC 3339.
    expires: String,
    regions: Option<Vec<String>>,
    max_streams: Option<u32>,
}

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
        Some(Ok(token)) => {
            (StatusCode::CREATED, Json(json!({ "token": token, "expires": body.expires }))).into_response()
        }
        Some(Err(e)) => err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
        None => err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the license service did not answer"),
    }
}

#[derive(Deserialize)]
struct RevokeBody {
    subject: String,
}

async fn propose(state: &ProtectionAdmin, command: Command, ok: StatusCode) -> Response {
    match state.cluster.propose(command).await {
        Ok(_) => ok.into_response(),
        Err(e) => cluster_err(e),
    }
}

async fn revoke(State(state): State<Arc<ProtectionAdmin>>, Json(body): Json<RevokeBody>) -> Response {
    tracing::info!(subject = %body.subject, "viewer revoked through the admin API");
    propose(&state, Command::RevokeSubject { subject: body.subject, revoked: true }, StatusCode::NO_CONTENT).await
}

/// The revoked viewers' subjects, sorted.
async fn revoked(State(state): State<Arc<ProtectionAdmin>>, Query(p): Query<ReadParams>) -> Response {
    tessera_cluster::api::read(&state.cluster, &p, |c| c.revoked_subjects.clone()).await
}

async fn restore(State(state): State<Arc<ProtectionAdmin>>, Path(subject): Path<String>) -> Response {
    propose(&state, Command::RevokeSubject { subject, revoked: false }, StatusCode::NO_CONTENT).await
}

#[derive(Deserialize)]
struct RegionsBody {
    /// `ADDRESS/PREFIX=REGION` lines.
    ranges: Vec<String>,
}

async fn regions(State(state): State<Arc<ProtectionAdmin>>, Json(body): Json<RegionsBody>) -> Response {
    if let Some(e) = body.ranges.iter().find_map(|l| Range::parse(l).err()) {
        return err(StatusCode::BAD_REQUEST, "invalid", e);
    }
    propose(&state, Command::SetRegionTable { lines: body.ranges }, StatusCode::NO_CONTENT).await
}
