//! The relay driver between two catalog members in one process, over real QUIC on
//! loopback: no HTTP, no listeners, no pipelines. The origin publishes through its
//! `RelaySink`; the other node follows, catches up, goes on live, and pulls through a
//! segment from before it followed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_cluster::identity::JoinToken;
use tessera_cluster::{ClusterAddrs, ClusterService};
use tessera_packager::{MediaSink, PlaylistConfig, Published};
use tessera_raft::{Command, RaftTimeouts};

use super::{FeedRegistry, Followers, MediaFile, OriginTerm, RelaySink};
use crate::store::{SegmentStore, StoreConfig, SOURCE_RENDITION as SRC};
use crate::testing::aac_track;

struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn timeouts() -> RaftTimeouts {
    RaftTimeouts {
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(200),
        election_max: Duration::from_millis(400),
        snapshot_every: 5000,
    }
}

fn addrs() -> ClusterAddrs {
    ClusterAddrs {
        bind: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        http: "127.0.0.1:1".into(),
        host: Default::default(),
    }
}

/// A store whose live window is `window` segments (and as many again kept for stragglers).
fn store(window: usize) -> Arc<SegmentStore> {
    SegmentStore::new(StoreConfig {
        playlist: PlaylistConfig { segment_target: 2.0, window_segments: window, retained_segments: window },
        reconnect_grace: Duration::from_secs(5),
        ended_retention: Duration::from_secs(60),
        max_publishers: 4,
    })
}

/// A node without its HTTP and ingest: a member, its store, its journals, its followers.
struct Member {
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    feeds: Arc<FeedRegistry>,
    followers: Arc<Followers>,
}

impl Member {
    fn new(cluster: ClusterService, window: usize) -> Member {
        let store = store(window);
        let feeds = FeedRegistry::new(8);
        feeds.attach(store.clone());
        super::serve(&cluster, feeds.clone());
        let followers = Followers::new(store.clone(), cluster.clone(), feeds.clone(), 3);
        Member { cluster, store, feeds, followers }
    }
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn part(sink: &RelaySink, session: u64, segment: u64, index: u64) -> Bytes {
    let data = Bytes::from(format!("part {segment}.{index} of session {session}"));
    sink.publish(
        "cam",
        session,
        SRC,
        Published::Part {
            segment,
            data: data.clone(),
            duration: 0.5,
            independent: index == 0,
            program_time_ms: 1_000_000 + (segment * 4 + index) as i64 * 500,
            part_target: 0.5,
            completed_at: Instant::now(),
            last_frame_arrived: None,
        },
    );
    if index == 3 {
        sink.publish("cam", session, SRC, Published::SegmentEnd { segment });
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_up_goes_on_live_and_pulls_through_what_it_missed() {
    let dir = std::env::temp_dir().join(format!("tessera-live-relay-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let (one, join, _) = ClusterService::init(&dir.join("1"), &addrs(), &timeouts()).await.unwrap();
    let token = JoinToken::parse(&join.to_string()).unwrap();
    let member = one.advertise.parse().unwrap();
    let two = ClusterService::join(&dir.join("2"), &addrs(), member, &token, false, &timeouts()).await.unwrap();
    // The follower keeps a shorter window: it will miss what the origin still has.
    let (origin, follower) = (Member::new(one, 3), Member::new(two, 1));

    // The origin holds the stream's lease and publishes three segments.
    origin
        .cluster
        .propose(Command::PutStream { name: "cam".into(), ladder: None, token_sha256: None, create_only: true })
        .await
        .unwrap();
    origin.cluster.propose(Command::AcquireOrigin { stream: "cam".into(), node: 1 }).await.unwrap();
    let claim = origin.store.claim("cam", false).unwrap();
    let sink = RelaySink::new(origin.store.clone(), origin.feeds.clone(), Arc::new(OriginTerm::unbounded()));
    let init = Bytes::from_static(b"the init segment");
    sink.publish("cam", claim.session, SRC, Published::Init { tracks: vec![aac_track()], data: init.clone() });
    let mut parts = Vec::new();
    for segment in 0..3 {
        for index in 0..4 {
            parts.push(part(&sink, claim.session, segment, index));
        }
    }

    // The follower catches up with the journal (it keeps the last 8 segments: all of them).
    eventually("the follower to know the origin", || async {
        follower.cluster.catalog.read_local(|c| c.streams.get("cam")?.origin).value
    })
    .await;
    follower.followers.ensure("cam").await;
    assert!(follower.followers.caught_up("cam"), "caught up with the origin's live edge");
    for msn in 1..3 {
        let there = origin.store.segment("cam", SRC, msn).unwrap();
        let here = follower.store.segment("cam", SRC, msn).unwrap();
        assert_eq!(here.to_bytes(), there.to_bytes(), "segment {msn}, byte for byte");
    }
    assert_eq!(follower.store.init("cam", SRC, 0).unwrap(), init);

    // Then live: each new part arrives under the origin's number.
    let newest = part(&sink, claim.session, 3, 0);
    let (data, msn, _) = eventually("the new part on the follower", || async {
        follower.store.part("cam", SRC, 12, Duration::ZERO).await.ok()
    })
    .await;
    assert_eq!((data, msn), (newest, 3));
    let held = follower.followers.held("cam").unwrap();
    assert!(held.following && held.upstream == Some(1), "{held:?}");

    // A segment the follower no longer holds is pulled through from the origin, once.
    for index in 1..4 {
        part(&sink, claim.session, 3, index);
    }
    for segment in 4..8 {
        for index in 0..4 {
            part(&sink, claim.session, segment, index);
        }
    }
    eventually("segment 7 on the follower", || async { follower.store.segment("cam", SRC, 7).ok() }).await;
    assert!(follower.store.segment("cam", SRC, 4).is_err(), "out of the follower's retention");
    assert!(origin.store.segment("cam", SRC, 4).is_ok(), "in the origin's");
    let pulled = follower.followers.pull("cam", SRC, MediaFile::Segment(4)).await.expect("pulled through");
    assert_eq!(pulled, origin.store.segment("cam", SRC, 4).unwrap().to_bytes());
    assert_eq!(follower.followers.pull("cam", SRC, MediaFile::Segment(0)).await, None, "gone everywhere");

    drop(claim);
    follower.cluster.shutdown().await;
    origin.cluster.shutdown().await;
}

/// A takeover's sink holds what its pipeline makes until the old origin's grace is out,
/// then publishes it all in order; once its term is over it publishes nothing.
#[test]
fn a_sink_publishes_only_within_its_origin_term() {
    let store = store(3);
    let feeds = FeedRegistry::new(3);
    let claim = store.claim("cam", false).unwrap();
    let t0 = Instant::now();
    let term = Arc::new(OriginTerm::new(t0, t0, true));
    let sink = RelaySink::new(store.clone(), feeds.clone(), term.clone());
    let init = Published::Init { tracks: vec![crate::testing::aac_track()], data: Bytes::from_static(b"init") };
    sink.publish_at("cam", claim.session, SRC, init, t0);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let part_at = |segment: u64, index: u64, now: Instant| {
        let data = Bytes::from(format!("part {segment}.{index}"));
        let event = Published::Part {
            segment,
            data,
            duration: 0.5,
            independent: index == 0,
            program_time_ms: 1_000_000 + (segment * 4 + index) as i64 * 500,
            part_target: 0.5,
            completed_at: now,
            last_frame_arrived: None,
        };
        sink.publish_at("cam", claim.session, SRC, event, now);
    };
    for (i, ms) in [500, 1_000, 1_500].into_iter().enumerate() {
        part_at(0, i as u64, at(ms));
        term.confirmed(at(ms));
    }
    assert!(store.held("cam").is_none(), "nothing is published while the old origin may still publish");
    term.confirmed(at(3_000));
    part_at(0, 3, at(3_900));
    let held = store.held("cam").expect("published once the term opened");
    assert_eq!(held.last_part, Some(3), "the held parts went out first, in order, then the new one");
    // No confirmation for a grace: over, and nothing more goes out.
    part_at(1, 0, at(6_000));
    assert_eq!(store.held("cam").unwrap().last_part, Some(3));
}
