//! Bad input never crashes the node and never harms another stream.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use srt_tokio::SrtSocket;
use tessera_cli::publish::{connect, publish_stream_id};

use crate::common::*;

async fn send_all(socket: &mut SrtSocket, data: &[u8], pace: Duration) {
    for chunk in data.chunks(1316) {
        if socket.send((std::time::Instant::now(), Bytes::copy_from_slice(chunk))).await.is_err() {
            return;
        }
        tokio::time::sleep(pace).await;
    }
}

/// True if the node closes the connection within `within`.
async fn closed_by_node(socket: &mut SrtSocket, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// True if the node closes a TCP connection within `within`.
async fn tcp_closed_by_node(mut s: tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn junk(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Latest part sequence number of a stream.
async fn newest_part(http: std::net::SocketAddr, name: &str) -> u64 {
    let p = parse_media(&get(http, &format!("/live/{name}/src/index.m3u8")).await.text());
    p.parts.last().map(|x| x.3.trim_start_matches("part-").trim_end_matches(".m4s").parse().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_publishers_do_not_harm_a_good_one() {
    let node = node(|c| c.ingest_idle_timeout_ms = 1500).await;
    let http = node.http_addr();
    let srt = node.srt_addr();
    let good = publish_sample(&node, "good", 4);
    assert_eq!(wait_ok(http, "/live/good/src/index.m3u8", Duration::from_secs(10)).await.status, 200);
    let before = newest_part(http, "good").await;

    // Random bytes: the node closes the connection.
    let mut random = connect(srt, &publish_stream_id("random")).await.unwrap();
    send_all(&mut random, &junk(120_000, 7), Duration::from_millis(1)).await;
    assert!(closed_by_node(&mut random, Duration::from_secs(10)).await, "random bytes: connection closed");

    // A caller that never sends data is disconnected after the idle timeout.
    let mut silent = connect(srt, &publish_stream_id("silent")).await.unwrap();
    assert!(closed_by_node(&mut silent, Duration::from_secs(10)).await, "silent caller disconnected");

    // A truncated TS (cut mid-packet) and a lying PES length: the session survives them,
    // produces what it can, and ends cleanly when the publisher leaves.
    let mut lying = SAMPLE[..SAMPLE.len() / 2 + 77].to_vec();
    let mut patched = 0;
    for (i, p) in lying.chunks_mut(188).enumerate() {
        // Audio PES starts (PID 0x101 with PUSI): claim a much longer length.
        if i % 3 == 0 && p.len() == 188 && p[1] & 0x40 != 0 && (u16::from_be_bytes([p[1], p[2]]) & 0x1fff) == 0x101 {
            let af = if p[3] & 0x20 != 0 { 1 + p[4] as usize } else { 0 };
            let at = 4 + af + 4;
            p[at] = 0xff;
            patched += 1;
        }
    }
    assert!(patched > 0);
    let mut liar = connect(srt, &publish_stream_id("liar")).await.unwrap();
    send_all(&mut liar, &lying, Duration::from_micros(500)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    liar.close().await.ok();

    // The good stream kept going, and the node still answers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = newest_part(http, "good").await;
    assert!(after > before + 5, "good stream advanced from part {before} to {after}");
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_ingest_errors_total"), "bad input is counted");
    assert!(metrics.contains("tessera_ingest_idle_timeouts_total"));
    good.await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_garbage_and_silence_close_only_that_connection() {
    use tokio::io::AsyncWriteExt;
    let node = node(|c| c.ingest_idle_timeout_ms = 1500).await;
    let good = publish_sample(&node, "steady", 2);
    wait_ok(node.http_addr(), "/live/steady/index.m3u8", Duration::from_secs(10)).await;
    let before = newest_part(node.http_addr(), "steady").await;
    // Garbage instead of a handshake (wrong version byte, then noise).
    let mut s = tokio::net::TcpStream::connect(node.rtmp_addr()).await.unwrap();
    s.write_all(&junk(5000, 3)).await.ok();
    assert!(tcp_closed_by_node(s, Duration::from_secs(10)).await, "garbage: connection closed");
    // A connection that never sends anything.
    let s = tokio::net::TcpStream::connect(node.rtmp_addr()).await.unwrap();
    assert!(tcp_closed_by_node(s, Duration::from_secs(10)).await, "silent connection closed after the idle timeout");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(newest_part(node.http_addr(), "steady").await > before + 5, "the other stream kept going");
    good.await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_over_a_limit_are_cut() {
    // The sample runs at about 480 kbit/s with keyframes of several kilobytes.
    for (name, label, tweak) in [
        (
            "bitrate",
            "limit=\"bitrate\"",
            Box::new(|c: &mut tessera_node::NodeConfig| c.max_ingest_kbps = 100)
                as Box<dyn Fn(&mut tessera_node::NodeConfig)>,
        ),
        ("frame", "limit=\"frame_size\"", Box::new(|c: &mut tessera_node::NodeConfig| c.max_frame_bytes = 2000)),
    ] {
        let node = node(|c| tweak(c)).await;
        let mut socket = connect(node.srt_addr(), &publish_stream_id(name)).await.unwrap();
        let file = tessera_cli::publish::TsFile::new(SAMPLE).unwrap();
        let publishing =
            tokio::time::timeout(Duration::from_secs(8), tessera_cli::publish::publish(&mut socket, &file, Some(1)))
                .await;
        assert!(
            closed_by_node(&mut socket, Duration::from_secs(6)).await || matches!(publishing, Ok(Err(_))),
            "{name}: publisher cut"
        );
        let metrics = get(node.http_addr(), "/metrics").await.text();
        assert!(metrics.contains(&format!("tessera_ingest_limit_cuts_total{{{label}}}")), "{name}: counted");
        node.shutdown().await;
    }
}

/// Completes an RTMP handshake as a client and returns the connection.
async fn rtmp_handshaken(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut hs = Handshake::new(PeerType::Client);
    s.write_all(&hs.generate_outbound_p0_and_p1().unwrap()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during the handshake");
        match hs.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => s.write_all(&response_bytes).await.unwrap(),
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                s.write_all(&response_bytes).await.unwrap();
                return s;
            }
        }
    }
}

/// One RTMP message in a single type-0 chunk (the payload must fit the chunk size).
fn rtmp_message(csid: u8, type_id: u8, stream_id: u32, payload: &[u8], declared_len: Option<u32>) -> Vec<u8> {
    let len = declared_len.unwrap_or(payload.len() as u32);
    let mut v = vec![csid, 0, 0, 0, (len >> 16) as u8, (len >> 8) as u8, len as u8, type_id];
    v.extend_from_slice(&stream_id.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn amf0_string(s: &str) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_protocol_abuse_closes_only_that_connection() {
    use tokio::io::AsyncWriteExt;
    let node = node(|c| c.ingest_idle_timeout_ms = 3000).await;
    let good = publish_sample(&node, "steady", 2);
    wait_ok(node.http_addr(), "/live/steady/index.m3u8", Duration::from_secs(10)).await;
    let before = newest_part(node.http_addr(), "steady").await;
    // Set Chunk Size of 0, and of 2^31.
    for size in [0u32, 1 << 31] {
        let mut s = rtmp_handshaken(node.rtmp_addr()).await;
        s.write_all(&rtmp_message(2, 1, 0, &size.to_be_bytes(), None)).await.unwrap();
        s.write_all(&junk(3000, 11)).await.ok();
        assert!(tcp_closed_by_node(s, Duration::from_secs(8)).await, "chunk size {size}: connection closed");
    }
    // `publish` before `connect`.
    let mut s = rtmp_handshaken(node.rtmp_addr()).await;
    let mut cmd = amf0_string("publish");
    cmd.push(0x00);
    cmd.extend_from_slice(&0f64.to_be_bytes());
    cmd.push(0x05);
    cmd.extend(amf0_string("sneaky"));
    cmd.extend(amf0_string("live"));
    s.write_all(&rtmp_message(3, 20, 1, &cmd, None)).await.unwrap();
    assert!(tcp_closed_by_node(s, Duration::from_secs(8)).await, "publish before connect: connection closed");
    // A message that declares the largest length RTMP allows and never completes it.
    let mut s = rtmp_handshaken(node.rtmp_addr()).await;
    s.write_all(&rtmp_message(4, 9, 1, &[0x17; 100], Some(0xff_ffff))).await.unwrap();
    assert!(tcp_closed_by_node(s, Duration::from_secs(8)).await, "an endless message: connection closed");
    assert!(!get(node.http_addr(), "/streams").await.text().contains("sneaky"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(newest_part(node.http_addr(), "steady").await > before, "the other stream kept going");
    good.await.unwrap();
    node.shutdown().await;
}
