//! Helpers: a node on free ports, an HTTP client, a playlist reader.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tessera_cli::publish::{connect, publish, publish_stream_id, TsFile};
use tessera_node::{Node, NodeConfig};
use tessera_packager::check::attr;

pub const SAMPLE: &[u8] = include_bytes!("../../../samples/sample.ts");

/// A node on loopback with free ports; `tweak` adjusts the config.
pub async fn node(tweak: impl FnOnce(&mut NodeConfig)) -> Node {
    let mut c = NodeConfig {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        srt_listen: "127.0.0.1:0".parse().unwrap(),
        rtmp_listen: "127.0.0.1:0".parse().unwrap(),
        codec_worker: Some(env!("CARGO_BIN_EXE_codec-worker").into()),
        data_dir: scratch_dir("node"),
        cluster: "127.0.0.1:0".parse().unwrap(),
        ..NodeConfig::default()
    };
    tweak(&mut c);
    Node::start(c).await.expect("node starts")
}

/// A fresh folder under the system's temporary directory.
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("tessera-it-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Publishes the bundled sample `loops` times over SRT as `name`, in the background.
pub fn publish_sample(node: &Node, name: &str, loops: u64) -> tokio::task::JoinHandle<()> {
    publish_sample_to(node.srt_addr(), name, loops)
}

/// Publishes the bundled sample `loops` times over SRT to the node at `addr`, in the background.
pub fn publish_sample_to(addr: SocketAddr, name: &str, loops: u64) -> tokio::task::JoinHandle<()> {
    let name = name.to_string();
    tokio::spawn(async move {
        let file = TsFile::new(SAMPLE).unwrap();
        // A returning publisher may be refused while the node still holds its last session.
        let mut tries = 0;
        let mut socket = loop {
            match connect(addr, &publish_stream_id(&name)).await {
                Ok(s) => break s,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("SRT connect: {e}"),
            }
        };
        publish(&mut socket, &file, Some(loops)).await.expect("publish");
        use futures::SinkExt;
        socket.close().await.ok();
    })
}

pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Response {
    get_with(addr, path, &[]).await
}

/// A GET with extra request headers.
pub async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(hyper::Method::GET, addr, path, headers, Bytes::new()).await
}

/// A POST of `body`.
pub async fn post(addr: SocketAddr, path: &str, body: impl Into<Bytes>) -> Response {
    request(hyper::Method::POST, addr, path, &[], body.into()).await
}

/// Any request, with extra headers and a body.
pub async fn request(
    method: hyper::Method,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Response {
    request_from(None, method, addr, path, headers, body).await
}

/// A GET from the local address `from` (on loopback, any of 127.0.0.0/8): a viewer
/// somewhere else.
pub async fn get_from(from: std::net::IpAddr, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request_from(Some(from), hyper::Method::GET, addr, path, headers, Bytes::new()).await
}

/// Any request from the local address `from` (`None`: the system's choice).
pub async fn request_from(
    from: Option<std::net::IpAddr>,
    method: hyper::Method,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Response {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(from);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut req = hyper::Request::builder().method(method).uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body)).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("HTTP response in time")
        .expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Response { status, headers, body }
}

/// What a media playlist says, as far as the tests need it.
#[derive(Debug, Default, Clone)]
pub struct MediaPlaylist {
    pub target_duration: f64,
    pub part_target: f64,
    pub part_hold_back: f64,
    pub hold_back: f64,
    pub can_skip_until: f64,
    pub media_sequence: u64,
    pub skipped: u64,
    /// (msn, duration, uri) of complete segments.
    pub segments: Vec<(u64, f64, String)>,
    /// (msn of the segment it belongs to, index in that segment, duration, uri, independent).
    pub parts: Vec<(u64, usize, f64, String, bool)>,
    pub preload_hint: Option<String>,
    pub maps: Vec<String>,
    pub discontinuities: usize,
    pub ended: bool,
}

pub fn parse_media(text: &str) -> MediaPlaylist {
    let mut p = MediaPlaylist::default();
    let mut lines = text.lines().peekable();
    assert_eq!(lines.next(), Some("#EXTM3U"));
    let mut msn = 0;
    let mut part_idx = 0;
    let mut pending_extinf = None;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().unwrap();
            msn = p.media_sequence;
        } else if line.starts_with("#EXT-X-PART-INF:") {
            p.part_target = attr(line, "PART-TARGET").unwrap().parse().unwrap();
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            p.part_hold_back = attr(line, "PART-HOLD-BACK").unwrap().parse().unwrap();
            p.hold_back = attr(line, "HOLD-BACK").unwrap().parse().unwrap();
            p.can_skip_until = attr(line, "CAN-SKIP-UNTIL").unwrap().parse().unwrap();
            assert_eq!(attr(line, "CAN-BLOCK-RELOAD").as_deref(), Some("YES"));
        } else if line.starts_with("#EXT-X-SKIP:") {
            p.skipped = attr(line, "SKIPPED-SEGMENTS").unwrap().parse().unwrap();
            msn += p.skipped;
        } else if line.starts_with("#EXT-X-PART:") {
            let d = attr(line, "DURATION").unwrap().parse().unwrap();
            let uri = attr(line, "URI").unwrap();
            p.parts.push((msn, part_idx, d, uri, line.contains("INDEPENDENT=YES")));
            part_idx += 1;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            pending_extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.preload_hint = attr(line, "URI");
        } else if line.starts_with("#EXT-X-MAP:") {
            p.maps.push(attr(line, "URI").unwrap());
        } else if line == "#EXT-X-DISCONTINUITY" {
            p.discontinuities += 1;
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        } else if !line.starts_with('#') && !line.is_empty() {
            p.segments.push((msn, pending_extinf.take().expect("EXTINF before URI"), line.to_string()));
            msn += 1;
            part_idx = 0;
        }
    }
    p
}

impl MediaPlaylist {
    /// (msn, part index) of the part named by the preload hint.
    pub fn next_part(&self) -> (u64, usize) {
        let last_seg = self.segments.last().map(|s| s.0);
        match self.parts.last() {
            Some((msn, idx, ..)) if Some(*msn) != last_seg => (*msn, idx + 1),
            _ => (last_seg.map_or(self.media_sequence, |m| m + 1), 0),
        }
    }
}

/// Waits (polling) until `path` answers 200.
pub async fn wait_ok(addr: SocketAddr, path: &str, within: Duration) -> Response {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let r = get(addr, path).await;
        if r.status == 200 || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The top-level boxes of an MP4 file or fragment.
pub fn boxes(data: &[u8]) -> Vec<mp4_atom::Any> {
    use mp4_atom::Decode;
    let mut cur = std::io::Cursor::new(data);
    let mut out = Vec::new();
    while (cur.position() as usize) < data.len() {
        out.push(mp4_atom::Any::decode(&mut cur).expect("valid MP4 box"));
    }
    out
}

/// Serialises the tests that run codec workers: on two cores, two ladders at once would
/// measure the machine, not the code.
pub async fn transcoding() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// An RFC 3339 time (UTC, milliseconds), as the admin API takes it.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
