//! A tus 1.0 client for `/api/v1/uploads`, as `tessera vod upload` and the benchmarks use
//! it: resumable (an upload remembers its URL under a folder, by the file's content and the
//! node), every chunk checked by its SHA-256, network errors and nodes that are not ready
//! retried with backoff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use ring::digest::SHA256;
use serde_json::Value;

/// Why an upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{url}: {why}")]
    Http { url: String, why: String },
    #[error("the upload was refused: {0}")]
    Refused(String),
    #[error("giving up after {failures} failures in a row (run again to resume): {why}")]
    GaveUp { failures: u32, why: String },
    #[error("the node answered outside the protocol: {0}")]
    Protocol(String),
}

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The asset's title (default: the file's name).
    pub title: Option<String>,
    /// Keep the source once transcoded.
    pub keep_source: bool,
    /// Bytes per request.
    pub chunk: usize,
    /// Pause between requests.
    pub pause: Duration,
    /// Where uploads in progress are remembered (none: no resuming across runs).
    pub resume_dir: Option<PathBuf>,
}

/// Where an upload stands, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum UploadProgress {
    /// A previous run's upload goes on from this byte.
    Resumed { offset: u64, length: u64 },
    /// Bytes stored by the node so far.
    Stored { offset: u64, length: u64 },
    /// A request failed; the next try is after `wait`.
    Retrying { wait: Duration },
}

/// One tus request's answer.
struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn offset(&self) -> Option<u64> {
        self.header("upload-offset").and_then(|v| v.parse().ok())
    }

    /// The API's `{"error", "message"}`, or the status.
    fn why(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body).unwrap_or_default();
        match (v["error"].as_str(), v["message"].as_str()) {
            (Some(code), Some(message)) => format!("{}: {code}: {message}", self.status),
            _ => self.status.to_string(),
        }
    }
}

/// A node's upload endpoint.
pub struct TusClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl TusClient {
    /// `base` is the node's HTTP address (`http://HOST:PORT`); `token` an admin token.
    pub fn new(base: &str, token: &str) -> Self {
        let base = base.trim_end_matches('/');
        let base = if base.contains("://") { base.to_string() } else { format!("http://{base}") };
        TusClient { base, token: token.to_string(), http: Client::builder(TokioExecutor::new()).build_http() }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, UploadError> {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        let failed = |why: String| UploadError::Http { url: url.clone(), why };
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("tus-resumable", "1.0.0");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(Full::new(body)).map_err(|e| failed(e.to_string()))?;
        let resp = tokio::time::timeout(Duration::from_secs(120), self.http.request(req))
            .await
            .map_err(|_| failed("no answer within 120 s".into()))?
            .map_err(|e| failed(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| failed(e.to_string()))?.to_bytes();
        Ok(Answer { status: parts.status, headers: parts.headers, body })
    }

    /// Uploads `file`; the asset id.
    pub async fn upload(
        &self,
        file: &Path,
        opts: &UploadOptions,
        mut progress: impl FnMut(UploadProgress),
    ) -> Result<String, UploadError> {
        let length = std::fs::metadata(file)?.len();
        let path = file.to_path_buf();
        let sha256 =
            tokio::task::spawn_blocking(move || super::sha256_file(&path)).await.map_err(std::io::Error::other)??;
        let remembered = opts.resume_dir.as_ref().map(|d| resume_file(d, &sha256, &self.base));
        let mut url = remembered.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).map(|s| s.trim().to_string());
        let mut offset = 0;
        if let Some(u) = &url {
            let head = self.send(Method::HEAD, u, &[], Bytes::new()).await?;
            match head.offset() {
                Some(o) if head.status == StatusCode::OK => {
                    offset = o;
                    if let Some(asset) = head.header("tessera-asset") {
                        return Ok(asset.to_string());
                    }
                    progress(UploadProgress::Resumed { offset: o, length });
                }
                _ => url = None,
            }
        }
        let url = match url {
            Some(u) => u,
            None => {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let title = opts.title.clone().unwrap_or_else(|| name.clone());
                let mut meta = vec![("filename", name), ("title", title), ("sha256", sha256.clone())];
                if !opts.keep_source {
                    meta.push(("keep_source", "false".into()));
                }
                let meta: Vec<String> = meta.iter().map(|(k, v)| format!("{k} {}", B64.encode(v))).collect();
                let headers = [("upload-length", length.to_string()), ("upload-metadata", meta.join(","))];
                let created = self.send(Method::POST, "/api/v1/uploads", &headers, Bytes::new()).await?;
                if created.status != StatusCode::CREATED {
                    return Err(UploadError::Refused(created.why()));
                }
                let location =
                    created.header("location").ok_or(UploadError::Protocol("no Location".into()))?.to_string();
                if let Some(p) = &remembered {
                    let _ = std::fs::create_dir_all(p.parent().expect("a folder"));
                    let _ = std::fs::write(p, &location);
                }
                location
            }
        };
        let chunk = opts.chunk.max(1);
        let mut f = std::fs::File::open(file)?;
        let mut buf = vec![0u8; chunk];
        let mut failures = 0u32;
        loop {
            let n = super::package::read_at(&mut f, offset, &mut buf[..chunk.min((length - offset) as usize)])?;
            let body = Bytes::copy_from_slice(&buf[..n]);
            let sum = format!("sha256 {}", B64.encode(ring::digest::digest(&SHA256, &body)));
            let headers = [
                ("upload-offset", offset.to_string()),
                ("content-type", "application/offset+octet-stream".to_string()),
                ("upload-checksum", sum),
            ];
            let answer = self.send(Method::PATCH, &url, &headers, body).await;
            match answer {
                Ok(a) if a.status == StatusCode::NO_CONTENT => {
                    failures = 0;
                    offset = a.offset().ok_or(UploadError::Protocol("no Upload-Offset".into()))?;
                    progress(UploadProgress::Stored { offset, length });
                    if let Some(asset) = a.header("tessera-asset") {
                        if let Some(p) = &remembered {
                            let _ = std::fs::remove_file(p);
                        }
                        return Ok(asset.to_string());
                    }
                }
                // The node is elsewhere than we thought: go on from there.
                Ok(a) if a.status == StatusCode::CONFLICT && a.offset().is_some() => {
                    offset = a.offset().unwrap_or(offset)
                }
                Ok(a) if a.status.is_client_error() && a.status.as_u16() != 460 => {
                    if let Some(p) = &remembered {
                        let _ = std::fs::remove_file(p);
                    }
                    return Err(UploadError::Refused(a.why()));
                }
                other => {
                    failures += 1;
                    let why = match other {
                        Ok(a) => a.why(),
                        Err(e) => e.to_string(),
                    };
                    if failures > 8 {
                        return Err(UploadError::GaveUp { failures, why });
                    }
                    let wait = Duration::from_millis(500 << failures.min(6));
                    tracing::warn!(upload = %url, "{why}; retrying in {:.1} s", wait.as_secs_f64());
                    progress(UploadProgress::Retrying { wait });
                    tokio::time::sleep(wait).await;
                    let head = self.send(Method::HEAD, &url, &[], Bytes::new()).await;
                    if let Some(o) = head.ok().and_then(|h| h.offset()) {
                        offset = o;
                    }
                }
            }
            if !opts.pause.is_zero() {
                tokio::time::sleep(opts.pause).await;
            }
        }
    }
}

/// Where an upload of this content to this node is remembered.
fn resume_file(dir: &Path, sha256: &str, base: &str) -> PathBuf {
    let node: String = base.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    dir.join(format!("{sha256}-{node}"))
}
