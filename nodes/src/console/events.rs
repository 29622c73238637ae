//! `GET /api/v1/console/events`: what the console shows, as server-sent events. Each event
//! is a section named as its table (`cluster`, `nodes`, `streams`, `releases`, `assets`,
//! `revocations`, `live`, `alerts`) carrying the whole section as JSON, sent when it first
//! exists and again only when it changes; the feed looks every second. The catalog's
//! sections are what the admin API answers (read from this node's copy, saying how far it
//! has got); `live` is each node's `/streams` (renditions, viewers) as that node answers it;
//! `alerts` is what the configured Prometheus has firing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::outbound::{body_of, HttpsClient};

/// How often the feed looks for changes.
const EVERY: Duration = Duration::from_secs(1);
/// How long another node's `/streams`, or Prometheus, may take to answer.
const PATIENCE: Duration = Duration::from_millis(1500);

/// The admin API's reads the feed repeats, by section.
const SECTIONS: [(&str, &str); 6] = [
    ("cluster", "/api/v1/cluster"),
    ("nodes", "/api/v1/nodes?consistency=local"),
    ("streams", "/api/v1/streams?consistency=local"),
    ("releases", "/api/v1/releases?consistency=local"),
    ("assets", "/api/v1/assets?consistency=local"),
    ("revocations", "/api/v1/revocations?consistency=local"),
];

/// What the feed reads from.
pub(crate) struct ConsoleFeed {
    /// The admin API's routes, without the token check (the feed's caller has passed it).
    pub api: Router,
    pub cluster: tessera_cluster::ClusterService,
    /// Asks the other nodes and Prometheus (none when the system's root certificates could
    /// not be read: those sections then say so).
    pub client: Option<HttpsClient>,
    /// Where the alert rules are evaluated (`prometheus_url`).
    pub prometheus_url: Option<String>,
}

/// The feed's route, to be mounted behind the admin token check.
pub(crate) fn feed_router(feed: Arc<ConsoleFeed>) -> Router {
    Router::new().route("/api/v1/console/events", get(events)).with_state(feed)
}

/// The document of the feed.
#[derive(utoipa::OpenApi)]
#[openapi(paths(events))]
pub(crate) struct ConsoleFeedApi;

/// What the console shows, as server-sent events
///
/// One event per section (`cluster`, `nodes`, `streams`, `releases`, `assets`,
/// `revocations`, `live`, `alerts`) whose data is that section's JSON, sent when it first
/// exists and again when it changes; the feed looks every second.
#[utoipa::path(get, path = "/api/v1/console/events", tag = "console", operation_id = "console_events",
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 401, body = tessera_cluster::api::ApiError), (status = 403, body = tessera_cluster::api::ApiError)))]
async fn events(State(feed): State<Arc<ConsoleFeed>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut ticks = tokio::time::interval(EVERY);
    // A slow round (a node that does not answer) delays the next one rather than bunching.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sent: HashMap<&'static str, String> = HashMap::new();
    let stream = futures::stream::unfold((feed, ticks, sent), |(feed, mut ticks, mut sent)| async move {
        ticks.tick().await;
        let mut changed = Vec::new();
        for (name, value) in feed.sections().await {
            let text = value.to_string();
            if sent.get(name) != Some(&text) {
                changed.push(Ok(Event::default().event(name).data(&text)));
                sent.insert(name, text);
            }
        }
        Some((futures::stream::iter(changed), (feed, ticks, sent)))
    })
    .flatten();
    Sse::new(stream).keep_alive(KeepAlive::default())
}

impl ConsoleFeed {
    async fn sections(&self) -> Vec<(&'static str, Value)> {
        let reads = SECTIONS.iter().map(|&(name, uri)| async move { (name, self.api_read(uri).await) });
        let mut all = futures::future::join_all(reads).await;
        let (live, alerts) = tokio::join!(self.live(), self.alerts());
        all.push(("live", live));
        all.push(("alerts", alerts));
        all
    }

    /// What the admin API answers to `GET uri`: its JSON, or `{"error": ...}` as it said.
    async fn api_read(&self, uri: &str) -> Value {
        let request = axum::http::Request::get(uri).body(Body::empty()).expect("a GET of a fixed path");
        let answer = match self.api.clone().oneshot(request).await {
            Ok(a) => a,
            Err(e) => match e {},
        };
        let status = answer.status();
        let body = answer.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            value
        } else {
            json!({ "error": value.get("error"), "message": value.get("message"), "status": status.as_u16() })
        }
    }

    /// Every node's `/streams`, as each answers it (or why it did not).
    async fn live(&self) -> Value {
        let nodes = self.cluster.catalog.read_local(|c| c.nodes.values().cloned().collect::<Vec<_>>()).value;
        let asks = nodes.into_iter().map(|n| async move {
            match self.outside(&format!("http://{}/streams", n.http_addr)).await {
                Ok(v) => json!({ "id": n.id, "http_addr": n.http_addr, "streams": v["streams"] }),
                Err(e) => json!({ "id": n.id, "http_addr": n.http_addr, "error": e }),
            }
        });
        Value::Array(futures::future::join_all(asks).await)
    }

    /// The alerts Prometheus has pending or firing.
    async fn alerts(&self) -> Value {
        let Some(base) = &self.prometheus_url else {
            return json!({ "configured": false });
        };
        match self.outside(&format!("{}/api/v1/alerts", base.trim_end_matches('/'))).await {
            Ok(v) => json!({ "configured": true, "source": base, "alerts": v["data"]["alerts"] }),
            Err(e) => json!({ "configured": true, "source": base, "error": e }),
        }
    }

    /// The JSON another server answers to `GET uri`, or why not.
    async fn outside(&self, uri: &str) -> Result<Value, String> {
        let request = axum::http::Request::get(uri).body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
        let client = self.client.as_ref().ok_or("no HTTP client: the system's root certificates could not be read")?;
        let body = body_of(client, request, PATIENCE).await?;
        serde_json::from_slice(&body).map_err(|e| format!("{uri}: not JSON ({e})"))
    }
}
