//! An upload is cut off at random points: connections dropped with part of a chunk sent,
//! and chunks whose checksum does not match. Each time the client asks the node for its
//! offset (tus `HEAD`) and resumes from there. The stored source is the file byte for byte,
//! and the SHA-256 the catalog records is the file's. (A client killed mid-upload and run
//! again, against a node process, is `tests/it/vod.rs`.)

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tessera_node::{Node, NodeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cluster::Rng;
use crate::scenario::announce;

const FILM: &[u8] = include_bytes!("../../../samples/sample.mp4");
const ADMIN: &str = "chaos-uploads-admin";

async fn start(data: &Path) -> Node {
    let c = NodeConfig {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        srt_listen: "127.0.0.1:0".parse().unwrap(),
        rtmp_listen: "127.0.0.1:0".parse().unwrap(),
        cluster: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_path_buf(),
        admin_tokens: vec![ADMIN.into()],
        vod_workers: 0,
        ..NodeConfig::default()
    };
    Node::start(c).await.expect("the node starts")
}

/// One HTTP/1.1 exchange on a fresh connection: the status and headers (lower-case
/// names). With `send` shorter than `body`, the connection is dropped after `send` bytes.
async fn exchange(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
    send: usize,
) -> Option<(u16, Vec<(String, String)>, String)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "{head}\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nTus-Resumable: 1.0.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(request.as_bytes()).await.ok()?;
    s.write_all(&body[..send]).await.ok()?;
    if send < body.len() {
        return None; // cut off: the connection goes with `s`
    }
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&reply);
    let (top, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = top.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((status, headers, body.to_string()))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The offset the node holds for `url`.
async fn offset(addr: SocketAddr, url: &str) -> u64 {
    let (status, h, _) = exchange(addr, &format!("HEAD {url} HTTP/1.1"), &[], 0).await.expect("HEAD answered");
    assert_eq!(status, 200, "HEAD {url}");
    header(&h, "upload-offset").and_then(|o| o.parse().ok()).expect("an Upload-Offset")
}

fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_interrupted_and_resumed() {
    let (seed, _window, replay) = announce("uploads_interrupted_and_resumed", 17);
    let mut rng = Rng::new(seed);
    let data = std::env::temp_dir().join(format!("tessera-chaos-uploads-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let node = start(&data).await;
    let create = format!("POST /api/v1/uploads HTTP/1.1\r\nUpload-Length: {}", FILM.len());
    let (status, h, _) = exchange(node.http_addr(), &create, &[], 0).await.expect("POST answered");
    assert_eq!(status, 201, "{replay}");
    let location = header(&h, "location").expect("a Location").to_string();
    let url =
        location.split_once("//").map_or(location.as_str(), |(_, rest)| &rest[rest.find('/').unwrap()..]).to_string();
    let (mut cuts, mut refused, mut asset) = (0, 0, None);
    let mut at = 0u64;
    while asset.is_none() {
        let len = (1 + rng.below(12 * 1024)).min(FILM.len() as u64 - at) as usize;
        let chunk = &FILM[at as usize..at as usize + len];
        let head =
            format!("PATCH {url} HTTP/1.1\r\nUpload-Offset: {at}\r\nContent-Type: application/offset+octet-stream");
        match rng.below(4) {
            0 if len > 1 => {
                // Cut off: the node keeps what arrived (unchecked chunks), the client asks.
                let sent = 1 + rng.below(len as u64 - 1) as usize;
                assert!(exchange(node.http_addr(), &head, chunk, sent).await.is_none());
                cuts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let now = offset(node.http_addr(), &url).await;
                assert!((at..=at + sent as u64).contains(&now), "offset {now} after sending {sent} at {at}\n{replay}");
                at = now;
            }
            1 => {
                // A damaged chunk, with its checksum: refused and not kept.
                let mut damaged = chunk.to_vec();
                damaged[rng.below(len as u64) as usize] ^= 0x55;
                let sum = format!("sha256 {}", base64(&hex_bytes(&sha256_hex(chunk))));
                let head = format!("{head}\r\nUpload-Checksum: {sum}");
                let (status, _, _) =
                    exchange(node.http_addr(), &head, &damaged, damaged.len()).await.expect("answered");
                assert_eq!(status, 460, "a damaged chunk is refused\n{replay}");
                assert_eq!(offset(node.http_addr(), &url).await, at, "and not kept\n{replay}");
                refused += 1;
            }
            _ => {
                let (status, h, _) = exchange(node.http_addr(), &head, chunk, len).await.expect("PATCH answered");
                assert_eq!(status, 204, "PATCH at {at}\n{replay}");
                at = header(&h, "upload-offset").and_then(|o| o.parse().ok()).expect("an Upload-Offset");
                asset = header(&h, "tessera-asset").map(str::to_string);
            }
        }
    }
    let id = asset.unwrap();
    let stored = std::fs::read(data.join("sources").join(&id).join("source")).expect("the stored source");
    assert!(stored == FILM, "the stored source is the file byte for byte\n{replay}");
    let (status, _, body) =
        exchange(node.http_addr(), &format!("GET /api/v1/assets/{id} HTTP/1.1"), &[], 0).await.unwrap();
    assert_eq!(status, 200);
    let at = body.find("\"sha256\":\"").expect("the asset's SHA-256") + 10;
    let recorded = &body[at..at + 64];
    assert_eq!(recorded, sha256_hex(FILM), "the catalog's SHA-256 is the file's\n{replay}");
    eprintln!("{cuts} cut-off requests, {refused} damaged chunks refused");
    assert!(cuts > 0 && refused > 0, "the seed exercised both faults\n{replay}");
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}
