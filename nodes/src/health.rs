//! Whether this node serves (`/livez`) and whether it should be given viewers and
//! publishers (`/readyz`), each answered with its reasons as JSON.
//!
//! - **Live**: the process answers HTTP and its catalog member has not stopped on a fatal
//!   storage error. A supervisor restarts a node that is not live.
//! - **Ready**: every check below passes. A load balancer (a Kubernetes Service) sends
//!   nothing to a node that is not ready, and stops once it turns unready.
//!   - `listeners`: the SRT and RTMP listeners are bound and their accept loops run;
//!   - `leader`: this node knows a catalog leader;
//!   - `catalog`: a linearizable read completes here within the bound (the leader confirms
//!     its lead with a quorum and this node has applied that far), so what this node serves
//!     from its copy of the catalog (releases, tokens, rights) is current;
//!   - `draining`: this node is not draining (a node drained before an upgrade or a
//!     removal turns unready, and viewers go elsewhere while its work moves).
//!
//! `/healthz` answers as `/livez` does, for the probes written for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tessera_cluster::ClusterService;

/// What `/livez` and `/readyz` look at.
pub struct Health {
    cluster: ClusterService,
    /// The listeners whose accept loops must run for the node to be ready.
    listeners: Vec<(&'static str, Arc<AtomicBool>)>,
    /// How long a linearizable read may take before the node's catalog is called behind.
    catalog_within: Duration,
    started: Instant,
}

/// One check of a report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was seen, or why the check fails.
    pub detail: String,
}

/// A health answer: `ok` when every check passes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub ok: bool,
    pub node: u64,
    pub uptime_s: u64,
    pub checks: Vec<Check>,
}

impl Report {
    fn new(health: &Health, checks: Vec<Check>) -> Report {
        Report {
            ok: checks.iter().all(|c| c.ok),
            node: health.cluster.identity.id,
            uptime_s: health.started.elapsed().as_secs(),
            checks,
        }
    }
}

impl IntoResponse for Report {
    fn into_response(self) -> Response {
        let status = if self.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        (status, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(self)).into_response()
    }
}

/// Set while a listener's accept loop runs; cleared when it ends (or panics).
pub struct ListenerUp(Arc<AtomicBool>);

impl ListenerUp {
    fn new(flag: Arc<AtomicBool>) -> ListenerUp {
        flag.store(true, Ordering::Release);
        ListenerUp(flag)
    }
}

impl Drop for ListenerUp {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Health {
    pub fn new(cluster: ClusterService, catalog_within: Duration) -> Health {
        Health { cluster, listeners: Vec::new(), catalog_within, started: Instant::now() }
    }

    /// Registers a listener; hold the returned guard inside its accept loop.
    pub fn listener(&mut self, name: &'static str) -> impl FnOnce() -> ListenerUp {
        let flag = Arc::new(AtomicBool::new(false));
        self.listeners.push((name, flag.clone()));
        move || ListenerUp::new(flag)
    }

    /// `/livez`: the catalog member still runs.
    pub fn live(&self) -> Report {
        let state = self.cluster.catalog.status().state;
        let stopped = state == "shutdown";
        let detail = if stopped { "the catalog member stopped: restart the node".into() } else { state };
        Report::new(self, vec![Check { name: "catalog_member", ok: !stopped, detail }])
    }

    /// `/readyz`: every check of the module's list, the catalog's last (it may wait up to
    /// the bound).
    pub async fn ready(&self) -> Report {
        let mut checks = vec![self.listeners_check()];
        let status = self.cluster.catalog.status();
        checks.push(match status.leader {
            Some(l) => Check { name: "leader", ok: true, detail: format!("node {l}, term {}", status.term) },
            None => Check { name: "leader", ok: false, detail: format!("no leader known in term {}", status.term) },
        });
        let id = self.cluster.identity.id;
        let draining = self.cluster.catalog.peek(|c| c.is_draining(id));
        checks.push(Check {
            name: "draining",
            ok: !draining,
            detail: if draining { "this node is draining".into() } else { "not draining".into() },
        });
        checks.push(self.catalog_check().await);
        Report::new(self, checks)
    }

    fn listeners_check(&self) -> Check {
        let down: Vec<&str> =
            self.listeners.iter().filter(|(_, up)| !up.load(Ordering::Acquire)).map(|(n, _)| *n).collect();
        let names: Vec<&str> = self.listeners.iter().map(|(n, _)| *n).collect();
        if down.is_empty() {
            Check { name: "listeners", ok: true, detail: format!("{} accepting", names.join(", ")) }
        } else {
            Check { name: "listeners", ok: false, detail: format!("{} not accepting", down.join(", ")) }
        }
    }

    async fn catalog_check(&self) -> Check {
        let asked = Instant::now();
        let within = self.catalog_within;
        match tokio::time::timeout(within, self.cluster.read(|_| ())).await {
            Ok(Ok(())) => {
                let applied = self.cluster.catalog.status().applied.unwrap_or(0);
                let ms = asked.elapsed().as_millis();
                Check {
                    name: "catalog",
                    ok: true,
                    detail: format!("a linearizable read at index {applied} in {ms} ms"),
                }
            }
            Ok(Err(e)) => Check { name: "catalog", ok: false, detail: format!("a linearizable read failed: {e}") },
            Err(_) => Check {
                name: "catalog",
                ok: false,
                detail: format!(
                    "no linearizable read within {} ms: this node is cut off or behind",
                    within.as_millis()
                ),
            },
        }
    }
}

/// `/livez`, `/readyz` and `/healthz`.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// The document of the health probes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(livez, healthz, readyz))]
pub struct HealthApi;

/// The process serves
///
/// Its runtime answers and its catalog node runs; each check with its reason.
#[utoipa::path(get, path = "/livez", tag = "health", security(()),
    responses((status = 200, body = Report), (status = 503, description = "A check fails", body = Report)))]
async fn livez(State(health): State<Arc<Health>>) -> Report {
    health.live()
}

/// The older name of /livez
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, body = Report), (status = 503, description = "A check fails", body = Report)))]
async fn healthz(State(health): State<Arc<Health>>) -> Report {
    health.live()
}

/// Whether the node should take traffic
///
/// Its listeners are bound, a leader is known, its catalog answers a linearizable read
/// within the bound, and it is not draining; each check with its reason.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, body = Report), (status = 503, description = "Not ready, and why", body = Report)))]
async fn readyz(State(health): State<Arc<Health>>) -> Report {
    let report = health.ready().await;
    if !report.ok {
        let failing: Vec<String> =
            report.checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect();
        tracing::debug!(node = report.node, failing = %failing.join("; "), "not ready");
    }
    report
}
