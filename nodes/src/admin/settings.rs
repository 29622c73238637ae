//! The answering node's own settings: `POST /api/v1/node/reload` reads its configuration
//! again (as SIGHUP does) and says what applied and what needs a restart; `PUT
//! /api/v1/node/log {"filter": "..."}` changes its log filter.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::err;
use crate::http::HttpState;

pub(super) async fn reload(State(state): State<Arc<HttpState>>) -> Response {
    match state.reloader.reload() {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "configuration reload refused");
            err(StatusCode::BAD_REQUEST, "invalid", e.to_string())
        }
    }
}

#[derive(Deserialize)]
pub(super) struct LogBody {
    filter: String,
}

pub(super) async fn log(State(state): State<Arc<HttpState>>, Json(body): Json<LogBody>) -> Response {
    match state.reloader.set_log_filter(&body.filter) {
        Ok(()) => Json(json!({ "filter": body.filter })).into_response(),
        Err(why) => err(StatusCode::BAD_REQUEST, "invalid", why),
    }
}
