//! The operator console, served by every node at `/console/` (and `/`, which leads there):
//! one page and its script, style and browser libraries, built into the binary. The page
//! asks for an admin token, keeps it for the browser tab, and speaks the admin API with it;
//! what it shows arrives through [`events`] (`/api/v1/console/events`), never by polling
//! each table.

mod events;

pub(crate) use events::{feed_router, ConsoleFeed, ConsoleFeedApi};

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// A file of the console: its name under `/console/`, its type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal, $path:literal) => {
        Asset { name: $name, content_type: $type, bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), $path)) }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8", "/../console/src/index.html"),
    asset!("app.js", "text/javascript; charset=utf-8", "/../console/src/app.js"),
    asset!("pages.js", "text/javascript; charset=utf-8", "/../console/src/pages.js"),
    asset!("pages/player.js", "text/javascript; charset=utf-8", "/../console/src/pages/player.js"),
    asset!("pages/cluster.js", "text/javascript; charset=utf-8", "/../console/src/pages/cluster.js"),
    asset!("pages/streams.js", "text/javascript; charset=utf-8", "/../console/src/pages/streams.js"),
    asset!("pages/releases.js", "text/javascript; charset=utf-8", "/../console/src/pages/releases.js"),
    asset!("pages/vod.js", "text/javascript; charset=utf-8", "/../console/src/pages/vod.js"),
    asset!("pages/access.js", "text/javascript; charset=utf-8", "/../console/src/pages/access.js"),
    asset!("pages/alerts.js", "text/javascript; charset=utf-8", "/../console/src/pages/alerts.js"),
    asset!("app.css", "text/css; charset=utf-8", "/../console/src/app.css"),
    asset!("icon.svg", "image/svg+xml", "/../console/src/icon.svg"),
    asset!("vendor/hls.min.js", "text/javascript; charset=utf-8", "/../console/node_modules/hls.js/dist/hls.min.js"),
    asset!(
        "vendor/tus.min.js",
        "text/javascript; charset=utf-8",
        "/../console/node_modules/tus-js-client/dist/tus.min.js"
    ),
];

/// Scripts and media from this node only; hls.js runs its transmuxer in a worker it makes
/// from a blob, and plays through MediaSource (blob: URLs).
const POLICY: &str = "default-src 'self'; script-src 'self'; worker-src 'self' blob:; media-src 'self' blob:; \
                      img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                      base-uri 'none'; form-action 'none'";

/// `/`, `/console` and `/console/...`: no token needed (the page asks for one).
pub(crate) fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { file("index.html") }))
        .route("/console/{*file}", get(|Path(name): Path<String>| async move { file(&name) }))
}

fn file(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return tessera_cluster::api::error(StatusCode::NOT_FOUND, "not_found", format!("nothing at /console/{name}"));
    };
    // The page is read again on each visit (a new node version brings a new script); the
    // libraries change only with the binary.
    let cache = if name.starts_with("vendor/") { "public, max-age=3600" } else { "no-cache" };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
