//! The answering node's own settings: `POST /api/v1/node/reload` reads its configuration
//! again (as SIGHUP does) and says what applied and what needs a restart; `PUT
//! /api/v1/node/log {"filter": "..."}` changes its log filter.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{err, ApiError};
use crate::http::HttpState;
use crate::reload::ReloadReport;

/// Reads the answering node's configuration again
///
/// As SIGHUP does: what can change live applies; what needs a restart is named and keeps
/// its old value.
#[utoipa::path(post, path = "/api/v1/node/reload", tag = "node", operation_id = "reload_configuration",
    responses((status = 200, body = ReloadReport), (status = 400, body = ApiError)))]
pub(super) async fn reload(State(state): State<Arc<HttpState>>) -> Response {
    match state.reloader.reload() {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "configuration reload refused");
            err(StatusCode::BAD_REQUEST, "invalid", e.to_string())
        }
    }
}

/// A log filter, in tracing's syntax (`info,tessera_live=debug`).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub(crate) struct LogBody {
    filter: String,
}

/// Changes the answering node's log filter
#[utoipa::path(put, path = "/api/v1/node/log", tag = "node", operation_id = "set_log_filter", request_body = LogBody,
    responses((status = 200, body = LogBody), (status = 400, body = ApiError)))]
pub(super) async fn log(State(state): State<Arc<HttpState>>, Json(body): Json<LogBody>) -> Response {
    match state.reloader.set_log_filter(&body.filter) {
        Ok(()) => Json(body).into_response(),
        Err(why) => err(StatusCode::BAD_REQUEST, "invalid", why),
    }
}
