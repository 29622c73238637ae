//! SRT admission: who may publish, decided at the handshake.

use std::time::Duration;

use tessera_cli::publish::{connect, publish_stream_id};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refusals() {
    let node = node(|_| {}).await;
    let addr = node.srt_addr();
    for bad in [
        "#!::r=live/x,m=request",
        "#!::r=live/x",
        "",
        "#!::m=publish",
        "#!::r=live/../x,m=publish",
        "#!::r=other/x,m=publish",
    ] {
        let r =
            tokio::time::timeout(Duration::from_secs(5), connect(addr, bad)).await.expect("refused promptly, not hung");
        assert!(r.is_err(), "{bad:?} must be refused at the handshake");
    }
    // The plain form publishes; a second publisher of the same name is refused.
    let _first = connect(addr, "live/taken").await.expect("plain streamid accepted");
    let second =
        tokio::time::timeout(Duration::from_secs(5), connect(addr, &publish_stream_id("taken"))).await.unwrap();
    assert!(second.is_err(), "a name already being published is refused");
    // Another name is fine.
    connect(addr, &publish_stream_id("other")).await.expect("another name");
    let metrics = get(node.http_addr(), "/metrics").await.text();
    assert!(metrics.contains("tessera_ingest_rejected_total"), "refusals are counted");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_tokens_on_srt() {
    let node = node(|c| c.publish_tokens = vec!["cam=s3cret".into()]).await;
    let addr = node.srt_addr();
    for bad in ["#!::r=live/cam,m=publish", "#!::r=live/cam,m=publish,t=wrong", "#!::r=live/cam,m=publish,t=s3cre"] {
        let r = tokio::time::timeout(Duration::from_secs(5), connect(addr, bad)).await.expect("refused promptly");
        assert!(r.is_err(), "{bad:?} must be refused");
    }
    connect(addr, "#!::r=live/cam,m=publish,t=s3cret").await.expect("the right token is accepted");
    // Streams without a token of their own stay open.
    connect(addr, &publish_stream_id("open")).await.expect("no token needed");
    let metrics = get(node.http_addr(), "/metrics").await.text();
    assert!(metrics.contains("tessera_ingest_unauthorized_total{protocol=\"srt\"} 3"), "refusals are counted");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_takes_over_when_configured() {
    use futures::StreamExt;
    let node = node(|c| c.on_duplicate_publisher = tessera_node::config::DuplicatePublisher::Takeover).await;
    let first = publish_sample(&node, "cam", 3);
    wait_ok(node.http_addr(), "/live/cam/index.m3u8", Duration::from_secs(10)).await;
    // The second publisher is accepted; the first is disconnected by the node.
    let mut second = connect(node.srt_addr(), &publish_stream_id("cam")).await.expect("takeover accepted");
    let file = tessera_cli::publish::TsFile::new(SAMPLE).unwrap();
    let feeding = tokio::spawn(async move {
        tessera_cli::publish::publish(&mut second, &file, Some(1)).await.ok();
        second.next().await;
    });
    let first_result = tokio::time::timeout(Duration::from_secs(15), first).await.expect("first publisher stopped");
    assert!(first_result.is_err(), "the first publisher's session was cut (its publish failed)");
    feeding.await.unwrap();
    let p = parse_media(&get(node.http_addr(), "/live/cam/src/index.m3u8").await.text());
    assert_eq!(p.discontinuities, 1, "the new publisher starts a discontinuity");
    let metrics = get(node.http_addr(), "/metrics").await.text();
    assert!(metrics.contains("tessera_publisher_takeovers_total"));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_passphrase_per_stream() {
    use srt_tokio::SrtSocket;
    let node = node(|c| c.srt_passphrases = vec!["vault=correct horse battery".into()]).await;
    let addr = node.srt_addr();
    let call = |pass: Option<&'static str>, name: &'static str| async move {
        let mut b = SrtSocket::builder().latency(Duration::from_millis(120));
        if let Some(p) = pass {
            b = b.encryption(16, p);
        }
        tokio::time::timeout(Duration::from_secs(6), b.call(addr, Some(publish_stream_id(name).as_str()))).await
    };
    assert!(!matches!(call(None, "vault").await, Ok(Ok(_))), "unencrypted caller refused");
    assert!(!matches!(call(Some("wrong passphrase!"), "vault").await, Ok(Ok(_))), "wrong passphrase refused");
    let mut socket = match call(Some("correct horse battery"), "vault").await {
        Ok(Ok(s)) => s,
        other => panic!("right passphrase accepted: {:?}", other.map(|r| r.err())),
    };
    // And the encrypted feed is packaged.
    let file = tessera_cli::publish::TsFile::new(SAMPLE).unwrap();
    let feed = tokio::spawn(async move { tessera_cli::publish::publish(&mut socket, &file, Some(1)).await });
    let mv = wait_ok(node.http_addr(), "/live/vault/index.m3u8", Duration::from_secs(10)).await;
    assert_eq!(mv.status, 200);
    feed.await.unwrap().unwrap();
    // Other streams need no passphrase.
    call(None, "plain").await.unwrap().expect("no passphrase needed elsewhere");
    node.shutdown().await;
}
