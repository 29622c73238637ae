//! Holds N concurrent blocking playlist requests for the next part of a live stream and
//! reports how they were released.
//!
//!   blocking_load MEDIA_PLAYLIST_URL CLIENTS [--h2 CONNECTIONS]
//!
//! Over HTTP/1.1 each request has its own connection; with `--h2`, the requests are HTTP/2
//! streams (cleartext, by prior knowledge) spread over CONNECTIONS connections.
//!
//! Prints JSON: how many answered 200, and the spread of their arrival times after the
//! first one (the part's publication releases them all).

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tessera_packager::check::parse_media;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: blocking_load MEDIA_PLAYLIST_URL CLIENTS [--h2 CONNECTIONS]";
    let h2: Option<usize> = match args.get(3).map(String::as_str) {
        None => None,
        Some("--h2") => Some(args.get(4).context(usage)?.parse()?),
        Some(_) => anyhow::bail!(usage),
    };
    anyhow::ensure!(args.len() == 3 || (h2.is_some() && args.len() == 5), usage);
    let url = args[1].clone();
    let clients: usize = args[2].parse()?;
    // HTTP/1.1: no connection is reused, so each request has its own. HTTP/2: one client per
    // connection, each multiplexing its share of the requests.
    let pool: Vec<Client<_, Empty<Bytes>>> = match h2 {
        None => vec![Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http()],
        Some(n) => (0..n.max(1)).map(|_| Client::builder(TokioExecutor::new()).http2_only(true).build_http()).collect(),
    };
    let body = pool[0].get(url.parse()?).await?.into_body().collect().await?.to_bytes();
    let p = parse_media(std::str::from_utf8(&body)?).map_err(|v| anyhow::anyhow!("{v:?}"))?;
    // The third part of the segment after the open one: more than a second ahead, so every
    // connection is open and waiting before it is published.
    let last_complete = p.segments.last().map_or(p.media_sequence, |s| s.msn + 1);
    let open = p.parts.last().map_or(last_complete, |x| x.msn.max(last_complete));
    let (msn, part) = (open + 1, 2);
    let target = format!("{url}?_HLS_msn={msn}&_HLS_part={part}");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let client = pool[i % pool.len()].clone();
        let uri: hyper::Uri = target.parse()?;
        tasks.push(tokio::spawn(async move {
            let resp = tokio::time::timeout(Duration::from_secs(15), client.get(uri)).await.ok()?.ok()?;
            let status = resp.status().as_u16();
            resp.into_body().collect().await.ok()?;
            Some((status, Instant::now()))
        }));
    }
    let sent = started.elapsed();
    let mut done = Vec::with_capacity(clients);
    for t in tasks {
        if let Ok(Some(r)) = t.await {
            done.push(r);
        }
    }
    let ok: Vec<Instant> = done.iter().filter(|(s, _)| *s == 200).map(|(_, t)| *t).collect();
    let first = ok.iter().min().copied().context("no request was answered")?;
    let mut spread: Vec<f64> = ok.iter().map(|t| t.duration_since(first).as_secs_f64() * 1000.0).collect();
    spread.sort_by(f64::total_cmp);
    let pct = |q: f64| spread[((spread.len() as f64 * q) as usize).min(spread.len() - 1)];
    let out = serde_json::json!({
        "clients": clients,
        "protocol": if h2.is_some() { "HTTP/2" } else { "HTTP/1.1" },
        "connections": h2.unwrap_or(clients),
        "answered_200": ok.len(),
        "other": done.len() - ok.len(),
        "unanswered": clients - done.len(),
        "all_sent_ms": sent.as_secs_f64() * 1000.0,
        "release_spread_ms": { "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0) },
        "waited_ms_first": first.duration_since(started).as_secs_f64() * 1000.0,
        "requested": format!("_HLS_msn={msn}&_HLS_part={part}"),
    });
    println!("{out}");
    Ok(())
}
