//! The segment store on its own: blocking playlist requests released by a part, the live
//! window and what outlives it, numbering across publisher sessions, and segments served
//! as their parts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_packager::{BlockRequest, MediaSink, PlaylistConfig, Published, SessionEnd};

use super::{SegmentStore, StoreConfig, StoreError, SOURCE_RENDITION as SRC};
use crate::testing::aac_track;

const PART_S: f64 = 0.5;
const PARTS_PER_SEGMENT: u64 = 4;
const WINDOW: usize = 3;

fn store() -> Arc<SegmentStore> {
    SegmentStore::new(StoreConfig {
        playlist: PlaylistConfig { segment_target: 2.0, window_segments: WINDOW, retained_segments: WINDOW },
        reconnect_grace: Duration::from_millis(50),
        ended_retention: Duration::from_secs(60),
        max_publishers: 4,
    })
}

/// A publisher session, numbering its segments from 0 as pipelines do.
struct Publisher {
    store: Arc<SegmentStore>,
    stream: &'static str,
    session: u64,
    segment: u64,
    part: u64,
    /// Every part's bytes, as published.
    published: Vec<Bytes>,
}

impl Publisher {
    fn start(store: &Arc<SegmentStore>, stream: &'static str) -> Publisher {
        let claim = store.claim(stream, false).expect("the stream is free");
        let session = claim.session;
        // The claim ends the session when dropped; the tests end it themselves.
        std::mem::forget(claim);
        store.publish(
            stream,
            session,
            SRC,
            Published::Init { tracks: vec![aac_track()], data: Bytes::from_static(b"init") },
        );
        Publisher { store: store.clone(), stream, session, segment: 0, part: 0, published: Vec::new() }
    }

    fn part(&mut self) {
        let data = Bytes::from(format!("{}:{}:{}", self.session, self.segment, self.part));
        self.published.push(data.clone());
        self.store.publish(
            self.stream,
            self.session,
            SRC,
            Published::Part {
                segment: self.segment,
                data,
                duration: PART_S,
                independent: self.part == 0,
                program_time_ms: 1_000_000 + (self.segment * PARTS_PER_SEGMENT + self.part) as i64 * 500,
                part_target: PART_S,
                completed_at: Instant::now(),
                last_frame_arrived: None,
            },
        );
        self.part += 1;
        if self.part == PARTS_PER_SEGMENT {
            self.store.publish(self.stream, self.session, SRC, Published::SegmentEnd { segment: self.segment });
            self.segment += 1;
            self.part = 0;
        }
    }

    fn segments(&mut self, n: u64) {
        for _ in 0..n * PARTS_PER_SEGMENT {
            self.part();
        }
    }

    fn end(&self) {
        self.store.end(self.stream, self.session, SessionEnd::Closed);
    }
}

async fn playlist(store: &SegmentStore, block: Option<BlockRequest>, timeout: Duration) -> Result<String, StoreError> {
    let r = store.media_playlist("cam", SRC, block, false, timeout, &[]).await?;
    Ok(String::from_utf8(r.body.to_vec()).unwrap())
}

fn listed_segments(playlist: &str) -> Vec<u64> {
    playlist.lines().filter_map(|l| l.strip_prefix("seg-")?.strip_suffix(".m4s")?.parse().ok()).collect()
}

#[tokio::test]
async fn a_blocking_request_is_released_by_the_part_it_waits_for() {
    let store = store();
    let mut p = Publisher::start(&store, "cam");
    p.segments(1);
    p.part();
    // Segment 1 has its part 0; part 1 is the next.
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let block = Some(BlockRequest { msn: 1, part: Some(1) });
            playlist(&store, block, Duration::from_secs(5)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "held until the part exists");
    p.part();
    let body = tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("released").unwrap().unwrap();
    assert!(body.contains("URI=\"part-5.m4s\""), "the awaited part is listed:\n{body}");

    let too_far = Some(BlockRequest { msn: 4, part: None });
    assert!(matches!(playlist(&store, too_far, Duration::from_secs(1)).await, Err(StoreError::BadRequest(_))));
    let next = Some(BlockRequest { msn: 2, part: Some(0) });
    assert_eq!(playlist(&store, next, Duration::from_millis(100)).await, Err(StoreError::Timeout));
    assert_eq!(
        store.media_playlist("nobody", SRC, None, false, Duration::from_millis(10), &[]).await.err(),
        Some(StoreError::NotFound)
    );
}

#[tokio::test]
async fn a_playlist_waits_for_the_first_complete_segment() {
    let store = store();
    let mut p = Publisher::start(&store, "cam");
    p.part();
    assert_eq!(playlist(&store, None, Duration::from_millis(100)).await, Err(StoreError::Timeout));
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { playlist(&store, None, Duration::from_secs(5)).await })
    };
    p.segments(1);
    let body = waiter.await.unwrap().unwrap();
    assert_eq!(listed_segments(&body)[0], 0, "{body}");
}

#[tokio::test]
async fn the_window_slides_and_bytes_outlive_it_for_one_more_window() {
    let store = store();
    let mut p = Publisher::start(&store, "cam");
    p.segments(10);
    let body = playlist(&store, None, Duration::from_secs(1)).await.unwrap();
    assert_eq!(listed_segments(&body), [7, 8, 9], "the window's segments:\n{body}");
    for msn in 4..10 {
        assert!(store.segment("cam", SRC, msn).is_ok(), "segment {msn} is still served");
    }
    assert_eq!(store.segment("cam", SRC, 3).err(), Some(StoreError::NotFound), "past the retention");
    assert!(store.part("cam", SRC, 4 * PARTS_PER_SEGMENT, Duration::ZERO).await.is_ok(), "parts live as long");
    assert!(store.part("cam", SRC, 3 * PARTS_PER_SEGMENT, Duration::ZERO).await.is_err());
}

#[tokio::test]
async fn a_segment_is_its_parts_chained_not_a_copy() {
    let store = store();
    let mut p = Publisher::start(&store, "cam");
    p.segments(2);
    let segment = store.segment("cam", SRC, 1).unwrap();
    let parts = &p.published[PARTS_PER_SEGMENT as usize..2 * PARTS_PER_SEGMENT as usize];
    assert_eq!(segment.chunks().len(), parts.len());
    for (chunk, part) in segment.chunks().iter().zip(parts) {
        assert_eq!(chunk.as_ptr(), part.as_ptr(), "the part's own bytes, not a copy");
    }
    let (part, msn, _) = store.part("cam", SRC, PARTS_PER_SEGMENT, Duration::ZERO).await.unwrap();
    assert_eq!((part.as_ptr(), msn), (parts[0].as_ptr(), 1));
}

#[tokio::test]
async fn numbering_carries_on_across_publisher_sessions() {
    let store = store();
    let mut first = Publisher::start(&store, "cam");
    first.segments(3);
    first.part();
    first.end();
    let mut second = Publisher::start(&store, "cam");
    second.segments(2);
    let body = playlist(&store, None, Duration::from_secs(1)).await.unwrap();
    // The first session's segment 3 was cut short at its one part; the second numbers on
    // from 4, after a discontinuity, and its parts from the first's next.
    assert_eq!(listed_segments(&body), [3, 4, 5], "{body}");
    assert!(body.contains("#EXT-X-DISCONTINUITY\n"), "{body}");
    assert!(store.segment("cam", SRC, 4).is_ok() && store.segment("cam", SRC, 5).is_ok());
    let held = store.held("cam").unwrap();
    assert_eq!((held.last_msn, held.next.next_msn), (5, 6));
    assert!(body.contains("URI=\"part-13.m4s\""), "parts number on across sessions:\n{body}");
}

#[tokio::test]
async fn a_second_publisher_is_refused_and_a_publisher_gone_past_its_grace_ends_the_stream() {
    let store = store();
    let mut p = Publisher::start(&store, "cam");
    assert!(store.claim("cam", false).is_err(), "one publisher at a time");
    p.segments(1);
    p.end();
    store.tick(Instant::now() + Duration::from_secs(1));
    let body = playlist(&store, None, Duration::from_secs(1)).await.unwrap();
    assert!(body.ends_with("#EXT-X-ENDLIST\n"), "{body}");
}
