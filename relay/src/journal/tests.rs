use bytes::Bytes;

use super::*;
use crate::mirror::{Mirror, MirrorStep};

fn part(rendition: &str, segment: u64, n: u8) -> FeedEvent {
    FeedEvent::Part {
        rendition: rendition.into(),
        number: segment * 10 + n as u64,
        segment,
        starts_segment: false,
        data: Bytes::from(vec![n]),
        duration: 0.5,
        independent: true,
        program_time_ms: 1_000 * segment as i64,
        part_target: 0.5,
        published_us: 0,
    }
}

fn init(rendition: &str, n: u8) -> FeedEvent {
    FeedEvent::Init { rendition: rendition.into(), tracks: vec![], data: Bytes::from(vec![n]) }
}

/// A session of two renditions, `segments` segments of two parts each, interleaved.
fn journal(keep: usize, segments: u64) -> Journal {
    let mut j = Journal::new(7, keep);
    j.record(FeedEvent::Session { session: 3, base: 40, expects_ladder: true });
    j.record(init("src", 1));
    j.record(init("360p", 2));
    for s in 0..segments {
        for p in 0..2 {
            j.record(part("src", s, p));
            j.record(part("360p", s, p));
        }
        j.record(FeedEvent::SegmentEnd { rendition: "src".into(), segment: s });
        j.record(FeedEvent::SegmentEnd { rendition: "360p".into(), segment: s });
    }
    j
}

fn segments_of(items: &[FeedItem]) -> Vec<u64> {
    let mut s: Vec<u64> = items.iter().filter_map(|i| i.event.segment().map(|(_, s)| s)).collect();
    s.dedup();
    s
}

#[test]
fn parts_know_whether_they_start_their_segment_in_their_rendition() {
    let j = journal(10, 2);
    let starts: Vec<(String, u64, bool)> = j
        .since(None)
        .items
        .into_iter()
        .filter_map(|i| match i.event {
            FeedEvent::Part { rendition, segment, starts_segment, .. } => Some((rendition, segment, starts_segment)),
            _ => None,
        })
        .collect();
    let firsts: Vec<_> = starts.iter().filter(|(_, _, s)| *s).map(|(r, s, _)| (r.as_str(), *s)).collect();
    assert_eq!(firsts, [("src", 0), ("360p", 0), ("src", 1), ("360p", 1)]);
}

#[test]
fn a_subscriber_continues_after_the_last_item_it_holds() {
    let j = journal(10, 3);
    let c = j.since(Some((7, 5)));
    assert!(!c.fresh);
    assert_eq!(c.items.first().map(|i| i.seq), Some(6));
    assert_eq!(c.items.last().map(|i| i.seq), Some(j.last_seq()));
    assert!(j.since(Some((7, j.last_seq()))).items.is_empty(), "nothing new, nothing sent");
}

#[test]
fn a_position_from_another_journal_or_one_trimmed_away_starts_afresh() {
    let j = journal(2, 6);
    for position in [Some((8, 5)), Some((7, 3)), None] {
        let c = j.since(position);
        assert!(c.fresh, "{position:?}");
        assert!(matches!(c.items[0].event, FeedEvent::Reset { .. }));
        // The baseline: the session and each rendition's init, before the media kept.
        assert!(matches!(c.items[1].event, FeedEvent::Session { session: 3, base: 40, .. }));
        assert_eq!(c.items[2].event, init("src", 1));
        assert_eq!(c.items[3].event, init("360p", 2));
        assert_eq!(segments_of(&c.items), [4, 5], "only the segments kept");
    }
}

#[test]
fn a_newer_init_replaces_the_older_one_in_the_baseline() {
    let mut j = journal(1, 2);
    j.record(init("src", 9));
    for s in 2..5 {
        j.record(part("src", s, 0));
    }
    let inits: Vec<FeedEvent> =
        j.since(None).items.into_iter().map(|i| i.event).filter(|e| matches!(e, FeedEvent::Init { .. })).collect();
    assert_eq!(inits, [init("360p", 2), init("src", 9)]);
}

/// Replays a catch-up through a mirror; the events it applies.
fn mirrored(mirror: &mut Mirror, journal: u64, items: Vec<FeedItem>) -> Vec<FeedEvent> {
    items
        .into_iter()
        .filter_map(|i| match mirror.accept(journal, i) {
            MirrorStep::Apply(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_mirror_from_the_start_applies_exactly_what_the_origin_recorded() {
    let j = journal(100, 4);
    let all: Vec<FeedEvent> = j.since(None).items.into_iter().skip(1).map(|i| i.event).collect();
    let mut m = Mirror::new();
    assert_eq!(mirrored(&mut m, 7, j.since(None).items), all);
    assert_eq!(m.position(), Some((7, j.last_seq())));
}

#[test]
fn a_mirror_joining_half_way_through_a_segment_skips_to_the_next_whole_one() {
    let mut j = journal(2, 3);
    // Segment 3 has begun in src only: a subscriber now joins it half way in 360p too.
    j.record(part("src", 3, 0));
    j.record(part("360p", 3, 0));
    j.record(part("src", 3, 1));
    let c = j.since(None);
    let mut m = Mirror::new();
    let applied = mirrored(&mut m, 7, c.items);
    // Kept: segments 2 and 3, both whole from their first part.
    let parts: Vec<(String, u64)> = applied
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Part { rendition, segment, .. } => Some((rendition.clone(), *segment)),
            _ => None,
        })
        .collect();
    assert_eq!(parts.iter().filter(|(_, s)| *s == 2).count(), 4);
    assert_eq!(parts.iter().filter(|(_, s)| *s == 3).count(), 3);

    // Trim so that the first item kept is the middle of a segment for one rendition.
    let mut j = Journal::new(9, 1);
    j.record(FeedEvent::Session { session: 1, base: 0, expects_ladder: false });
    j.record(init("src", 1));
    j.record(part("src", 0, 0));
    j.record(part("360p", 0, 0)); // 360p runs late: its segment 0 is still open...
    j.record(part("src", 1, 0)); // ...when src starts segment 1 (trimming segment 0)
    j.record(part("360p", 0, 1));
    j.record(FeedEvent::SegmentEnd { rendition: "360p".into(), segment: 0 });
    j.record(part("360p", 1, 0));
    let mut m = Mirror::new();
    let applied = mirrored(&mut m, 9, j.since(None).items);
    assert!(
        !applied.iter().any(|e| e.segment() == Some(("360p", 0))),
        "half of 360p's segment 0 must not be served: {applied:?}"
    );
    assert!(applied.iter().any(|e| e.segment() == Some(("360p", 1))));
}

#[test]
fn a_mirror_ignores_what_it_already_holds_and_restarts_on_reset() {
    let j = journal(100, 2);
    let mut m = Mirror::new();
    mirrored(&mut m, 7, j.since(None).items);
    let again = j.since(Some((7, 4))).items;
    assert!(mirrored(&mut m, 7, again).is_empty(), "duplicates after a reconnect are skipped");
    assert_eq!(m.accept(8, FeedItem { seq: 0, event: FeedEvent::Reset { kept_from: 1 } }), MirrorStep::Restart);
    assert_eq!(m.position(), Some((8, 0)));
}

#[test]
fn a_short_window_keeps_only_its_last_segments() {
    let mut j = Journal::new(3, 2);
    j.record(FeedEvent::Session { session: 1, base: 0, expects_ladder: false });
    j.record(init("src", 1));
    j.record(FeedEvent::Plan(vec![]));
    for s in 0..6 {
        for p in 0..10 {
            j.record(part("src", s, p));
        }
        j.record(FeedEvent::SegmentEnd { rendition: "src".into(), segment: s });
    }
    assert_eq!(segments_of(&j.since(None).items), [4, 5]);
}

#[test]
fn a_part_crosses_with_the_number_its_origin_gave_it() {
    let published = tessera_packager::Published::Part {
        segment: 2,
        data: Bytes::from_static(b"part"),
        duration: 0.2,
        independent: true,
        program_time_ms: 5,
        part_target: 0.2,
        completed_at: std::time::Instant::now(),
        last_frame_arrived: None,
    };
    // A part its origin did not list is not sent at all.
    assert_eq!(FeedEvent::published("src", published.clone(), None, 0), None);
    let event = FeedEvent::published("src", published, Some(57), 0).expect("a listed part");
    let (rendition, _, number) = event.into_published(std::time::Instant::now()).expect("media");
    assert_eq!((rendition.as_str(), number), ("src", Some(57)));
}

/// Copies `items` of journal `id` into `copy`, as a relaying node receives them.
fn copy_all(copy: &mut Journal, id: u64, items: Vec<FeedItem>) {
    for item in items {
        copy.copy(id, item);
    }
}

#[test]
fn a_relaying_node_offers_what_the_origin_offers_under_the_same_numbers() {
    let mut origin = journal(3, 6);
    let mut relay = Journal::new(55, 3);
    copy_all(&mut relay, 7, origin.since(None).items);
    assert!(relay.is_copy());
    assert_eq!(relay.id(), 7, "the origin's journal id");
    assert_eq!(relay.since(None), origin.since(None));

    // Live items as they arrive; the window slides alike on both.
    let before = origin.last_seq();
    for s in 6..9 {
        let a = origin.record(part("src", s, 0));
        let b = origin.record(FeedEvent::SegmentEnd { rendition: "src".into(), segment: s });
        copy_all(&mut relay, 7, vec![a.clone(), a, b]); // a duplicate is ignored
    }
    assert_eq!(relay.last_seq(), origin.last_seq());
    assert_eq!(relay.since(None), origin.since(None));
    // A subscriber of the origin resumes on the relay without starting over.
    let resumed = relay.since(Some((7, before)));
    assert!(!resumed.fresh);
    assert_eq!(resumed, origin.since(Some((7, before))));
}

#[test]
fn a_copy_starts_over_on_a_reset_from_the_origin() {
    let origin = journal(2, 4);
    let mut relay = Journal::new(55, 2);
    copy_all(&mut relay, 7, origin.since(None).items);
    let other = journal(2, 5);
    // Another origin process: another id, numbers from 1 again.
    copy_all(&mut relay, 8, other.since(None).items);
    assert_eq!(relay.id(), 8);
    assert_eq!(relay.since(None), other.since(None));
}

#[test]
fn a_subscriber_ahead_of_a_lagging_relay_waits_instead_of_going_back() {
    let origin = journal(3, 6);
    let mut relay = Journal::new(55, 3);
    let mut items = origin.since(None).items;
    let ahead = origin.last_seq();
    items.truncate(items.len() - 4);
    copy_all(&mut relay, 7, items);
    let c = relay.since(Some((7, ahead)));
    assert!(!c.fresh && c.items.is_empty(), "nothing yet, and no fresh start: {c:?}");
}

#[test]
fn what_was_sent_never_goes_back() {
    let origin = journal(3, 6);
    let mut relay = Journal::new(55, 3);
    let mut items = origin.since(None).items;
    items.truncate(items.len() - 4);
    copy_all(&mut relay, 7, items);
    let ahead = (7, origin.last_seq());
    assert_eq!(relay.sent_all(Some(ahead)), ahead, "a subscriber ahead keeps its place");
    assert_eq!(relay.sent_all(Some((7, 2))), (7, relay.last_seq()));
    assert_eq!(relay.sent_all(None), (7, relay.last_seq()));
}
