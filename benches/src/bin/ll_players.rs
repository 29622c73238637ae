//! Players that behave like LL-HLS clients, for soaks: each loads a media playlist, then
//! asks for the next part with a blocking reload (`_HLS_msn`, `_HLS_part`), fetches the
//! part it names (the preload hint's part once listed), and goes on.
//!
//!   ll_players PLAYERS SECONDS REPORT_EVERY_S MEDIA_PLAYLIST_URL [URL...]
//!
//! Players are spread over the URLs. Every REPORT_EVERY_S seconds it prints a JSON line:
//! parts fetched, errors, and part latency (the wall clock when the part arrived, less the
//! program time of the part's end) p50 and p99 in milliseconds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tessera_packager::check::{parse_media, MediaPlaylist};

type Http = Client<HttpConnector, Empty<Bytes>>;

#[derive(Default)]
struct Window {
    parts: u64,
    bytes: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
}

async fn fetch(http: &Http, url: &str) -> Option<Bytes> {
    let resp = tokio::time::timeout(Duration::from_secs(15), http.get(url.parse().ok()?)).await.ok()?.ok()?;
    if resp.status() != 200 {
        return None;
    }
    resp.into_body().collect().await.ok().map(|b| b.to_bytes())
}

/// `YYYY-MM-DDTHH:MM:SS(.fff)Z` (or `+00:00`) as Unix milliseconds.
fn unix_ms(t: &str) -> Option<f64> {
    let n = |s: &str| s.parse::<i64>().ok();
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (n(d.next()?)?, n(d.next()?)?, n(d.next()?)?);
    let time = time.trim_end_matches('Z').trim_end_matches("+00:00");
    let mut hms = time.split(':');
    let (h, min, s) = (n(hms.next()?)?, n(hms.next()?)?, hms.next()?.parse::<f64>().ok()?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60) as f64 + s) * 1000.0)
}

/// The program time at the end of part (`msn`, `index`), if the playlist says.
fn part_end_ms(p: &MediaPlaylist, msn: u64, index: usize) -> Option<f64> {
    // The newest dated segment at or before `msn`, then durations forward.
    let dated = p.segments.iter().rev().find(|s| s.msn <= msn && s.program_time.is_some())?;
    let mut t = unix_ms(dated.program_time.as_deref()?)?;
    for s in p.segments.iter().filter(|s| s.msn >= dated.msn && s.msn < msn) {
        t += s.duration * 1000.0;
    }
    let parts = p.parts.iter().filter(|x| x.msn == msn && x.index <= index);
    Some(t + parts.map(|x| x.duration * 1000.0).sum::<f64>())
}

async fn player(http: Http, url: String, until: Instant, window: Arc<Mutex<Window>>) {
    let base = url.rsplit_once('/').map_or(String::new(), |(b, _)| b.to_string());
    // The newest part fetched, and the part to ask for next (`None`: the live edge).
    let mut seen: Option<(u64, usize)> = None;
    let mut next: Option<(u64, usize)> = None;
    while Instant::now() < until {
        let target = match next {
            None => url.clone(),
            Some((msn, index)) => format!("{url}?_HLS_msn={msn}&_HLS_part={index}"),
        };
        let playlist = fetch(&http, &target).await.and_then(|b| parse_media(&String::from_utf8_lossy(&b)).ok());
        let Some(p) = playlist else {
            window.lock().unwrap().errors += 1;
            (seen, next) = (None, None);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut new: Vec<_> = p.parts.iter().filter(|x| seen.is_none_or(|l| (x.msn, x.index) > l)).cloned().collect();
        if seen.is_none() {
            // A newcomer starts at the live edge: the newest part only.
            new = new.into_iter().last().into_iter().collect();
        }
        for part in new {
            let got = fetch(&http, &format!("{base}/{}", part.uri)).await;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let mut w = window.lock().unwrap();
            match got {
                Some(b) => {
                    w.parts += 1;
                    w.bytes += b.len() as u64;
                    if let Some(end) = part_end_ms(&p, part.msn, part.index) {
                        w.latencies_ms.push(now - end);
                    }
                }
                None => w.errors += 1,
            }
            seen = Some((part.msn, part.index));
        }
        // After a segment's last part comes the next segment's first.
        next = seen.map(|(msn, index)| match p.segments.iter().any(|s| s.msn == msn) {
            true => (msn + 1, 0),
            false => (msn, index + 1),
        });
    }
}

fn pct(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() as f64 * q) as usize).min(v.len() - 1)])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 5, "usage: ll_players PLAYERS SECONDS REPORT_EVERY_S MEDIA_PLAYLIST_URL [URL...]");
    let players: usize = args[1].parse()?;
    let seconds: u64 = args[2].parse()?;
    let every: u64 = args[3].parse()?;
    let urls = &args[4..];
    let http: Http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http();
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let window = Arc::new(Mutex::new(Window::default()));
    for i in 0..players {
        let url = urls[i % urls.len()].clone();
        tokio::spawn(player(http.clone(), url, until, window.clone()));
        // Players arrive over the first seconds, not all in one instant.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (mut parts, mut errors) = (0u64, 0u64);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(every)).await;
        let mut w = std::mem::take(&mut *window.lock().unwrap());
        parts += w.parts;
        errors += w.errors;
        let line = serde_json::json!({
            "t_s": start.elapsed().as_secs(),
            "parts": w.parts,
            "bytes": w.bytes,
            "errors": w.errors,
            "latency_p50_ms": pct(&mut w.latencies_ms, 0.5),
            "latency_p99_ms": pct(&mut w.latencies_ms, 0.99),
        });
        println!("{line}");
    }
    println!("{}", serde_json::json!({ "total_parts": parts, "total_errors": errors, "players": players }));
    Ok(())
}
