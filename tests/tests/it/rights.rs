//! Rights on every request. Viewers are told apart by the loopback address they come from
//! (127.0.0.2 is in `eu`, 127.0.0.3 in `us`, 127.0.0.9 is the trusted proxy): a stream or
//! asset limited to a region is refused from elsewhere on every playlist, init segment,
//! part, segment and key, clear or encrypted, signed or not; the proxy's `X-Forwarded-For`,
//! `Forwarded` and PROXY protocol header name the viewer, and the same from anyone else
//! change nothing; two viewers behind one proxy are two devices; a blocking request
//! released after the rights changed is refused; GeoIP gives countries and the catalog's
//! table overrides it.

mod mmdb;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::eventually;
use crate::common::*;
use crate::protection::{protected_node, token};

const EU: &str = "127.0.0.2";
const US: &str = "127.0.0.3";
const PROXY: &str = "127.0.0.9";
const TABLE: [&str; 4] = ["127.0.0.2/32=eu", "127.0.0.3/32=us", "198.51.100.0/24=eu", "203.0.113.0/24=us"];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A request's status and, for a JSON refusal, its reason code.
async fn answer(from: &str, http: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let r = get_from(ip(from), http, path, headers).await;
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    (r.status, v["error"].as_str().unwrap_or_default().to_string())
}

fn refused() -> (u16, String) {
    (403, "region_not_allowed".to_string())
}

fn ok() -> (u16, String) {
    (200, String::new())
}

/// A GET written by hand after `preamble` (a PROXY protocol header), from `from`: the
/// status, or 0 if the connection closed without one.
async fn raw_status(from: &str, http: SocketAddr, preamble: &[u8], path: &str) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip(from), 0)).unwrap();
    let mut s = socket.connect(http).await.expect("connect");
    s.write_all(preamble).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(request.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0)
}

async fn set_table(api: &tessera_cli::admin::AdminClient) {
    api.call(Method::PUT, "/api/v1/regions", Some(&json!({ "ranges": TABLE }))).await.expect("region table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_stream_limited_to_a_region_is_refused_elsewhere_on_every_request_and_only_trusted_proxies_count() {
    let (node, api) = protected_node(|c| c.trusted_proxies = vec![PROXY.into()]).await;
    let http = node.http_addr();
    set_table(&api).await;
    let set = api.call(Method::PUT, "/api/v1/streams/match", Some(&json!({ "regions": ["eu"] }))).await;
    assert_eq!(set.expect("rights set")["protection"]["regions"], json!(["eu"]));
    let publisher = publish_sample(&node, "match", 3);
    let playlist = eventually(Duration::from_secs(20), "two segments, from eu", || async {
        let r = get_from(ip(EU), http, "/live/match/src/index.m3u8", &[]).await;
        (r.status == 200 && r.text().matches("#EXTINF").count() >= 2).then(|| r.text())
    })
    .await;
    let p = parse_media(&playlist);
    let files = [
        "/live/match/index.m3u8".to_string(),
        "/live/match/dvr.m3u8".to_string(),
        "/live/match/src/index.m3u8".to_string(),
        "/live/match/src/dvr.m3u8".to_string(),
        format!("/live/match/src/{}", p.maps[0]),
        format!("/live/match/src/{}", p.segments[0].2),
        format!("/live/match/src/{}", p.parts.last().unwrap().3),
    ];
    for f in &files {
        assert_eq!(answer(EU, http, f, &[]).await, ok(), "{f} from eu");
        assert_eq!(answer(US, http, f, &[]).await, refused(), "{f} from us");
    }
    let src = "/live/match/src/index.m3u8";
    // Through the trusted proxy, its headers name the viewer; without one, the proxy has no region.
    assert_eq!(answer(PROXY, http, src, &[("x-forwarded-for", "198.51.100.7")]).await, ok());
    assert_eq!(answer(PROXY, http, src, &[("x-forwarded-for", "198.51.100.7, 203.0.113.7")]).await, refused());
    assert_eq!(answer(PROXY, http, src, &[("forwarded", "for=\"203.0.113.7:5000\"")]).await, refused());
    assert_eq!(answer(PROXY, http, src, &[("forwarded", "for=198.51.100.7;proto=http")]).await, ok());
    assert_eq!(answer(PROXY, http, src, &[]).await, refused());
    // The same headers from anyone else change nothing.
    assert_eq!(answer(US, http, src, &[("x-forwarded-for", "198.51.100.7")]).await, refused());
    assert_eq!(answer(US, http, src, &[("forwarded", "for=198.51.100.7")]).await, refused());
    assert_eq!(answer(EU, http, src, &[("x-forwarded-for", "203.0.113.7")]).await, ok());
    // The PROXY protocol, from the trusted proxy only.
    let v1 = |who: &str| format!("PROXY TCP4 {who} 127.0.0.1 40000 80\r\n").into_bytes();
    assert_eq!(raw_status(PROXY, http, &v1("198.51.100.7"), src).await, 200);
    assert_eq!(raw_status(PROXY, http, &v1("203.0.113.7"), src).await, 403);
    assert_ne!(raw_status(US, http, &v1("198.51.100.7"), src).await, 200, "not honoured from elsewhere");
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend([198, 51, 100, 7, 127, 0, 0, 1, 0x9c, 0x40, 0, 80]);
    assert_eq!(raw_status(PROXY, http, &v2, src).await, 200, "version 2");

    // A blocking reload waiting for the next segment is released after the rights moved
    // to us: it is refused then, though it was admitted when it came.
    let now = parse_media(&get_from(ip(EU), http, src, &[]).await.text());
    // The segment after the one in progress: a second or more away.
    let next = now.parts.last().unwrap().0 + 2;
    let blocking = format!("{src}?_HLS_msn={next}&_HLS_part=0");
    let started = std::time::Instant::now();
    let waiting = tokio::spawn(async move { (answer(EU, http, &blocking, &[]).await, started.elapsed()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.call(Method::PUT, "/api/v1/streams/match", Some(&json!({ "regions": ["us"] }))).await.expect("moved");
    let moved_after = started.elapsed();
    let (released, waited) = waiting.await.unwrap();
    assert!(waited > moved_after, "the request was still waiting when the rights moved ({waited:?}, {moved_after:?})");
    assert_eq!(released, refused(), "checked again when released");
    assert_eq!(answer(US, http, src, &[]).await, ok());
    // No regions: everywhere again.
    api.call(Method::PUT, "/api/v1/streams/match", Some(&json!({ "regions": [] }))).await.expect("cleared");
    assert_eq!(answer(EU, http, src, &[]).await, ok());
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_region_refusals_total{what=\"media\"}"), "refusals are counted");
    assert!(metrics.contains("tessera_region_refusals_total{what=\"playlist\"}"));
    publisher.abort();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_content_refuses_keys_and_media_out_of_region_and_counts_viewers_behind_one_proxy_apart() {
    let (node, api) = protected_node(|c| c.trusted_proxies = vec![PROXY.into()]).await;
    let http = node.http_addr();
    set_table(&api).await;
    for (name, mode) in [("aes", "aes-128"), ("cbcs", "cbcs")] {
        let body = json!({ "encryption": mode, "regions": ["eu"] });
        api.call(Method::PUT, &format!("/api/v1/streams/{name}"), Some(&body)).await.expect("protection set");
    }
    let publishers = [publish_sample(&node, "aes", 3), publish_sample(&node, "cbcs", 3)];
    for name in ["aes", "cbcs"] {
        let valid = token(&api, &format!("live/{name}"), now_ms() + 600_000, json!({})).await;
        let path = format!("/live/{name}/src/index.m3u8?token={valid}");
        let playlist = eventually(Duration::from_secs(20), "a segment, from eu", || async {
            let r = get_from(ip(EU), http, &path, &[]).await;
            (r.status == 200 && r.text().contains("#EXTINF")).then(|| r.text())
        })
        .await;
        let p = parse_media(&playlist);
        let key_uri = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:")).unwrap().split('"').nth(1).unwrap();
        let files = [
            path.clone(),
            format!("/live/{name}/src/{}", p.maps.last().unwrap()),
            format!("/live/{name}/src/{}", p.segments[0].2),
        ];
        for f in &files {
            assert_eq!(answer(EU, http, f, &[]).await, ok(), "{f} from eu");
            assert_eq!(answer(US, http, f, &[]).await, refused(), "{f} from us");
        }
        let key = |from: &'static str, headers: Vec<(&'static str, String)>| {
            let key_uri = key_uri.to_string();
            async move {
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = if name == "aes" {
                    get_from(ip(from), http, &key_uri, &headers).await
                } else {
                    let kid = key_uri.rsplit('/').next().unwrap().split('?').next().unwrap();
                    let kid = crate::protection::hex_bytes(kid);
                    use base64::Engine;
                    let kids = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kid);
                    let body = json!({ "kids": [kids], "type": "temporary" }).to_string();
                    request_from(Some(ip(from)), Method::POST, http, &key_uri, &headers, body.into()).await
                };
                let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                (r.status, v["error"].as_str().unwrap_or_default().to_string())
            }
        };
        assert_eq!(key(EU, vec![]).await.0, 200, "the {name} key from eu");
        assert_eq!(key(US, vec![]).await, refused(), "the {name} key from us");
        assert_eq!(key(PROXY, vec![("x-forwarded-for", "198.51.100.7".into())]).await.0, 200);
        assert_eq!(key(PROXY, vec![("x-forwarded-for", "203.0.113.7".into())]).await, refused());
        assert_eq!(key(US, vec![("x-forwarded-for", "198.51.100.7".into())]).await, refused(), "a forged header");
    }

    // One device allowed: behind the same proxy, two viewers are two devices.
    let one = token(&api, "live/aes", now_ms() + 600_000, json!({ "max_streams": 1 })).await;
    let playlist = get_from(ip(EU), http, &format!("/live/aes/src/index.m3u8?token={one}"), &[]).await.text();
    let key_uri = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:")).unwrap().split('"').nth(1).unwrap();
    let viewer = |who: &'static str| async move {
        let r = get_from(ip(PROXY), http, key_uri, &[("x-forwarded-for", who)]).await;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (r.status, v["error"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(viewer("198.51.100.7").await.0, 200);
    assert_eq!(viewer("198.51.100.7").await.0, 200, "the same viewer again");
    assert_eq!(viewer("198.51.100.8").await, (403, "stream_limit".to_string()), "a second viewer behind the proxy");
    for p in publishers {
        p.abort();
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_takes_signed_urls_and_its_region_rule_holds_on_every_file() {
    let (node, api) = protected_node(|c| {
        c.vod_ladder = "source".parse().unwrap();
        c.trusted_proxies = vec![PROXY.into()];
    })
    .await;
    let http = node.http_addr();
    set_table(&api).await;
    let id = crate::protection::ready_asset(&api, http, "Territorial").await;
    let (mv, playlist, segment) =
        (format!("/vod/{id}/index.m3u8"), format!("/vod/{id}/src/index.m3u8"), format!("/vod/{id}/src/seg-0.m4s"));
    assert_eq!(answer(US, http, &segment, &[]).await, ok(), "no rule: everywhere");

    let asset = format!("/api/v1/assets/{id}");
    let set = api.call(Method::PUT, &asset, Some(&json!({ "regions": ["eu"], "signed_urls": true }))).await;
    let set = set.expect("rights and signing in one write");
    assert_eq!(
        (set["protection"]["regions"].clone(), set["protection"]["signed_urls"].clone()),
        (json!(["eu"]), json!(true))
    );
    let valid = token(&api, &format!("vod/{id}"), now_ms() + 600_000, json!({})).await;
    // A playlist needs the token; its media URIs carry the signature.
    assert_eq!(answer(EU, http, &playlist, &[]).await, (401, "token_missing".to_string()));
    let signed = get_from(ip(EU), http, &format!("{playlist}?token={valid}"), &[]).await;
    assert_eq!(signed.status, 200, "{}", signed.text());
    let seg_uri =
        signed.text().lines().find(|l| l.starts_with("seg-0.m4s?sig=")).expect("a signed segment").to_string();
    assert!(signed.text().contains(".mp4?sig="), "the init segment is signed too:\n{}", signed.text());
    assert_eq!(answer(EU, http, &segment, &[]).await, (403, "url_signature".to_string()));
    assert_eq!(answer(EU, http, &format!("/vod/{id}/src/{seg_uri}"), &[]).await, ok());
    let mv_body = get_from(ip(EU), http, &format!("{mv}?token={valid}"), &[]).await.text();
    assert!(mv_body.contains(&format!("src/index.m3u8?token={valid}")), "{mv_body}");
    // From the wrong region, with a valid token and signature all the same: refused.
    for f in [format!("{mv}?token={valid}"), format!("{playlist}?token={valid}"), format!("/vod/{id}/src/{seg_uri}")] {
        assert_eq!(answer(US, http, &f, &[]).await, refused(), "{f} from us");
    }
    // Through the trusted proxy, its header names the viewer; the same header from
    // anyone else changes nothing.
    let signed_seg = format!("/vod/{id}/src/{seg_uri}");
    assert_eq!(answer(PROXY, http, &signed_seg, &[("x-forwarded-for", "198.51.100.7")]).await, ok());
    assert_eq!(answer(PROXY, http, &signed_seg, &[("x-forwarded-for", "203.0.113.7")]).await, refused());
    assert_eq!(answer(US, http, &signed_seg, &[("x-forwarded-for", "198.51.100.7")]).await, refused());
    // A token narrowed to us is refused in eu.
    let us_only = token(&api, &format!("vod/{id}"), now_ms() + 600_000, json!({ "regions": ["us"] })).await;
    assert_eq!(answer(EU, http, &format!("{playlist}?token={us_only}"), &[]).await, refused());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countries_come_from_the_geoip_database_reloaded_when_it_changes_and_the_table_overrides_it() {
    let dir = scratch_dir("geoip");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("countries.mmdb");
    let write = |networks: &[(&str, u8, &str)]| {
        let networks: Vec<_> = networks.iter().map(|(a, p, c)| (a.parse().unwrap(), *p, *c)).collect();
        // Written aside and renamed in, as a database updater does.
        std::fs::write(dir.join("next.mmdb"), mmdb::country_database(&networks)).unwrap();
        std::fs::rename(dir.join("next.mmdb"), &db).unwrap();
    };
    write(&[("127.0.0.4", 32, "FR"), ("127.0.0.5", 32, "DE")]);
    let geoip = db.clone();
    let (node, api) = protected_node(move |c| c.geoip_db = Some(geoip)).await;
    let http = node.http_addr();
    api.call(Method::PUT, "/api/v1/streams/ligue", Some(&json!({ "regions": ["FR"] }))).await.expect("rights");
    let publisher = publish_sample(&node, "ligue", 3);
    let path = "/live/ligue/src/index.m3u8";
    eventually(Duration::from_secs(20), "the playlist in France", || async {
        (answer("127.0.0.4", http, path, &[]).await == ok()).then_some(())
    })
    .await;
    assert_eq!(answer("127.0.0.5", http, path, &[]).await, refused(), "Germany");
    assert_eq!(answer("127.0.0.6", http, path, &[]).await, refused(), "nowhere known");
    // The database changes: 127.0.0.5 is in France now.
    write(&[("127.0.0.4", 32, "FR"), ("127.0.0.5", 32, "FR")]);
    eventually(Duration::from_secs(20), "the new database in force", || async {
        (answer("127.0.0.5", http, path, &[]).await == ok()).then_some(())
    })
    .await;
    // A broken file leaves the database in force.
    std::fs::write(&db, b"not a database").unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(answer("127.0.0.5", http, path, &[]).await, ok(), "the last good database stays");
    // The catalog's table overrides the database.
    let table = json!({ "ranges": ["127.0.0.4/32=DE"] });
    api.call(Method::PUT, "/api/v1/regions", Some(&table)).await.expect("table");
    assert_eq!(answer("127.0.0.4", http, path, &[]).await, refused(), "the table says Germany");
    let metrics = get(http, "/metrics").await.text();
    let counted = |outcome: &str| {
        metrics.lines().any(|l| {
            l.starts_with("tessera_file_reloads_total{")
                && l.contains("file=\"geoip\"")
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
    };
    assert!(counted("reloaded"), "reloads are counted");
    assert!(counted("invalid"), "so are bad files");
    publisher.abort();
    node.shutdown().await;
}
