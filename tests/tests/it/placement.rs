//! Ladders across the cluster, as separate `tessera` processes: a stream published to a
//! node that makes no ladders gets its ladder made on another; when that node is killed,
//! drained or cut off, the ladder moves (a new placement epoch) and every rung carries on
//! under the same numbers, aligned with the passthrough, played from any node.

use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_packager::check::MediaPlaylist;

use crate::cluster::{eventually, form_each, index_of, tessera_cli, Proc};
use crate::common::{get, transcoding, wait_ok};
use crate::ladder::{assert_aligned, ffmpeg_feed, playlist, probe, H264_B_FRAMES};
use crate::link::FaultyLink;

const LADDER: &str = "source,240p:300,144p:150";
const RUNGS: [&str; 2] = ["240p", "144p"];

/// Node 1 makes no ladders; nodes 2 and 3 give two cores each.
fn capacities(i: usize) -> Vec<String> {
    let cores = if i == 0 { "0" } else { "2" };
    ["--transcode-capacity", cores, "--ladder", LADDER].map(String::from).to_vec()
}

/// The stream's placement as the admin API shows it: (node, epoch, moves).
async fn placement(p: &Proc, admin: &str, stream: &str) -> Option<(u64, u64, u64)> {
    let s = p.api(admin).get(&format!("/api/v1/streams/{stream}")).await.ok()?;
    let pl = s.get("placement").filter(|v| !v.is_null())?;
    Some((pl["node"].as_u64()?, pl["epoch"].as_u64()?, pl["moves"].as_u64()?))
}

/// What `GET /api/v1/nodes` says of node `id`.
async fn node_view(p: &Proc, admin: &str, id: u64) -> Option<Value> {
    let nodes = p.api(admin).get("/api/v1/nodes").await.ok()?;
    nodes["data"].as_array()?.iter().find(|n| n["id"].as_u64() == Some(id)).cloned()
}

/// The newest media a rung lists: its newest part, or its newest complete segment that is
/// not a gap, as (segment, part) with a whole segment counting as its last part.
fn newest_media(p: &MediaPlaylist) -> (u64, usize) {
    let done = p.segments.iter().filter(|s| !s.gap).map(|s| (s.msn, usize::MAX)).max().unwrap_or((0, 0));
    p.parts.iter().filter(|x| x.msn >= done.0).map(|x| (x.msn, x.index)).max().map_or(done, |part| part.max(done))
}

/// Each rung's newest media on `viewer`, in the order of [`RUNGS`].
async fn newest_of_rungs(viewer: &Proc, stream: &str) -> Vec<(u64, usize)> {
    let mut newest = Vec::new();
    for r in RUNGS {
        newest.push(newest_media(&playlist(viewer.http, stream, r).await));
    }
    newest
}

/// Waits until every rung on `viewer` lists media newer than `after` (one entry per rung:
/// see [`newest_media`]); how long it took.
async fn rungs_resume(viewer: &Proc, stream: &str, after: &[(u64, usize)], within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let mut all = true;
        for (r, after) in RUNGS.iter().zip(after) {
            let text = get(viewer.http, &format!("/live/{stream}/{r}/index.m3u8")).await.text();
            let p = tessera_packager::check::parse_media(&text).unwrap_or_default();
            let newer = p.parts.iter().any(|x| (x.msn, x.index) > *after)
                || p.segments.iter().any(|s| !s.gap && (s.msn, usize::MAX) > *after);
            all &= newer;
        }
        if all {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "the rungs did not resume within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Watches every rung on `viewer` for `within`: the longest any of them went without new
/// media.
async fn longest_pause(viewer: std::net::SocketAddr, stream: String, within: Duration) -> Duration {
    let start = Instant::now();
    let mut seen = vec![((0, 0), Instant::now()); RUNGS.len()];
    let mut longest = Duration::ZERO;
    while start.elapsed() < within {
        for (i, r) in RUNGS.iter().enumerate() {
            let text = get(viewer, &format!("/live/{stream}/{r}/index.m3u8")).await.text();
            let newest = newest_media(&tessera_packager::check::parse_media(&text).unwrap_or_default());
            if newest > seen[i].0 {
                seen[i] = (newest, Instant::now());
            }
            longest = longest.max(seen[i].1.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    longest
}

/// Every rung lists segments up to the passthrough's, numbered as it is, gaps only after
/// `since`, and the renditions start each common segment at the same time.
async fn assert_one_ladder(viewer: &Proc, stream: &str, since: u64) {
    let src = playlist(viewer.http, stream, "src").await;
    assert!(src.segments.iter().all(|s| !s.gap && !s.discontinuity), "the passthrough never noticed: {src:?}");
    for r in RUNGS {
        let rung = playlist(viewer.http, stream, r).await;
        // Segments before the ladder's first worker was placed are gaps too.
        let first_media = rung.segments.iter().find(|s| !s.gap).map_or(u64::MAX, |s| s.msn);
        let gaps: Vec<u64> = rung.segments.iter().filter(|s| s.gap && s.msn > first_media).map(|s| s.msn).collect();
        assert!(gaps.iter().all(|g| *g >= since), "{r}: gaps only from the move on: {gaps:?}");
        assert_eq!(
            rung.segments.iter().filter(|s| s.discontinuity).count(),
            0,
            "{r} carries on without a discontinuity"
        );
        let (s, l) = (src.segments.last().unwrap().msn, rung.segments.last().unwrap().msn);
        assert!(s <= l + 1, "{r} keeps up with the source: {l} vs {s}");
        let msns: Vec<u64> = rung.segments.iter().map(|s| s.msn).collect();
        assert!(msns.windows(2).all(|w| w[1] == w[0] + 1), "{r} numbers every segment: {msns:?}");
    }
    let mut all = vec!["src"];
    all.extend(RUNGS);
    assert!(assert_aligned(viewer.http, stream, &all).await >= 2, "renditions share segments, aligned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_is_made_where_there_is_room_and_moves_when_that_node_is_killed() {
    let _one = transcoding().await;
    let (mut nodes, _join, admin) = form_each(3, capacities).await;
    let mut ffmpeg = ffmpeg_feed(nodes[0].srt, "far", "640x360", H264_B_FRAMES, 90);
    for r in RUNGS {
        assert_eq!(
            wait_ok(nodes[2].http, &format!("/live/far/{r}/index.m3u8"), Duration::from_secs(30)).await.status,
            200
        );
    }
    let (placed, epoch, moves) =
        eventually(Duration::from_secs(10), "a placement", || placement(&nodes[2], &admin, "far")).await;
    assert!(placed == 2 || placed == 3, "a node with capacity makes the ladder, not {placed}");
    assert_eq!(moves, 0);
    let view = node_view(&nodes[2], &admin, placed).await.expect("the placed node");
    let ladders = &view["transcode"]["ladders"];
    assert!(ladders.as_array().is_some_and(|l| l.iter().any(|l| l["stream"] == "far" && l["owner"] == 1)), "{view}");
    let origin = node_view(&nodes[2], &admin, 1).await.unwrap();
    assert_eq!(origin["transcode"]["capacity"], 0.0);
    // Every rung plays from the third node: it decodes, at its size.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let out = probe(nodes[2].http, "far", "144p").await;
    assert!(out.contains("codec_name=h264") && out.contains("height=144"), "{out}");
    let status = tessera_cli("cluster", &["status"], &nodes[1], &admin);
    assert!(status.contains("far@"), "cluster status lists the ladder:\n{status}");

    // kill -9 the node that makes the ladder.
    let viewer = if placed == 3 { 1 } else { 2 };
    nodes[index_of(placed)].kill();
    let killed = Instant::now();
    // Whatever the killed worker had sent is in by now; the newest media from here on is
    // the new worker's.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let at_kill = newest_of_rungs(&nodes[viewer], "far").await;
    let before = at_kill.iter().map(|m| m.0).min().unwrap();
    rungs_resume(&nodes[viewer], "far", &at_kill, Duration::from_secs(20)).await;
    eprintln!("ladder resumed {} ms after its node was killed", killed.elapsed().as_millis());
    let (now, new_epoch, moves) = placement(&nodes[viewer], &admin, "far").await.expect("placed again");
    assert!(now != placed && now != 1, "moved to the remaining node with capacity, not {now}");
    assert!(new_epoch > epoch && moves >= 1, "a new epoch: {epoch} then {new_epoch}, moves {moves}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_one_ladder(&nodes[viewer], "far", before).await;
    let metrics = get(nodes[0].http, "/metrics").await.text();
    let moved = metrics.lines().find_map(|l| l.strip_prefix("tessera_ladder_moves_total ")?.parse::<f64>().ok());
    assert!(moved.is_some_and(|n| n >= 1.0), "the move is counted: {moved:?}");
    assert!(metrics.contains("tessera_remote_round_trip_seconds"), "the link's round trip is measured");
    ffmpeg.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_hands_its_ladder_on_holds_nothing_and_leaves() {
    let _one = transcoding().await;
    let (mut nodes, _join, admin) = form_each(3, capacities).await;
    let mut ffmpeg = ffmpeg_feed(nodes[0].srt, "drained", "640x360", H264_B_FRAMES, 90);
    for r in RUNGS {
        assert_eq!(
            wait_ok(nodes[0].http, &format!("/live/drained/{r}/index.m3u8"), Duration::from_secs(30)).await.status,
            200
        );
    }
    let (placed, epoch, _) =
        eventually(Duration::from_secs(10), "a placement", || placement(&nodes[0], &admin, "drained")).await;
    let other = if placed == 2 { 3 } else { 2 };
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = newest_media(&playlist(nodes[0].http, "drained", "240p").await).0;

    // Viewers of the node that stays watch the rungs while the ladder moves.
    let watching = tokio::spawn(longest_pause(nodes[index_of(other)].http, "drained".into(), Duration::from_secs(12)));
    // As a pod's preStop hook does it: the node is told to drain itself.
    let drain = || tessera_cli("cluster", &["drain", "self", "--wait", "30"], &nodes[index_of(placed)], &admin);
    let out = tokio::task::block_in_place(drain);
    assert!(out.contains("holds nothing"), "{out}");
    let pause = watching.await.unwrap();
    eprintln!("longest a rung went without new media while its ladder moved: {} ms", pause.as_millis());
    let (now, new_epoch, moves) = placement(&nodes[0], &admin, "drained").await.expect("placed again");
    assert_eq!(now, other, "the ladder moved to the node that is not draining");
    assert!(new_epoch > epoch && moves >= 1);
    rungs_resume(&nodes[index_of(other)], "drained", &[(before + 1, usize::MAX); 2], Duration::from_secs(20)).await;
    // Made before broken: the successor took over at a boundary, so no rung misses anything.
    assert_one_ladder(&nodes[index_of(other)], "drained", u64::MAX).await;
    let view = node_view(&nodes[0], &admin, placed).await.unwrap();
    assert_eq!(view["draining"], true);
    assert_eq!(view["holds"]["nothing"], true, "{view}");
    // A draining node takes no publisher.
    let mut refused = ffmpeg_feed(nodes[index_of(placed)].srt, "elsewhere", "640x360", H264_B_FRAMES, 10);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(get(nodes[index_of(placed)].http, "/live/elsewhere/index.m3u8").await.status, 404);
    refused.kill().await.ok();

    // It leaves; the stream plays on from the others, one ladder, aligned.
    let leaving = &nodes[index_of(placed)];
    leaving.api(&admin).call(hyper::Method::POST, "/api/v1/cluster/leave", None).await.expect("leave");
    nodes[index_of(placed)].kill();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_one_ladder(&nodes[index_of(other)], "drained", before).await;
    ffmpeg.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_node_cut_off_gets_nothing_into_the_stream_once_its_placement_moved() {
    let _one = transcoding().await;
    // Every node sits behind a link the test can cut, and advertises it: node 1 (the
    // catalog's first leader) and node 3 make ladders; node 2, the origin, makes none and
    // prefers node 1.
    let mut nodes: Vec<Proc> = (0..3).map(|i| Proc::new(&format!("cutladder{i}"))).collect();
    let mut links = Vec::new();
    for n in &nodes {
        links.push(FaultyLink::start(n.cluster).await);
    }
    let proxies: Vec<String> = links.iter().map(|l| l.addr.to_string()).collect();
    let (join, admin) = crate::cluster::init_with(&nodes[0], &["--cluster-advertise", &proxies[0]]);
    nodes[0].start(&["--cluster-advertise", &proxies[0], "--transcode-capacity", "2", "--ladder", LADDER]);
    eventually(Duration::from_secs(30), "the first node to lead", || async {
        crate::cluster::membership(&nodes[0], &admin).await.map(|_| ())
    })
    .await;
    for (i, cores) in [(1, "0"), (2, "2")] {
        let args = ["--join", &proxies[0], "--token", &join, "--cluster-advertise", &proxies[i]];
        nodes[i].start(&[&args[..], &["--transcode-capacity", cores, "--ladder", LADDER]].concat());
        eventually(Duration::from_secs(30), "the node to join as a voter", || async {
            let (_, voters, _) = crate::cluster::membership(&nodes[i], &admin).await?;
            (voters.len() == i + 1).then_some(())
        })
        .await;
    }
    let rule = serde_json::json!({ "placement": { "prefer": [1] } });
    let created = nodes[1]
        .api(&admin)
        .call(hyper::Method::POST, "/api/v1/streams", Some(&serde_json::json!({ "name": "cut" })))
        .await;
    assert!(created.is_ok() || format!("{created:?}").contains("409"), "create: {created:?}");
    nodes[1].api(&admin).call(hyper::Method::PUT, "/api/v1/streams/cut", Some(&rule)).await.expect("prefer node 1");
    let mut ffmpeg = ffmpeg_feed(nodes[1].srt, "cut", "640x360", H264_B_FRAMES, 90);
    assert_eq!(wait_ok(nodes[2].http, "/live/cut/240p/index.m3u8", Duration::from_secs(30)).await.status, 200);
    let (placed, epoch, _) =
        eventually(Duration::from_secs(10), "a placement", || placement(&nodes[2], &admin, "cut")).await;
    assert_eq!(placed, 1, "the preferred node makes the ladder");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = newest_media(&playlist(nodes[2].http, "cut", "240p").await).0;

    // Node 1 is cut off from both others, both ways: the ladder moves to node 3.
    let cut_off = nodes[0].cluster.port();
    for i in [1, 2] {
        links[0].cut(nodes[i].cluster.port());
        links[i].cut(cut_off);
    }
    rungs_resume(&nodes[2], "cut", &[(before + 1, usize::MAX); 2], Duration::from_secs(20)).await;
    let (now, new_epoch, _) = placement(&nodes[2], &admin, "cut").await.expect("placed again");
    assert_eq!(now, 3);
    assert!(new_epoch > epoch);
    // Whatever the cut-off node's worker made meanwhile never reached the stream: it is
    // fenced, then stopped, and after the link heals every rung segment is the same on
    // every node and aligned with the passthrough.
    tokio::time::sleep(Duration::from_secs(3)).await;
    links.iter().for_each(FaultyLink::heal);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let view = eventually(Duration::from_secs(10), "node 1 to answer again", || node_view(&nodes[2], &admin, 1)).await;
    assert_eq!(view["transcode"]["ladders"].as_array().map(Vec::len), Some(0), "the fenced node makes nothing: {view}");
    let log = nodes[0].log();
    assert!(
        log.contains("owner of a hosted actor gone") || log.contains("stopping a ladder's worker"),
        "the cut-off node stopped its worker:\n{log}"
    );
    for r in RUNGS {
        let listed = playlist(nodes[1].http, "cut", r).await;
        for s in listed.segments.iter().filter(|s| !s.gap) {
            let at_origin = get(nodes[1].http, &format!("/live/cut/{r}/{}", s.uri)).await;
            let elsewhere = get(nodes[2].http, &format!("/live/cut/{r}/{}", s.uri)).await;
            if at_origin.status == 200 && elsewhere.status == 200 {
                assert!(at_origin.body == elsewhere.body, "{r} segment {} differs between nodes", s.msn);
            }
        }
    }
    assert_one_ladder(&nodes[1], "cut", before).await;
    ffmpeg.kill().await.ok();
}
