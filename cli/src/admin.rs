//! A client of the admin API, as the `tessera cluster ...` commands and scripts use it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("{url}: {source}")]
    Connect { url: String, source: hyper_util::client::legacy::Error },
    #[error("{0}: no answer within 15 s")]
    Timeout(String),
    #[error("{url}: {status}: {code}: {message}")]
    Api { url: String, status: StatusCode, code: String, message: String },
    #[error("{0}: {1}")]
    Invalid(String, String),
}

/// One node's admin API.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    /// `base` is the node's HTTP address (`http://HOST:PORT`, or `HOST:PORT`).
    pub fn new(base: &str, token: &str) -> Self {
        let base = base.trim_end_matches('/');
        let base = if base.contains("://") { base.to_string() } else { format!("http://{base}") };
        let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http();
        AdminClient { base, token: token.to_string(), http }
    }

    /// Sends a request; a 2xx answer gives its JSON (`Null` when empty), anything else an
    /// [`AdminClientError::Api`] with the API's error code.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, AdminClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.token));
        let payload = match body {
            Some(b) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(payload)).map_err(|e| AdminClientError::Invalid(url.clone(), e.to_string()))?;
        let answer = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|source| AdminClientError::Connect { url: url.clone(), source })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| AdminClientError::Invalid(url.clone(), e.to_string()))?
                .to_bytes();
            Ok::<_, AdminClientError>((status, body))
        };
        let (status, body) =
            tokio::time::timeout(TIMEOUT, answer).await.map_err(|_| AdminClientError::Timeout(url.clone()))??;
        let json: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| AdminClientError::Invalid(url.clone(), format!("not JSON: {e}")))?
        };
        if status.is_success() {
            return Ok(json);
        }
        let text = |k: &str| json.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Err(AdminClientError::Api { url, status, code: text("error"), message: text("message") })
    }

    pub async fn get(&self, path: &str) -> Result<Value, AdminClientError> {
        self.call(Method::GET, path, None).await
    }
}
