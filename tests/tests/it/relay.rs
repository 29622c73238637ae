//! Every node serves every stream: a feed published to one node of a three-node cluster
//! (separate processes, QUIC between them) plays from the other two, blocking reloads
//! included, with the same segments byte for byte under the same numbers and times.

use std::time::Duration;

use crate::cluster::form;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_to_one_node_plays_from_the_others_with_the_same_bytes() {
    let (nodes, _join, _admin) = form(3).await;
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
    publisher.abort();
}
