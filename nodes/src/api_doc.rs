//! The HTTP API's document (OpenAPI 3.1), served at `/api/v1/openapi.json` and kept in
//! `docs/openapi.json`. It is made from the handlers themselves: each carries its
//! `#[utoipa::path]` (path, method, parameters, answers) and names the Rust types it takes
//! and answers, whose schemas are derived from their definitions. A test checks that every
//! route a node mounts is in it, and that the file in `docs/` is this document.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera HTTP API",
        version = "1",
        description = "Served by every node. The admin API is under /api/v1: every call there except this \
document and the tus preflight needs `Authorization: Bearer ADMIN_TOKEN`. Playback (/live, /vod), the \
license endpoints (/license), /streams, /metrics and the health probes need no admin token; content that \
asks for it wants a playback token. Writes reach the catalog's leader from any node. Reads are \
linearizable unless `consistency=local` asks for the node's own copy. Errors are \
`{\"error\": CODE, \"message\": TEXT}`."
    ),
    security(("admin" = [])),
    modifiers(&Schemes),
    tags(
        (name = "playback", description = "LL-HLS live and VOD playback, on every node"),
        (name = "license", description = "Content keys and EME ClearKey licenses for protected content"),
        (name = "health", description = "Probes and metrics"),
        (name = "cluster", description = "The catalog cluster as the answering node sees it"),
        (name = "streams", description = "Live streams in the catalog"),
        (name = "releases", description = "Scheduled releases, opened only once the cluster commits them"),
        (name = "nodes", description = "The cluster's nodes: what they hold, draining, removal"),
        (name = "node", description = "The answering node's own settings"),
        (name = "catalog", description = "Backup and restore of the catalog"),
        (name = "protection", description = "Playback tokens, revocations and regions"),
        (name = "vod", description = "VOD assets and their jobs"),
        (name = "uploads", description = "Resumable uploads (tus 1.0)"),
        (name = "console", description = "The web console's live feed"),
    )
)]
struct TesseraApi;

/// The security schemes the operations name.
struct Schemes;

impl utoipa::Modify for Schemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An admin token")).build(),
            ),
        );
        components.add_security_scheme(
            "playback",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A playback token (POST /api/v1/tokens), or the tessera_token cookie, or a bearer token",
            ))),
        );
    }
}

/// The whole document: the node's routes and those of the crates it mounts.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = TesseraApi::openapi();
    for part in [
        tessera_live::http::LiveApi::openapi(),
        tessera_vod::VodApi::openapi(),
        tessera_license::http::LicenseApi::openapi(),
        tessera_license::admin::ProtectionAdminApi::openapi(),
        crate::admin::AdminApi::openapi(),
        crate::http::NodePublicApi::openapi(),
        crate::health::HealthApi::openapi(),
        crate::console::ConsoleFeedApi::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}

/// [`document`] as pretty JSON, as `docs/openapi.json` holds it.
pub fn json() -> String {
    document().to_pretty_json().expect("the API document serializes") + "\n"
}
