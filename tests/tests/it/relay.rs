//! Every node serves every stream: a feed published to one node of a three-node cluster
//! (separate processes, QUIC between them) plays from the other two, blocking reloads
//! included, with the same segments byte for byte under the same numbers and times.

use std::time::Duration;

use crate::cluster::form;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_to_one_node_plays_from_the_others_with_the_same_bytes() {
    let (nodes, _join, admin) = form(3).await;
    let origin = &nodes[0];
    let publisher = publish_sample_to(origin.srt, "everywhere", 3); // 18 s
    let mv = wait_ok(origin.http, "/live/everywhere/index.m3u8", Duration::from_secs(15)).await;
    assert_eq!(mv.status, 200, "origin: {}", origin.log());

    for edge in &nodes[1..] {
        // The first request on an edge starts it following the origin.
        let r = wait_ok(edge.http, "/live/everywhere/index.m3u8", Duration::from_secs(10)).await;
        assert_eq!(r.status, 200, "edge multivariant: {}\n{}", r.text(), edge.log());
        assert_eq!(r.text(), mv.text(), "the same renditions everywhere");

        // A blocking reload on the edge is answered once the next part has arrived there.
        let p = parse_media(&get(edge.http, "/live/everywhere/src/index.m3u8").await.text());
        let (msn, part) = p.next_part();
        let r = get(edge.http, &format!("/live/everywhere/src/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let next = parse_media(&r.text());
        assert!(
            next.parts.iter().any(|x| (x.0, x.1) == (msn, part)) || next.segments.iter().any(|s| s.0 == msn),
            "part {msn}.{part} listed after the blocking reload:\n{}",
            r.text()
        );
    }

    // Let a few segments complete everywhere, then compare what every node serves.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let on_origin = parse_media(&get(origin.http, "/live/everywhere/src/index.m3u8").await.text());
    let numbers: Vec<u64> = on_origin.segments.iter().map(|s| s.0).rev().take(3).collect();
    assert!(numbers.len() >= 2, "segments on the origin: {on_origin:?}");
    for edge in &nodes[1..] {
        let text = get(edge.http, "/live/everywhere/src/index.m3u8").await.text();
        let on_edge = parse_media(&text);
        for msn in &numbers {
            let (o, e) = (on_origin.segments.iter().find(|s| s.0 == *msn), on_edge.segments.iter().find(|s| s.0 == *msn));
            let (Some(o), Some(e)) = (o, e) else { panic!("segment {msn} missing on the edge:\n{text}") };
            assert!((o.1 - e.1).abs() < 1e-6, "segment {msn}: {} s on the origin, {} s on the edge", o.1, e.1);
            let path = format!("/live/everywhere/src/{}", o.2);
            let (a, b) = (get(origin.http, &path).await, get(edge.http, &path).await);
            assert_eq!((a.status, b.status), (200, 200), "{path}");
            assert!(a.body == b.body, "segment {msn} differs between the origin and an edge");
        }
        let map = on_edge.maps.first().expect("an init segment");
        let path = format!("/live/everywhere/src/{map}");
        assert_eq!(get(origin.http, &path).await.body, get(edge.http, &path).await.body, "init segments differ");
    }

    // The admin API, asked on any node, says where every node stands.
    let s = nodes[2].api(&admin).get("/api/v1/streams/everywhere").await.expect("stream record");
    assert_eq!(s["origin"]["node"], 1, "{s}");
    let rows = s["nodes"].as_array().expect("nodes").clone();
    assert_eq!(rows.len(), 3, "{s}");
    for row in rows {
        assert_eq!(row["holds"], true, "{row}");
        assert_eq!(row["following"], row["node"] != 1, "{row}");
        assert_eq!(row["origin"], row["node"] == 1, "{row}");
        assert!(row["behind"]["segments"].as_u64().is_some_and(|b| b <= 1), "a follower keeps up: {row}");
    }
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_origin_dies_a_publisher_on_another_node_carries_the_stream_on() {
    let (mut nodes, _join, _admin) = form(3).await;
    let first = publish_sample_to(nodes[0].srt, "failover", 5);
    let r = wait_ok(nodes[0].http, "/live/failover/index.m3u8", Duration::from_secs(15)).await;
    assert_eq!(r.status, 200, "{}", nodes[0].log());
    // The viewer is on the third node; the publisher will come back on the second.
    let viewer = nodes[2].http;
    let path = "/live/failover/src/index.m3u8";
    assert_eq!(wait_ok(viewer, path, Duration::from_secs(10)).await.status, 200);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = parse_media(&get(viewer, path).await.text());
    let last_before = before.segments.last().expect("segments before the failover").0;

    nodes[0].kill();
    first.abort();
    let killed = std::time::Instant::now();
    let second = publish_sample_to(nodes[1].srt, "failover", 3);
    let after = crate::cluster::eventually(Duration::from_secs(30), "segments from the new origin on the viewer's node", || async {
        let p = parse_media(&get(viewer, path).await.text());
        p.segments.iter().any(|s| s.0 >= last_before + 3).then_some(p)
    })
    .await;
    eprintln!("failover: the viewer's node lists new segments {:?} after the kill", killed.elapsed());

    assert!(after.discontinuities >= 1, "a discontinuity marks the new origin: {after:?}");
    let numbers: Vec<u64> = after.segments.iter().map(|s| s.0).collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "numbering carries on without a jump or a repeat: {numbers:?}\n{}",
        nodes[1].log()
    );
    assert!(after.segments.iter().any(|s| s.0 <= last_before), "the old origin's segments are still listed");
    second.abort();
}
