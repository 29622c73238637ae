//! Resumable uploads, tus 1.0 (core, creation, checksum, termination) at `/api/v1/uploads`,
//! so existing tus clients work:
//!
//! - `OPTIONS` says what the server takes (`Tus-Version`, `Tus-Extension`, `Tus-Max-Size`,
//!   `Tus-Checksum-Algorithm`).
//! - `POST` with `Upload-Length` (and `Upload-Metadata`: `filename`, `title`, `sha256` of
//!   the whole file in hex, `keep_source`) creates an upload: `201`, `Location`.
//! - `HEAD` answers `Upload-Offset`: the bytes stored durably so far.
//! - `PATCH` (`application/offset+octet-stream`) at the current `Upload-Offset` appends,
//!   checked against `Upload-Checksum` (`sha256` or `sha1`, `460` and nothing kept on a
//!   mismatch), and answers only once the bytes are on disk (`fsync`).
//! - `DELETE` drops an upload.
//!
//! The last byte completes it: the whole file's SHA-256 is checked against the one the
//! metadata gave, the source is read through ([`super::source::probe`]), moved to
//! `DATA_DIR/sources/ID`, and the asset is recorded in the catalog. A file that is not
//! media, is truncated or lies in its headers is refused (`422`) and deleted: nothing is
//! left half-registered. A completion whose catalog write fails can be retried with an
//! empty `PATCH` at the final offset.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use ring::digest::Context;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::{tus_headers, VodState};

/// Where uploads and sources live, and how big an upload may be.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// `DATA_DIR/uploads`: uploads in progress.
    pub uploads: PathBuf,
    /// `DATA_DIR/sources`: stored sources, one folder per asset.
    pub sources: PathBuf,
    /// Where sources are shared and renditions go.
    pub archive: super::archive::VodArchive,
    /// `DATA_DIR/vod-scratch`: sources fetched from the archive for a job, one folder per asset.
    pub scratch: PathBuf,
    /// Fetches of sources from the archive, one at a time.
    pub fetches: Arc<tokio::sync::Mutex<()>>,
    pub max_bytes: u64,
    /// The renditions an uploaded film gets.
    pub ladder: tessera_transcode::LadderSpec,
}

/// Uploads with a `PATCH` in progress (one at a time each).
#[derive(Default)]
pub struct UploadLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl UploadLocks {
    fn of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0.lock().expect("upload locks").entry(id.to_string()).or_default().clone()
    }

    /// Waits (at most `patience`) for a PATCH of `id` in progress to finish.
    async fn settled(&self, id: &str, patience: std::time::Duration) {
        let held = self.0.lock().expect("upload locks").get(id).cloned();
        if let Some(lock) = held {
            let _ = tokio::time::timeout(patience, lock.lock()).await;
        }
    }

    /// Forgets a finished or dropped upload's lock.
    fn forget(&self, id: &str) {
        self.0.lock().expect("upload locks").remove(id);
    }
}

/// An upload's record beside its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UploadMeta {
    pub length: u64,
    pub metadata: BTreeMap<String, String>,
    pub created_ms: i64,
    /// Set once the asset is recorded.
    #[serde(default)]
    pub asset: Option<String>,
}

const TUS: &str = "1.0.0";

fn tus(status: StatusCode) -> Response {
    (status, [("tus-resumable", TUS), ("cache-control", "no-store")]).into_response()
}

pub(super) fn refuse(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": code, "message": message.to_string() }).to_string();
    (status, [("tus-resumable", TUS), ("content-type", "application/json")], body).into_response()
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Every request but `OPTIONS` must speak tus 1.0.0.
fn check_version(h: &HeaderMap) -> Result<(), Box<Response>> {
    match header(h, "tus-resumable") {
        Some(TUS) => Ok(()),
        _ => {
            let mut r = refuse(StatusCode::PRECONDITION_FAILED, "tus_version", "Tus-Resumable: 1.0.0 is required");
            r.headers_mut().insert("tus-version", HeaderValue::from_static(TUS));
            Err(Box::new(r))
        }
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An upload's bytes and its record.
pub(super) fn paths(cfg: &UploadConfig, id: &str) -> (PathBuf, PathBuf) {
    (cfg.uploads.join(format!("{id}.bin")), cfg.uploads.join(format!("{id}.json")))
}

fn read_meta(path: &Path) -> Option<UploadMeta> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes a file durably: a temporary name, `fsync`, rename, `fsync` of the folder.
async fn write_durably(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })
    .await
    .map_err(std::io::Error::other)?
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// What the tus 1.0 server takes
///
/// `Tus-Version`, `Tus-Extension` (creation, checksum, termination),
/// `Tus-Checksum-Algorithm` and `Tus-Max-Size`; it needs no admin token.
#[utoipa::path(options, path = "/api/v1/uploads", tag = "uploads", operation_id = "upload_options", security(()),
    responses((status = 204, description = "The server's tus capabilities, in headers")))]
pub async fn options(State(state): State<Arc<VodState>>) -> Response {
    let mut r = tus(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS));
    h.insert("tus-extension", HeaderValue::from_static("creation,checksum,termination"));
    h.insert("tus-checksum-algorithm", HeaderValue::from_static("sha256,sha1"));
    if let Ok(v) = HeaderValue::from_str(&state.uploads.max_bytes.to_string()) {
        h.insert("tus-max-size", v);
    }
    r
}

/// Creates a resumable upload (tus creation)
///
/// `Upload-Length` and `Upload-Metadata` (`filename`, and optionally `ladder`); the answer's
/// `Location` is where to `PATCH` the bytes.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", operation_id = "create_upload",
    params(("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Length" = u64, Header, description = "The file's size in bytes"),
        ("Upload-Metadata" = Option<String>, Header, description = "tus metadata: `filename`, `ladder`, base64 values")),
    responses((status = 201, description = "Created; `Location` names it"), (status = 400, description = "A header is missing or malformed"),
        (status = 412, description = "Not tus 1.0.0"), (status = 413, description = "Larger than the server takes"),
        (status = 507, description = "No room for it")))]
pub async fn create(State(state): State<Arc<VodState>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_version(&headers) {
        return *r;
    }
    let cfg = &state.uploads;
    let length = match tus_headers::length(header(&headers, "upload-length")) {
        Ok(l) => l,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.code(), e),
    };
    if length > cfg.max_bytes {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{length} bytes is more than this node takes ({})", cfg.max_bytes),
        );
    }
    let metadata = match tus_headers::metadata(header(&headers, "upload-metadata")) {
        Ok(m) => m,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.code(), e),
    };
    let mut raw = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).is_err() {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no randomness for an upload id");
    }
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let (bin, json) = paths(cfg, &id);
    let meta = UploadMeta { length, metadata, created_ms: tessera_ingest::timestamp::unix_ms(), asset: None };
    let made = async {
        tokio::fs::create_dir_all(&cfg.uploads).await?;
        tokio::fs::File::create(&bin).await?.sync_all().await?;
        write_durably(&json, serde_json::to_vec(&meta).expect("meta serialises")).await
    };
    if let Err(e) = made.await {
        tracing::error!(upload = %id, error = %e, "an upload could not be created");
        return refuse(StatusCode::INSUFFICIENT_STORAGE, "storage", e);
    }
    tracing::info!(upload = %id, length, "upload created");
    metrics::counter!("tessera_uploads_created_total").increment(1);
    let mut r = tus(StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/uploads/{id}")) {
        r.headers_mut().insert("location", v);
    }
    r
}

/// Bytes stored so far.
async fn offset_of(bin: &Path) -> Option<u64> {
    tokio::fs::metadata(bin).await.ok().map(|m| m.len())
}

/// How much of an upload is stored
///
/// `Upload-Offset`: the bytes stored durably so far (and `Tessera-Asset` once the upload
/// became an asset).
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "uploads", operation_id = "upload_offset",
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = String, Header, description = "1.0.0")),
    responses((status = 200, description = "`Upload-Offset` and `Upload-Length` in headers"), (status = 404, description = "No such upload")))]
pub async fn head(State(state): State<Arc<VodState>>, UrlPath(id): UrlPath<String>, headers: HeaderMap) -> Response {
    if let Err(r) = check_version(&headers) {
        return *r;
    }
    let (bin, json) = paths(&state.uploads, &id);
    let Some(meta) = valid_id(&id).then(|| read_meta(&json)).flatten() else {
        return tus(StatusCode::NOT_FOUND);
    };
    // The offset once a PATCH in progress has settled (a client whose connection broke
    // asks at once, while the node may still be storing what arrived).
    state.upload_locks.settled(&id, std::time::Duration::from_secs(5)).await;
    // A completed upload's bytes have moved to its source.
    let offset = if meta.asset.is_some() { meta.length } else { offset_of(&bin).await.unwrap_or(0) };
    let mut r = tus(StatusCode::OK);
    let h = r.headers_mut();
    h.insert("upload-offset", offset.into());
    h.insert("upload-length", meta.length.into());
    if let Some(asset) = meta.asset.and_then(|a| HeaderValue::from_str(&a).ok()) {
        h.insert("tessera-asset", asset);
    }
    r
}

/// Drops an upload (tus termination)
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads", operation_id = "terminate_upload",
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = String, Header, description = "1.0.0")),
    responses((status = 204, description = "Dropped"), (status = 404, description = "No such upload")))]
pub async fn terminate(
    State(state): State<Arc<VodState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_version(&headers) {
        return *r;
    }
    let (bin, json) = paths(&state.uploads, &id);
    if !valid_id(&id) || read_meta(&json).is_none() {
        return tus(StatusCode::NOT_FOUND);
    }
    let lock = state.upload_locks.of(&id);
    let _held = lock.lock().await;
    let _ = tokio::fs::remove_file(&bin).await;
    let _ = tokio::fs::remove_file(&json).await;
    state.upload_locks.forget(&id);
    tus(StatusCode::NO_CONTENT)
}

/// `Upload-Checksum`, if the request has one.
fn checksum(h: &HeaderMap) -> Result<Option<(Context, Vec<u8>)>, Box<Response>> {
    let Some(v) = header(h, "upload-checksum") else { return Ok(None) };
    match tus_headers::checksum(v) {
        Ok(c) => Ok(Some(c)),
        Err(e) => Err(Box::new(refuse(StatusCode::BAD_REQUEST, e.code(), e))),
    }
}

/// Appends bytes to an upload
///
/// `application/offset+octet-stream` at `Upload-Offset`, checked against
/// `Upload-Checksum` when it is given; the last byte makes the file an asset.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "uploads", operation_id = "append_upload",
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes go: the offset stored so far"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha256 BASE64` or `sha1 BASE64` of this request's bytes")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses((status = 204, description = "Stored; the new `Upload-Offset` in a header"),
        (status = 409, description = "The offset is not the one stored"), (status = 415, description = "Not application/offset+octet-stream"),
        (status = 422, description = "A file this does not take"), (status = 460, description = "The checksum does not match"),
        (status = 503, description = "The catalog cannot take the asset now")))]
pub async fn patch(
    State(state): State<Arc<VodState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = check_version(&headers) {
        return *r;
    }
    if header(&headers, "content-type") != Some("application/offset+octet-stream") {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type", "application/offset+octet-stream expected");
    }
    let (bin, json) = paths(&state.uploads, &id);
    let Some(meta) = valid_id(&id).then(|| read_meta(&json)).flatten() else {
        return tus(StatusCode::NOT_FOUND);
    };
    let lock = state.upload_locks.of(&id);
    let Ok(_held) = lock.try_lock() else {
        return refuse(StatusCode::CONFLICT, "busy", "another PATCH of this upload is in progress");
    };
    if meta.asset.is_some() {
        return completed(meta.length, meta.asset.as_deref());
    }
    let Some(offset) = offset_of(&bin).await else { return tus(StatusCode::NOT_FOUND) };
    if header(&headers, "upload-offset").and_then(|v| v.parse::<u64>().ok()) != Some(offset) {
        let mut r = refuse(StatusCode::CONFLICT, "offset", format!("the upload is at byte {offset}"));
        r.headers_mut().insert("upload-offset", offset.into());
        return r;
    }
    let mut check = match checksum(&headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let written = match append(&bin, offset, meta.length, body, check.as_mut().map(|c| &mut c.0)).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Some((context, expected)) = check {
        if context.finish().as_ref() != expected.as_slice() {
            let _ = truncate(&bin, offset).await;
            metrics::counter!("tessera_upload_refusals_total", "reason" => "checksum").increment(1);
            return refuse(
                StatusCode::from_u16(460).expect("460"),
                "checksum_mismatch",
                "the chunk's checksum does not match; nothing of it was kept",
            );
        }
    }
    let offset = offset + written;
    metrics::counter!("tessera_upload_bytes_total").increment(written);
    if offset < meta.length {
        let mut r = tus(StatusCode::NO_CONTENT);
        r.headers_mut().insert("upload-offset", offset.into());
        return r;
    }
    let answer = super::complete::finish(&state, &id, meta).await;
    state.upload_locks.forget(&id);
    answer
}

/// The answer to a completed upload.
pub(super) fn completed(length: u64, asset: Option<&str>) -> Response {
    let mut r = tus(StatusCode::NO_CONTENT);
    r.headers_mut().insert("upload-offset", length.into());
    if let Some(a) = asset.and_then(|a| HeaderValue::from_str(a).ok()) {
        r.headers_mut().insert("tessera-asset", a);
    }
    r
}

pub(super) async fn save_meta(path: &Path, meta: &UploadMeta) -> std::io::Result<()> {
    write_durably(path, serde_json::to_vec(meta).expect("meta serialises")).await
}

async fn truncate(bin: &Path, to: u64) -> std::io::Result<()> {
    let f = tokio::fs::OpenOptions::new().write(true).open(bin).await?;
    f.set_len(to).await?;
    f.sync_all().await
}

/// Appends the request body at `offset`, up to `length` in all, durably; the bytes written.
async fn append(
    bin: &Path,
    offset: u64,
    length: u64,
    body: Body,
    mut digest: Option<&mut Context>,
) -> Result<u64, Response> {
    let storage = |e: std::io::Error| {
        tracing::error!(path = %bin.display(), error = %e, "an upload chunk could not be stored");
        refuse(StatusCode::INSUFFICIENT_STORAGE, "storage", e)
    };
    let mut file = tokio::fs::OpenOptions::new().append(true).open(bin).await.map_err(storage)?;
    let mut written = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // A client that goes away keeps what arrived, and resumes from there; unless
            // the chunk was to be checked, which cannot be done with part of it.
            if digest.is_some() {
                drop(file);
                let _ = truncate(bin, offset).await;
                return Err(refuse(StatusCode::BAD_REQUEST, "incomplete", "the chunk was cut off before its end"));
            }
            break;
        };
        if offset + written + chunk.len() as u64 > length {
            drop(file);
            let _ = truncate(bin, offset).await;
            return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "past_length", "more bytes than Upload-Length"));
        }
        if let Some(d) = digest.as_deref_mut() {
            d.update(&chunk);
        }
        file.write_all(&chunk).await.map_err(storage)?;
        written += chunk.len() as u64;
    }
    file.sync_all().await.map_err(storage)?;
    Ok(written)
}
