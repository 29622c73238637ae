//! Every node serves every stream: a feed published to one node of a three-node cluster
//! (separate processes, QUIC between them) plays from the other two, blocking reloads
//! included, with the same segments byte for byte under the same numbers and times.

use std::time::Duration;

use crate::cluster::{form, form_with, index_of, init_with, membership, Proc};
use crate::common::*;
use crate::link::FaultyLink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_to_one_node_plays_from_the_others_with_the_same_bytes() {
    let (nodes, _join, admin) = form(3).await;
    let origin = &nodes[0];
    let publisher = publish_sample_to(origin.srt, "everywhere", 3); // 18 s
    let mv = wait_ok(origin.http, "/live/everywhere/index.m3u8", Duration::from_secs(15)).await;
    assert_eq!(mv.status, 200, "origin: {}", origin.log());

    // A node that starts following answers its first playlist only once it has caught up:
    // a viewer arriving there starts at the origin's live edge, not seconds behind it.
    let media = "/live/everywhere/src/index.m3u8";
    let edge_of = |p: &MediaPlaylist| p.next_part();
    let on_origin = crate::cluster::eventually(Duration::from_secs(20), "four segments on the origin", || async {
        let p = parse_media(&get(origin.http, media).await.text());
        (p.segments.len() >= 4).then_some(p)
    })
    .await;
    let first = get(nodes[1].http, media).await;
    assert_eq!(first.status, 200, "{}\n{}", first.text(), nodes[1].log());
    let first = parse_media(&first.text());
    assert!(
        edge_of(&first) >= edge_of(&on_origin),
        "the first playlist a new follower answers ends at {:?}, the origin's already at {:?}",
        edge_of(&first),
        edge_of(&on_origin)
    );

    for edge in &nodes[1..] {
        // The first request on an edge starts it following the origin.
        let r = wait_ok(edge.http, "/live/everywhere/index.m3u8", Duration::from_secs(10)).await;
        assert_eq!(r.status, 200, "edge multivariant: {}\n{}", r.text(), edge.log());
        // The same renditions everywhere (the bandwidths are measured on what each node holds).
        let renditions = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| l.split(',').filter(|a| !a.contains("BANDWIDTH=")).collect::<Vec<_>>().join(","))
                .collect()
        };
        assert_eq!(renditions(&r.text()), renditions(&mv.text()), "the same renditions everywhere");

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
            let (o, e) =
                (on_origin.segments.iter().find(|s| s.0 == *msn), on_edge.segments.iter().find(|s| s.0 == *msn));
            let (Some(o), Some(e)) = (o, e) else { panic!("segment {msn} missing on the edge:\n{text}") };
            assert!((o.1 - e.1).abs() < 1e-6, "segment {msn}: {} s on the origin, {} s on the edge", o.1, e.1);
            let path = format!("/live/everywhere/src/{}", o.2);
            let (a, b) = (get(origin.http, &path).await, get(edge.http, &path).await);
            assert_eq!((a.status, b.status), (200, 200), "{path}");
            assert!(a.body == b.body, "segment {msn} differs between the origin and an edge");
        }
        // Parts carry the origin's names: a player (or a cache in front of the cluster) that
        // moves between nodes mid-segment asks for the same part under the same URI.
        let parts_of = |p: &MediaPlaylist, msn: u64| -> Vec<String> {
            p.parts.iter().filter(|x| x.0 == msn).map(|x| x.3.clone()).collect()
        };
        let msn = numbers[0];
        let (o, e) = (parts_of(&on_origin, msn), parts_of(&on_edge, msn));
        assert!(!o.is_empty() && o == e, "parts of segment {msn}: {o:?} on the origin, {e:?} on the edge");
        for uri in [&o[0], o.last().expect("parts")] {
            let path = format!("/live/everywhere/src/{uri}");
            let (a, b) = (get(origin.http, &path).await, get(edge.http, &path).await);
            assert_eq!((a.status, b.status), (200, 200), "{path}");
            assert!(a.body == b.body, "{uri} differs between the origin and an edge");
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
    let after = crate::cluster::eventually(
        Duration::from_secs(30),
        "segments from the new origin on the viewer's node",
        || async {
            let p = parse_media(&get(viewer, path).await.text());
            p.segments.iter().any(|s| s.0 >= last_before + 3).then_some(p)
        },
    )
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
    // The new origin (which never held the stream) numbers its parts on from where the
    // cluster got to, and the viewer's node names them as it does: no part name is used twice.
    let numbers_of = |p: &MediaPlaylist| -> Vec<u64> {
        p.parts.iter().filter_map(|p| p.3.strip_prefix("part-")?.strip_suffix(".m4s")?.parse().ok()).collect()
    };
    let old_max = numbers_of(&before).into_iter().max().expect("parts before the failover");
    let on_new_origin = parse_media(&get(nodes[1].http, path).await.text());
    let new_parts = numbers_of(&on_new_origin);
    assert!(!new_parts.is_empty() && new_parts.iter().all(|n| *n > old_max), "{new_parts:?} after {old_max}");
    let at_viewer = numbers_of(&after);
    assert!(at_viewer.windows(2).all(|w| w[1] > w[0]), "part numbers only go up: {at_viewer:?}");
    assert!(new_parts.iter().any(|n| at_viewer.contains(n)), "the viewer's node uses the new origin's names");
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_fanout_of_one_the_nodes_form_a_chain_that_goes_round_a_dead_relay() {
    // The origin feeds one node; that node feeds the next (a relay tree of degree one).
    let (mut nodes, _join, admin) = form_with(3, &["--relay-fanout", "1"]).await;
    let publisher = publish_sample_to(nodes[0].srt, "chain", 8);
    assert_eq!(wait_ok(nodes[0].http, "/live/chain/index.m3u8", Duration::from_secs(15)).await.status, 200);
    let path = "/live/chain/src/index.m3u8";
    for n in &nodes[1..] {
        assert_eq!(wait_ok(n.http, path, Duration::from_secs(10)).await.status, 200, "{}", n.log());
    }
    // The admin API shows the chain: (node, the node it receives the stream from).
    let api = nodes[0].api(&admin);
    let placed = crate::cluster::eventually(Duration::from_secs(10), "both followers placed", || async {
        let s = api.get("/api/v1/streams/chain").await.ok()?;
        let ups: Vec<(u64, u64)> = s["nodes"]
            .as_array()?
            .iter()
            .filter_map(|r| Some((r["node"].as_u64()?, r["upstream"].as_u64()?)))
            .collect();
        (ups.len() == 2).then_some(ups)
    })
    .await;
    let relay = placed.iter().find(|(_, up)| *up == 1).unwrap_or_else(|| panic!("the origin feeds one: {placed:?}")).0;
    let last = placed.iter().find(|(_, up)| *up == relay).unwrap_or_else(|| panic!("a chain: {placed:?}")).0;
    let (relay, last) = (index_of(relay), index_of(last));

    // The last node serves the origin's bytes under the origin's names.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_last = parse_media(&get(nodes[last].http, path).await.text());
    let (msn, _, uri) = at_last.segments.last().cloned().expect("segments at the end of the chain");
    let file = format!("/live/chain/src/{uri}");
    let (a, b) = (get(nodes[0].http, &file).await, get(nodes[last].http, &file).await);
    assert_eq!((a.status, b.status), (200, 200), "{file}");
    assert!(a.body == b.body, "segment {msn} differs between the origin and the end of the chain");

    // The relay dies: the last node follows the origin itself from where it was, with no
    // discontinuity (every relay keeps the origin's journal numbers).
    nodes[relay].kill();
    let after = crate::cluster::eventually(Duration::from_secs(20), "new segments past the dead relay", || async {
        let p = parse_media(&get(nodes[last].http, path).await.text());
        p.segments.iter().any(|s| s.0 >= msn + 3).then_some(p)
    })
    .await;
    let numbers: Vec<u64> = after.segments.iter().map(|s| s.0).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "numbering carries on: {numbers:?}");
    assert_eq!(after.discontinuities, at_last.discontinuities, "no discontinuity: {after:?}\n{}", nodes[last].log());
    let s = api.get("/api/v1/streams/chain").await.expect("stream record");
    let row = s["nodes"].as_array().expect("nodes").iter().find(|r| r["node"] == last as u64 + 1).cloned();
    assert_eq!(row.as_ref().map(|r| r["upstream"].clone()), Some(1.into()), "now fed by the origin: {s}");
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_from_before_a_node_followed_the_stream_is_pulled_through_once() {
    // The origin keeps only 2 segments for followers: a node that starts following later
    // gets the live edge, and older segments come from the origin on request.
    let (nodes, _join, _admin) = form_with(3, &["--relay-window-segments", "2"]).await;
    let origin = &nodes[0];
    let publisher = publish_sample_to(origin.srt, "late", 3);
    assert_eq!(wait_ok(origin.http, "/live/late/index.m3u8", Duration::from_secs(15)).await.status, 200);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let on_origin = parse_media(&get(origin.http, "/live/late/src/index.m3u8").await.text());
    let first = on_origin.segments.first().expect("segments on the origin").clone();

    let edge = &nodes[1];
    assert_eq!(wait_ok(edge.http, "/live/late/src/index.m3u8", Duration::from_secs(10)).await.status, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let on_edge = parse_media(&get(edge.http, "/live/late/src/index.m3u8").await.text());
    assert!(
        on_edge.segments.first().is_some_and(|s| s.0 > first.0),
        "the edge joined at the live edge, after segment {}: {on_edge:?}",
        first.0
    );
    let path = format!("/live/late/src/{}", first.2);
    let want = get(origin.http, &path).await;
    // Several viewers ask at once; the edge fetches it once and answers them all.
    let asks: Vec<_> = (0..4).map(|_| get(edge.http, &path)).collect();
    for got in futures::future::join_all(asks).await {
        assert_eq!(got.status, 200, "{path} on the edge: {}", got.text());
        assert!(got.body == want.body, "pulled-through bytes differ from the origin's");
    }
    // A segment that does not exist yet is not sent around the cluster.
    let future = format!("/live/late/src/seg-{}.m4s", on_origin.segments.last().unwrap().0 + 1000);
    assert_eq!(get(edge.http, &future).await.status, 404);
    let metrics = get(edge.http, "/metrics").await.text();
    let fetched: f64 = metrics
        .lines()
        .find(|l| l.starts_with("tessera_relay_pulls_total{result=\"fetched\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        (1.0..=2.0).contains(&fetched),
        "one fetch for concurrent asks (two if the first answered before the rest asked): {fetched}\n{metrics}"
    );
    publisher.abort();
}

/// Three nodes; the first advertises a proxy as its cluster address, so whatever another
/// node opens towards it (its subscription, forwarded writes) crosses the proxy.
async fn form_behind_link(name: &str) -> (Vec<Proc>, FaultyLink) {
    form_behind_link_with(name, &[]).await
}

/// [`form_behind_link`] with `extra` flags for every node.
async fn form_behind_link_with(name: &str, extra: &[&str]) -> (Vec<Proc>, FaultyLink) {
    let mut nodes: Vec<Proc> = (0..3).map(|i| Proc::new(&format!("{name}{i}"))).collect();
    let link = FaultyLink::start(nodes[0].cluster).await;
    let proxy = link.addr.to_string();
    let (join, admin) = init_with(&nodes[0], &["--cluster-advertise", &proxy]);
    let mut origin_flags = vec!["--cluster-advertise", proxy.as_str()];
    origin_flags.extend_from_slice(extra);
    nodes[0].start(&origin_flags);
    let (first, rest) = nodes.split_at_mut(1);
    for p in rest.iter_mut() {
        p.join(&first[0], &join, extra);
    }
    crate::cluster::eventually(Duration::from_secs(30), "three voters", || async {
        let (_, voters, _) = membership(&nodes[2], &admin).await?;
        (voters.len() == 3).then_some(())
    })
    .await;
    (nodes, link)
}

/// The newest part sequence number a node lists for the stream's passthrough.
async fn newest_part(node: &Proc, stream: &str) -> u64 {
    let p = parse_media(&get(node.http, &format!("/live/{stream}/src/index.m3u8")).await.text());
    p.parts.last().map_or(0, |x| x.3.trim_start_matches("part-").trim_end_matches(".m4s").parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_killed_node_touches_no_other_node() {
    let (mut nodes, link) = form_behind_link("slow").await;
    let publisher = publish_sample_to(nodes[0].srt, "slow", 4);
    assert_eq!(wait_ok(nodes[0].http, "/live/slow/index.m3u8", Duration::from_secs(15)).await.status, 200);
    for edge in &nodes[1..] {
        assert_eq!(wait_ok(edge.http, "/live/slow/src/index.m3u8", Duration::from_secs(10)).await.status, 200);
    }
    // One link turns bad: a datagram in five lost, the rest 80 ms late.
    link.slow(nodes[1].cluster.port(), 5, Duration::from_millis(80));
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (at_origin, healthy) = (newest_part(&nodes[0], "slow").await, newest_part(&nodes[2], "slow").await);
        assert!(at_origin <= healthy + 3, "the healthy node lags while another link is bad: {healthy} vs {at_origin}");
    }
    link.heal();
    // The bad node is killed: the other keeps pace, without a discontinuity.
    nodes[1].kill();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (at_origin, healthy) = (newest_part(&nodes[0], "slow").await, newest_part(&nodes[2], "slow").await);
        assert!(at_origin <= healthy + 3, "the other node lags after one was killed: {healthy} vs {at_origin}");
    }
    let p = parse_media(&get(nodes[2].http, "/live/slow/src/index.m3u8").await.text());
    assert_eq!(p.discontinuities, 0, "{p:?}");
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_origin_for_a_while_converges_byte_for_byte() {
    let (nodes, link) = form_behind_link("cut").await;
    let (origin, edge) = (&nodes[0], &nodes[1]);
    let publisher = publish_sample_to(origin.srt, "cut", 4);
    assert_eq!(wait_ok(origin.http, "/live/cut/index.m3u8", Duration::from_secs(15)).await.status, 200);
    assert_eq!(wait_ok(edge.http, "/live/cut/src/index.m3u8", Duration::from_secs(10)).await.status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Cut the edge off from the origin for 5 s (the origin keeps 8 segments for it), then heal.
    link.cut(edge.cluster.port());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let behind = parse_media(&get(edge.http, "/live/cut/src/index.m3u8").await.text());
    let ahead = parse_media(&get(origin.http, "/live/cut/src/index.m3u8").await.text());
    assert!(
        ahead.segments.last().map(|s| s.0) > behind.segments.last().map(|s| s.0),
        "the origin went on while the edge was cut off"
    );
    link.heal();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let text = get(edge.http, "/live/cut/src/index.m3u8").await.text();
    let on_edge = parse_media(&text);
    let on_origin = parse_media(&get(origin.http, "/live/cut/src/index.m3u8").await.text());
    assert!(!text.contains("#EXT-X-GAP") && on_edge.discontinuities == 0, "nothing missed:\n{text}");
    let numbers: Vec<u64> = on_edge.segments.iter().map(|s| s.0).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    let mut compared = 0;
    for (msn, _, uri) in &on_edge.segments {
        if on_origin.segments.iter().any(|s| s.0 == *msn) {
            let path = format!("/live/cut/src/{uri}");
            let (a, b) = (get(origin.http, &path).await, get(edge.http, &path).await);
            assert!(a.status == 200 && a.body == b.body, "segment {msn} differs after the cut healed");
            compared += 1;
        }
    }
    assert!(compared >= 4, "segments compared: {compared}");
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_for_longer_than_the_window_starts_again_at_the_live_edge() {
    // The origin keeps 2 segments (4 s) for its followers; the cut lasts 12 s, past QUIC's
    // idle timeout, so the follower's position is gone when it comes back.
    let (nodes, link) = form_behind_link_with("lag", &["--relay-window-segments", "2"]).await;
    let (origin, edge) = (&nodes[0], &nodes[1]);
    let publisher = publish_sample_to(origin.srt, "lag", 6);
    assert_eq!(wait_ok(origin.http, "/live/lag/index.m3u8", Duration::from_secs(15)).await.status, 200);
    assert_eq!(wait_ok(edge.http, "/live/lag/src/index.m3u8", Duration::from_secs(10)).await.status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    link.cut(edge.cluster.port());
    tokio::time::sleep(Duration::from_secs(12)).await;
    link.heal();
    // Back at the live edge: the same newest segment as the origin, or the one before.
    let newest_segment = |p: &Proc| {
        let http = p.http;
        async move { parse_media(&get(http, "/live/lag/src/index.m3u8").await.text()).segments.last().map_or(0, |s| s.0) }
    };
    crate::cluster::eventually(Duration::from_secs(15), "the follower back at the live edge", || async {
        (newest_segment(origin).await <= newest_segment(edge).await + 1).then_some(())
    })
    .await;
    let text = get(edge.http, "/live/lag/src/index.m3u8").await.text();
    let on_edge = parse_media(&text);
    assert!(on_edge.discontinuities >= 1, "the jump to the live edge is marked:\n{text}");
    let newest = on_edge.segments.last().expect("segments after the jump");
    let path = format!("/live/lag/src/{}", newest.2);
    assert!(get(origin.http, &path).await.body == get(edge.http, &path).await.body, "{path} differs");
    let metrics = get(origin.http, "/metrics").await.text();
    assert!(
        metrics.lines().any(|l| l.starts_with("tessera_relay_fresh_starts_total") && !l.ends_with(" 0")),
        "the origin counts the fresh start:\n{metrics}"
    );
    publisher.abort();
}
