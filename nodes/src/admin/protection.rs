//! Content protection through the admin API: playback tokens (`POST /api/v1/tokens`),
//! revoked viewers (`POST /api/v1/revocations`, `DELETE /api/v1/revocations/{subject}`)
//! and the address-to-region table (`PUT /api/v1/regions`). A stream's encryption and
//! rights are set with `PUT /api/v1/streams/{name}` (see the parent module).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::DateTime;
use serde::Deserialize;
use serde_json::json;
use tessera_license::actor::LicenseMsg;
use tessera_license::regions::Range;
use tessera_license::token::Claims;
use tessera_raft::{valid_content, Command};

use super::{cluster_err, err};
use crate::http::HttpState;

#[derive(Deserialize)]
pub(super) struct TokenBody {
    subject: String,
    content: String,
    /// RFC 3339.
    expires: String,
    regions: Option<Vec<String>>,
    max_streams: Option<u32>,
}

pub(super) async fn issue(State(state): State<Arc<HttpState>>, Json(body): Json<TokenBody>) -> Response {
    let Some(license) = state.protection.license() else {
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
    let now = (state.gate.clock())() / 1000;
    let claims = Claims {
        sub: body.subject,
        content: body.content,
        exp,
        iat: now,
        regions: body.regions,
        max_streams: body.max_streams,
    };
    match ractor::call_t!(license, LicenseMsg::Issue, 10_000, claims) {
        Ok(Ok(token)) => {
            (StatusCode::CREATED, Json(json!({ "token": token, "expires": body.expires }))).into_response()
        }
        Ok(Err(e)) => err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
        Err(e) => err(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

#[derive(Deserialize)]
pub(super) struct RevokeBody {
    subject: String,
}

async fn propose(state: &HttpState, command: Command, ok: StatusCode) -> Response {
    match state.cluster.propose(command).await {
        Ok(_) => ok.into_response(),
        Err(e) => cluster_err(e),
    }
}

pub(super) async fn revoke(State(state): State<Arc<HttpState>>, Json(body): Json<RevokeBody>) -> Response {
    tracing::info!(subject = %body.subject, "viewer revoked through the admin API");
    propose(&state, Command::RevokeSubject { subject: body.subject, revoked: true }, StatusCode::NO_CONTENT).await
}

pub(super) async fn restore(State(state): State<Arc<HttpState>>, Path(subject): Path<String>) -> Response {
    propose(&state, Command::RevokeSubject { subject, revoked: false }, StatusCode::NO_CONTENT).await
}

#[derive(Deserialize)]
pub(super) struct RegionsBody {
    /// `ADDRESS/PREFIX=REGION` lines.
    ranges: Vec<String>,
}

pub(super) async fn regions(State(state): State<Arc<HttpState>>, Json(body): Json<RegionsBody>) -> Response {
    if let Some(e) = body.ranges.iter().find_map(|l| Range::parse(l).err()) {
        return err(StatusCode::BAD_REQUEST, "invalid", e);
    }
    propose(&state, Command::SetRegionTable { lines: body.ranges }, StatusCode::NO_CONTENT).await
}
