//! Write load against a 3-member metadata store, the same for Tessera's catalog (admin API)
//! and etcd (its HTTP/JSON gateway), and leader-loss recovery time.
//!
//!   catalog_load write    tessera|etcd URL[,URL...] CLIENTS SECONDS [TOKEN]
//!   catalog_load recover  tessera|etcd URL[,URL...] LEADER_PID [TOKEN]
//!
//! `write`: CLIENTS concurrent clients, spread over the URLs, each writing one new key after
//! another for SECONDS; prints JSON with committed writes per second and commit latency
//! percentiles (every answer counted is a committed write: both stores answer after commit).
//! `recover`: kills LEADER_PID with SIGKILL, then writes through the URLs (the survivors),
//! a new attempt every 50 ms, until one commits; prints the time from the kill to that first
//! committed write.

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::json;

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Tessera,
    Etcd,
}

#[derive(Clone)]
struct Writer {
    target: Target,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// The same ~100-byte record for both stores.
fn record(key: &str) -> serde_json::Value {
    json!({ "ladder": "source,720p:2500,480p:1200,360p:600", "token": format!("publish-token-for-{key}") })
}

impl Writer {
    fn request(&self, base: &str, key: &str) -> anyhow::Result<Request<Full<Bytes>>> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let (uri, body) = match self.target {
            Target::Tessera => (format!("{base}/api/v1/streams/{key}"), record(key).to_string()),
            Target::Etcd => (
                format!("{base}/v3/kv/put"),
                json!({ "key": b64(key.as_bytes()), "value": b64(record(key).to_string().as_bytes()) }).to_string(),
            ),
        };
        let method = if self.target == Target::Tessera { Method::PUT } else { Method::POST };
        let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        if !self.token.is_empty() {
            req = req.header("authorization", format!("Bearer {}", self.token));
        }
        Ok(req.body(Full::new(Bytes::from(body)))?)
    }

    /// One write; `Ok` once the store says it is committed.
    async fn write(&self, base: &str, key: &str) -> anyhow::Result<()> {
        let resp = tokio::time::timeout(Duration::from_secs(10), self.http.request(self.request(base, key)?))
            .await
            .context("no answer in 10 s")??;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body));
        if self.target == Target::Etcd {
            // The gateway answers 200 with an error object when the put failed.
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            anyhow::ensure!(v.get("error").is_none() && v.get("header").is_some(), "etcd: {v}");
        }
        Ok(())
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

async fn write_load(w: Writer, urls: Vec<String>, clients: usize, seconds: u64) -> anyhow::Result<serde_json::Value> {
    let run = format!("{:x}", std::process::id());
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (w, base, run) = (w.clone(), urls[c % urls.len()].clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            let mut i = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                match w.write(&base, &format!("b{run}-{c}-{i}")).await {
                    Ok(()) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                    Err(_) => errors += 1,
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Ok(json!({
        "clients": clients,
        "seconds": elapsed,
        "writes": lat.len(),
        "errors": errors,
        "writes_per_s": lat.len() as f64 / elapsed,
        "p50_ms": percentile(&lat, 0.50),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": lat.last().copied().unwrap_or(f64::NAN),
    }))
}

async fn recover(w: Writer, urls: Vec<String>, pid: u32) -> anyhow::Result<serde_json::Value> {
    let killed = Instant::now();
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status()?;
    anyhow::ensure!(status.success(), "kill -9 {pid} failed");
    // Clients that retry every RETRY, each attempt through every survivor, without waiting for
    // earlier attempts to fail: a request stuck with a dead leader (etcd holds one for its
    // request timeout, 7 s by default) does not stand for the outage. The first write to
    // commit ends it.
    const RETRY: Duration = Duration::from_millis(50);
    let (done, mut first) = tokio::sync::mpsc::channel::<()>(1);
    let mut attempts = 0u64;
    let mut inflight = tokio::task::JoinSet::new();
    loop {
        for (i, base) in urls.iter().enumerate() {
            let (w, base, done) = (w.clone(), base.clone(), done.clone());
            let key = format!("recover-{pid}-{attempts}-{i}");
            inflight.spawn(async move {
                if w.write(&base, &key).await.is_ok() {
                    let _ = done.try_send(());
                }
            });
        }
        attempts += 1;
        tokio::select! {
            _ = first.recv() => break,
            _ = tokio::time::sleep(RETRY) => {}
        }
        anyhow::ensure!(killed.elapsed() < Duration::from_secs(60), "no write succeeded within 60 s");
    }
    let recovery_ms = killed.elapsed().as_secs_f64() * 1000.0;
    inflight.abort_all();
    Ok(json!({ "recovery_ms": recovery_ms, "rounds": attempts }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: catalog_load write|recover tessera|etcd URL[,URL...] (CLIENTS SECONDS | LEADER_PID) [TOKEN]";
    anyhow::ensure!(args.len() >= 5, "{usage}");
    let target = match args[2].as_str() {
        "tessera" => Target::Tessera,
        "etcd" => Target::Etcd,
        other => anyhow::bail!("unknown target {other:?}; {usage}"),
    };
    let urls: Vec<String> = args[3].split(',').map(|u| u.trim_end_matches('/').to_string()).collect();
    let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http();
    let out = match args[1].as_str() {
        "write" => {
            anyhow::ensure!(args.len() >= 6, "{usage}");
            let token = args.get(6).cloned().unwrap_or_default();
            write_load(Writer { target, token, http }, urls, args[4].parse()?, args[5].parse()?).await?
        }
        "recover" => {
            let token = args.get(5).cloned().unwrap_or_default();
            recover(Writer { target, token, http }, urls, args[4].parse()?).await?
        }
        _ => anyhow::bail!("{usage}"),
    };
    println!("{out}");
    Ok(())
}
