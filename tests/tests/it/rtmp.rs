//! RTMP ingest with ffmpeg's RTMP client: the same content over RTMP and over SRT gives the
//! same playlists; refusals use RTMP's own status codes and close the connection.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::common::*;

fn ffmpeg_rtmp(url: &str, sample: &str) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-re", "-i", sample, "-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

const SAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample.ts");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_and_srt_give_the_same_playlists() {
    let node = node(|c| c.reconnect_grace_ms = 1500).await;
    let http = node.http_addr();
    let rtmp = format!("rtmp://{}/live/viartmp", node.rtmp_addr());
    let mut ff = ffmpeg_rtmp(&rtmp, SAMPLE_PATH).spawn().expect("ffmpeg must be installed (.ci/run installs it)");
    let srt = publish_sample(&node, "viasrt", 1);
    assert!(ff.wait().await.unwrap().success(), "ffmpeg published over RTMP");
    srt.await.unwrap();
    // Both end (ENDLIST) once the reconnect grace has passed since their publishers went (a
    // lost SRT shutdown packet is seen only at the idle timeout, 10 s).
    let ended = |path: &'static str| {
        crate::cluster::eventually(
            Duration::from_secs(20),
            "EXT-X-ENDLIST after the grace period",
            move || async move {
                let p = parse_media(&get(http, path).await.text());
                p.ended.then_some(p)
            },
        )
    };
    let a = ended("/live/viartmp/src/index.m3u8").await;
    let b = ended("/live/viasrt/src/index.m3u8").await;
    assert!(a.segments.len() >= 3, "{a:?}");
    // The last segment may differ: SRT drops what is still in its latency buffer at close.
    let n = a.segments.len().min(b.segments.len()) - 1;
    for i in 0..n {
        assert!(
            (a.segments[i].1 - b.segments[i].1).abs() < 0.002,
            "segment {i}: {} vs {}",
            a.segments[i].1,
            b.segments[i].1
        );
    }
    let parts = |p: &MediaPlaylist| {
        p.parts
            .iter()
            .filter(|x| (x.0 as usize) < n)
            .map(|x| (x.0, x.1, (x.2 * 1000.0).round() as i64, x.4))
            .collect::<Vec<_>>()
    };
    assert_eq!(parts(&a), parts(&b));
    let (mva, mvb) =
        (get(http, "/live/viartmp/index.m3u8").await.text(), get(http, "/live/viasrt/index.m3u8").await.text());
    let codecs = |s: &str| {
        s.lines().find(|l| l.starts_with("#EXT-X-STREAM-INF")).map(|l| l.split("CODECS=").nth(1).unwrap().to_string())
    };
    assert_eq!(codecs(&mva), codecs(&mvb));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_refusals() {
    let node = node(|_| {}).await;
    let addr = node.rtmp_addr();
    // Unknown application, and an invalid stream name: refused, ffmpeg fails promptly.
    for url in [format!("rtmp://{addr}/other/x"), format!("rtmp://{addr}/live/bad%20name")] {
        let status = tokio::time::timeout(Duration::from_secs(10), ffmpeg_rtmp(&url, SAMPLE_PATH).status())
            .await
            .expect("refused promptly")
            .unwrap();
        assert!(!status.success(), "{url} must be refused");
    }
    // A name already being published over SRT is refused over RTMP too.
    let srt = publish_sample(&node, "busy", 1);
    wait_ok(node.http_addr(), "/live/busy/index.m3u8", Duration::from_secs(10)).await;
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        ffmpeg_rtmp(&format!("rtmp://{addr}/live/busy"), SAMPLE_PATH).status(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!status.success(), "a stream being published is refused");
    let metrics = get(node.http_addr(), "/metrics").await.text();
    assert!(metrics.contains("protocol=\"rtmp\""), "refusals are counted");
    srt.await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_tokens_on_rtmp() {
    let node = node(|c| c.publish_tokens = vec!["*=open-sesame".into()]).await;
    let addr = node.rtmp_addr();
    for key in ["cam", "cam?token=nope"] {
        let url = format!("rtmp://{addr}/live/{key}");
        let status = tokio::time::timeout(Duration::from_secs(10), ffmpeg_rtmp(&url, SAMPLE_PATH).status())
            .await
            .expect("refused promptly")
            .unwrap();
        assert!(!status.success(), "{key} must be refused");
    }
    let mut ff = ffmpeg_rtmp(&format!("rtmp://{addr}/live/cam?token=open-sesame"), SAMPLE_PATH).spawn().unwrap();
    let mv = wait_ok(node.http_addr(), "/live/cam/index.m3u8", Duration::from_secs(10)).await;
    assert_eq!(mv.status, 200, "the right token publishes");
    ff.kill().await.ok();
    let metrics = get(node.http_addr(), "/metrics").await.text();
    assert!(metrics.contains("tessera_ingest_unauthorized_total{protocol=\"rtmp\"} 2"), "refusals are counted");
    node.shutdown().await;
}
