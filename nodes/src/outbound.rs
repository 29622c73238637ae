//! The node's HTTP client for services outside the cluster (CDN purge hooks, DRM key
//! servers): HTTP/1.1, https with the system's roots (rustls on ring) or plain http.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub(crate) type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client; fails only if the system's root certificates cannot be read.
pub(crate) fn https_client() -> std::io::Result<HttpsClient> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// Sends `request` and answers the body of a 2xx answer within `patience`, or why not (a
/// non-2xx status with the start of its body).
pub(crate) async fn body_of(
    client: &HttpsClient,
    request: hyper::Request<Full<Bytes>>,
    patience: std::time::Duration,
) -> Result<Bytes, String> {
    use http_body_util::BodyExt;
    let answer = tokio::time::timeout(patience, client.request(request))
        .await
        .map_err(|_| format!("no answer in {patience:?}"))?
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let body = answer.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !status.is_success() {
        return Err(format!("answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
    }
    Ok(body)
}
