//! Storage tiers: a segment past the live window is served from the node's disk (warm) or
//! the archive (cold) and listed in the DVR playlist, checksums are verified on every read
//! (a corrupt copy is never served), the catalog records the archive, the tiers outlive a
//! restart, and retention is enforced per stream.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{eventually, Proc};
use crate::common::*;

fn copy_of(root: PathBuf, stream: &str, file: &str) -> PathBuf {
    root.join(stream).join("src").join(file)
}

/// Waits until the node accepts HTTP connections.
async fn up(node: &Proc) {
    eventually(Duration::from_secs(20), "the node listening", || async {
        tokio::net::TcpStream::connect(node.http).await.ok().map(|_| ())
    })
    .await;
}

/// Flips one byte in the middle of a file.
fn damage(path: &PathBuf) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_segments_come_from_disk_or_the_archive_and_a_corrupt_copy_is_never_served() {
    let mut node = Proc::new("tiers");
    let flags = [
        "--window-segments",
        "3",
        "--dvr-window-s",
        "3600",
        "--archive-s",
        "3600",
        "--stream-retention",
        "brief=1:0",
        "--retention-check-s",
        "1",
    ];
    node.start(&flags);
    up(&node).await;
    let publisher = publish_sample_to(node.srt, "kept", 4); // 24 s
    let short = publish_sample_to(node.srt, "brief", 1);
    let path = "/live/kept/src/index.m3u8";
    assert_eq!(wait_ok(node.http, path, Duration::from_secs(15)).await.status, 200, "{}", node.log());
    // Segments 0 to 2 leave the memory once the live window (3 segments) starts at 6: the
    // store keeps as many again past the window for players still fetching them.
    eventually(Duration::from_secs(40), "segments 0 to 2 out of memory", || async {
        let p = parse_media(&get(node.http, path).await.text());
        (p.media_sequence >= 6).then_some(())
    })
    .await;
    let (warm, cold) = (node.dir().join("warm"), node.dir().join("archive"));
    // A damaged disk copy is discarded; the archive's copy is served (and promoted). The
    // archive holds the payload followed by its 32-byte checksum. (Segments 1 and 2 were
    // never read, so no copy of them is in memory.)
    let archived = std::fs::read(copy_of(cold.clone(), "kept", "seg-1.m4s")).expect("segment 1 archived");
    let payload = archived[..archived.len() - 32].to_vec();
    damage(&copy_of(warm.clone(), "kept", "seg-1.m4s"));
    let r = get(node.http, "/live/kept/src/seg-1.m4s").await;
    assert_eq!(r.status, 200);
    assert!(r.body.to_vec() == payload, "the archive's intact copy, not the damaged one");
    // Both copies damaged: not found, never the damaged bytes.
    damage(&copy_of(warm.clone(), "kept", "seg-2.m4s"));
    damage(&copy_of(cold.clone(), "kept", "seg-2.m4s"));
    assert_eq!(get(node.http, "/live/kept/src/seg-2.m4s").await.status, 404);
    let metrics = get(node.http, "/metrics").await.text();
    assert!(metrics.contains("tessera_tier_corrupt_total{tier=\"warm\"} 2"), "{metrics}");
    assert!(metrics.contains("tessera_tier_corrupt_total{tier=\"cold\"} 1"), "{metrics}");

    // Segment 0 from the disk; read again, from memory (promoted back to hot).
    let first = get(node.http, "/live/kept/src/seg-0.m4s").await;
    assert_eq!(first.status, 200, "segment 0 past the live window: {}", node.log());
    assert!(first.body.len() > 1000);
    assert!(get(node.http, "/live/kept/src/seg-0.m4s").await.body == first.body);
    assert_eq!(get(node.http, "/live/kept/src/init-0.mp4").await.status, 200);
    let metrics = get(node.http, "/metrics").await.text();
    assert!(metrics.contains("tessera_hot_promoted_hits_total 1"), "{metrics}");
    // Where each lookup was answered: segment 0 once from disk, then from memory; segment 1
    // from the archive (its disk copy damaged); segment 2 nowhere.
    for (tier, result, n) in [("disk", "hit", 1), ("memory", "hit", 1), ("archive", "hit", 1), ("archive", "miss", 1)] {
        let series = format!("tessera_tier_lookups_total{{tier=\"{tier}\",result=\"{result}\"}} {n}");
        assert!(metrics.lines().any(|l| l == series), "{series} in\n{metrics}");
    }

    // The DVR playlist lists the past the live playlist has dropped, and every segment it
    // lists is served (from memory, disk or archive), but the one whose copies were both
    // damaged.
    let dvr = get(node.http, "/live/kept/src/dvr.m3u8").await;
    assert_eq!(dvr.status, 200);
    let listed = parse_media(&dvr.text());
    assert_eq!(listed.media_sequence, 0, "{}", dvr.text());
    assert!(listed.segments.len() >= 8 && listed.parts.is_empty(), "{}", dvr.text());
    let mv = get(node.http, "/live/kept/dvr.m3u8").await.text();
    assert!(mv.lines().any(|l| l == "src/dvr.m3u8"), "{mv}");
    for (msn, _, uri) in &listed.segments {
        let r = get(node.http, &format!("/live/kept/src/{uri}")).await;
        assert_eq!(r.status, if *msn == 2 { 404 } else { 200 }, "segment {msn} listed in the DVR playlist");
    }

    // The catalog keeps in step: the stream's record says what the archive holds.
    let tokens = std::fs::read_to_string(node.dir().join("cluster").join("init-tokens")).expect("init tokens");
    let admin = tokens.lines().find_map(|l| l.strip_prefix("admin-token: ")).expect("an admin token").to_string();
    let api = node.api(&admin);
    let archive = eventually(Duration::from_secs(10), "the archive's extent in the catalog", || async {
        let s = api.get("/api/v1/streams/kept").await.ok()?;
        let a = s["archive"].clone();
        (a["last_msn"].as_u64()? >= 6).then_some(a)
    })
    .await;
    assert_eq!(archive["first_msn"], 0, "{archive}");
    assert!(archive["files"].as_u64().is_some_and(|f| f >= 8) && archive["bytes"].as_u64().is_some_and(|b| b > 10_000));

    // Retention: "brief" keeps its media on disk for a second and archives nothing.
    short.await.ok();
    eventually(Duration::from_secs(20), "brief's media expired from the disk", || async {
        let files = std::fs::read_dir(warm.join("brief").join("src")).map_or(0, |d| d.count());
        (files == 0).then_some(())
    })
    .await;
    assert!(!cold.join("brief").exists(), "an archive period of 0 archives nothing");
    let metrics = get(node.http, "/metrics").await.text();
    let expired = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_tier_expired_total{tier=\"warm\"} "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(expired.is_some_and(|n| n >= 3.0), "brief's files were written, then expired: {expired:?}");

    // After a restart (the stream gone from memory), the disk still serves the past.
    publisher.await.ok();
    node.kill();
    node.start(&flags);
    up(&node).await;
    let r = wait_ok(node.http, "/live/kept/src/seg-0.m4s", Duration::from_secs(15)).await;
    assert_eq!(r.status, 200, "{}", node.log());
    assert!(r.body == first.body, "the same bytes after a restart");
}
