//! Polls URLs as fast as a keep-alive connection allows, each from its own thread, and
//! reports when each first answered 200: the moment a gated release became visible there.
//!
//!   release_probe START_MS DEADLINE_MS URL...
//!
//! START_MS and DEADLINE_MS are Unix milliseconds. Prints JSON: per URL, the first 200's
//! time (Unix milliseconds, with fractions; `null` if none by the deadline), the request
//! sent just before it (so the opening lies between the two), and how many requests were
//! made.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// One request on a kept-alive connection: the status, the body read off.
fn request(conn: &mut BufReader<TcpStream>, host: &str, path: &str) -> std::io::Result<u16> {
    write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok(status)
}

fn probe(url: &str, start: f64, deadline: f64) -> serde_json::Value {
    let rest = url.strip_prefix("http://").expect("http:// URLs");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    while now_ms() < start {
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut polls = 0u64;
    let mut conn: Option<BufReader<TcpStream>> = None;
    while now_ms() < deadline {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match TcpStream::connect(host) {
                Ok(s) => {
                    s.set_nodelay(true).ok();
                    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                    conn.insert(BufReader::new(s))
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            },
        };
        let sent = now_ms();
        polls += 1;
        match request(c, host, path) {
            Ok(200) => {
                return serde_json::json!({ "url": url, "first_ok_ms": now_ms(), "sent_ms": sent, "polls": polls })
            }
            Ok(_) => {}
            Err(_) => conn = None,
        }
    }
    serde_json::json!({ "url": url, "first_ok_ms": null, "polls": polls })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: release_probe START_MS DEADLINE_MS URL...");
        std::process::exit(2);
    }
    let (start, deadline): (f64, f64) = (args[1].parse().expect("START_MS"), args[2].parse().expect("DEADLINE_MS"));
    let threads: Vec<_> =
        args[3..].iter().cloned().map(|url| std::thread::spawn(move || probe(&url, start, deadline))).collect();
    let results: Vec<serde_json::Value> = threads.into_iter().map(|t| t.join().expect("probe thread")).collect();
    println!("{}", serde_json::Value::Array(results));
}
