//! The live relay driver under the simulator: three whole members over their real QUIC
//! transport, member 1 the stream's origin, 2 and 3 following it through the relay tree
//! (fan-out 1: the origin feeds one node, which feeds the other). The middle of the tree is
//! cut off for a while, then a link of the origin's; datagrams are lost throughout. Every
//! follower ends holding the origin's segments byte for byte, and one seed replays the same
//! history: every follower's position and upstream, every quarter of a virtual second.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tessera_cluster::ClusterService;
use tessera_ingest::media::{AacConfig, CodecConfig, TrackInfo};
use tessera_live::relay::{self, FeedRegistry, Followers, OriginTerm, RelaySink};
use tessera_live::store::{SegmentStore, StoreConfig, SOURCE_RENDITION as SRC};
use tessera_packager::{MediaSink, PlaylistConfig, Published};
use tessera_raft::Command;

use crate::members::addr;
use crate::udp::UdpNet;

/// Segments the origin publishes, four parts of half a second each.
const SEGMENTS: u64 = 40;
/// Segments every store keeps.
const WINDOW: usize = 6;

/// A member's media side: its store, its journals, its followers.
struct MediaMember {
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    feeds: Arc<FeedRegistry>,
    followers: Arc<Followers>,
}

impl MediaMember {
    fn new(cluster: ClusterService) -> MediaMember {
        let store = SegmentStore::new(StoreConfig {
            playlist: PlaylistConfig { segment_target: 2.0, window_segments: WINDOW, retained_segments: WINDOW },
            reconnect_grace: Duration::from_secs(5),
            ended_retention: Duration::from_secs(60),
            max_publishers: 4,
        });
        let feeds = FeedRegistry::new(8);
        feeds.attach(store.clone());
        relay::serve(&cluster, feeds.clone());
        let followers = Followers::new(store.clone(), cluster.clone(), feeds.clone(), 1);
        MediaMember { cluster, store, feeds, followers }
    }
}

fn aac_track() -> TrackInfo {
    TrackInfo {
        id: 257,
        codec: CodecConfig::Aac(AacConfig {
            object_type: 2,
            sample_rate: 48_000,
            channels: 2,
            asc: Bytes::from_static(&[0x11, 0x90]),
        }),
    }
}

fn part(segment: u64, index: u64) -> Published {
    Published::Part {
        segment,
        data: Bytes::from(format!("part {segment}.{index}").repeat(40)),
        duration: 0.5,
        independent: index == 0,
        program_time_ms: crate::sim::now_ms(),
        part_target: 0.5,
        completed_at: tokio::time::Instant::now().into_std(),
        last_frame_arrived: None,
    }
}

/// Every quarter second: each follower's newest segment and part, and where it follows from.
fn history(seed: u64, dir: &Path) -> Vec<String> {
    crate::sim::run(seed, async {
        let net = UdpNet::new(seed, Duration::from_millis(2));
        net.set_loss(10_000);
        let members: Vec<MediaMember> =
            crate::members::start(3, seed, dir, &net).await.into_iter().map(MediaMember::new).collect();
        let origin = &members[0];
        let stream = Command::PutStream { name: "cam".into(), ladder: None, token_sha256: None, create_only: true };
        origin.cluster.propose(stream).await.expect("stream created");
        origin.cluster.propose(Command::AcquireOrigin { stream: "cam".into(), node: 1 }).await.expect("origin lease");
        let claim = origin.store.claim("cam", false).expect("claimed");
        let sink = RelaySink::new(origin.store.clone(), origin.feeds.clone(), Arc::new(OriginTerm::unbounded()));
        sink.publish(
            "cam",
            claim.session,
            SRC,
            Published::Init { tracks: vec![aac_track()], data: Bytes::from_static(b"init") },
        );

        let mut trace = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        for t in 0..(SEGMENTS * 8 + 40) {
            tick.tick().await;
            // Two ticks a part, four parts a segment; then ten seconds to settle.
            if t % 2 == 0 && t / 8 < SEGMENTS {
                let (segment, index) = (t / 8, t / 2 % 4);
                sink.publish("cam", claim.session, SRC, part(segment, index));
                if index == 3 {
                    sink.publish("cam", claim.session, SRC, Published::SegmentEnd { segment });
                }
            }
            match t {
                // The middle of the tree (whichever follower the origin feeds) cut off.
                60 => {
                    let middle =
                        (2..=3).find(|i| members[i - 1].followers.held("cam").is_some_and(|h| h.upstream == Some(1)));
                    let middle = middle.unwrap_or(2);
                    for other in (1..=3).filter(|o| *o != middle) {
                        net.partition(addr(middle).ip(), addr(other).ip());
                    }
                }
                120 => net.heal(),
                // One way: the origin's datagrams to member 3 lost.
                180 => net.cut(addr(1).ip(), addr(3).ip()),
                220 => net.heal(),
                _ => {}
            }
            let mut states = Vec::new();
            for (i, m) in members.iter().enumerate().skip(1) {
                // A viewer asks for the stream at every follower all along.
                if t % 4 == 0 {
                    m.followers.ensure("cam").await;
                }
                let held = m.followers.held("cam");
                states.push(format!(
                    "{}:{:?}",
                    i + 1,
                    held.map(|h| (h.last_msn, h.last_part, h.upstream, h.following))
                ));
            }
            trace.push(format!("{t} {}", states.join(" ")));
        }

        let newest = SEGMENTS - 1;
        for (i, m) in members.iter().enumerate().skip(1) {
            for msn in (SEGMENTS - WINDOW as u64 + 1)..=newest {
                let there = origin.store.segment("cam", SRC, msn).expect("the origin's segment").to_bytes();
                let here = m.store.segment("cam", SRC, msn).unwrap_or_else(|e| {
                    panic!("member {} lacks segment {msn}, seed {seed}: {e}\n{}", i + 1, trace.join("\n"))
                });
                assert_eq!(here.to_bytes(), there, "member {}, segment {msn}, seed {seed}", i + 1);
            }
        }
        let counts = net.counts();
        assert!(counts.dropped > 0, "{counts:?}");
        drop(claim);
        for m in &members {
            m.cluster.shutdown().await;
        }
        trace
    })
}

/// Runs `seed` in a folder of its own, removed afterwards.
fn history_in_scratch(seed: u64, run: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("tessera-chaos-relay-{}-{seed}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let trace = history(seed, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    trace
}

#[test]
fn relay_over_quic() {
    let (seed, _, _) = crate::scenario::announce("relay_over_quic", 41);
    let first = history_in_scratch(seed, "first");
    let again = history_in_scratch(seed, "again");
    let diverged = first.iter().zip(&again).position(|(a, b)| a != b);
    assert_eq!(diverged, None, "seed {seed} replayed differently from tick {diverged:?}:\n{}", first.join("\n"));
}

/// New seeds each run: `TESSERA_CHAOS_RELAY_SEEDS` of them (5 by default), each printed
/// with the command that replays it.
#[test]
fn relay_over_quic_new_seeds() {
    if std::env::var("TESSERA_CHAOS_SEED").is_ok() {
        return; // one seed replayed: relay_over_quic runs it
    }
    let seeds = crate::scenario::new_seeds("TESSERA_CHAOS_RELAY_SEEDS", 5);
    let n = seeds.len();
    for (i, seed) in seeds.into_iter().enumerate() {
        eprintln!("relay_over_quic_new_seeds: {} of {n}: seed {seed} (replay: TESSERA_CHAOS_SEED={seed} cargo test -p tessera-chaos relay_over_quic)", i + 1);
        history_in_scratch(seed, "new");
    }
}
