//! What crosses from an origin to another node.

use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tessera_ingest::media::TrackInfo;
use tessera_packager::{PlannedRendition, Published, SessionEnd, TranscoderStatus};

/// One event of a live stream, as its origin published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FeedEvent {
    /// What follows starts afresh: the receiver forgets its position (its playlists
    /// continue with a discontinuity). Items before `kept_from` are the state as of then
    /// (session, ladder, inits); from `kept_from` on, the journal as recorded.
    Reset {
        kept_from: u64,
    },
    /// A publisher session starts; the origin adds `base` to its segment numbers.
    Session {
        session: u64,
        base: u64,
        expects_ladder: bool,
    },
    /// The session's ladder.
    Plan(Vec<PlannedRendition>),
    /// The session's transcoding state.
    Transcoder(TranscoderStatus),
    Init {
        rendition: String,
        tracks: Vec<TrackInfo>,
        data: Bytes,
    },
    Part {
        rendition: String,
        /// The part's number on the origin (its `part-N.m4s`): every node names it so.
        number: u64,
        /// Session-relative segment number.
        segment: u64,
        /// The first part of its segment in this rendition.
        starts_segment: bool,
        data: Bytes,
        /// Seconds.
        duration: f64,
        independent: bool,
        program_time_ms: i64,
        /// Seconds.
        part_target: f64,
        /// The origin's wall clock when it published the part (µs since the Unix epoch),
        /// for the propagation delay a receiving node measures.
        published_us: i64,
    },
    SegmentEnd {
        rendition: String,
        segment: u64,
    },
    Gap {
        rendition: String,
        segment: u64,
        duration: f64,
    },
    /// The session is over.
    End(SessionEnd),
}

impl FeedEvent {
    /// The event for what a pipeline published at `now_us`, a part with the `number` the
    /// origin's store gave it (`None` for a part it did not list: nothing to send). The
    /// journal sets `starts_segment`.
    pub fn published(rendition: &str, event: Published, number: Option<u64>, now_us: i64) -> Option<FeedEvent> {
        let rendition = rendition.to_string();
        Some(match event {
            Published::Init { tracks, data } => FeedEvent::Init { rendition, tracks, data },
            Published::Part { segment, data, duration, independent, program_time_ms, part_target, .. } => {
                FeedEvent::Part {
                    rendition,
                    number: number?,
                    segment,
                    starts_segment: false,
                    data,
                    duration,
                    independent,
                    program_time_ms,
                    part_target,
                    published_us: now_us,
                }
            }
            Published::SegmentEnd { segment } => FeedEvent::SegmentEnd { rendition, segment },
            Published::Gap { segment, duration } => FeedEvent::Gap { rendition, segment, duration },
        })
    }

    /// The pipeline event to replay on a receiving node, with its rendition and (for a part)
    /// the origin's number for it, for media events (init, part, segment end, gap); anything
    /// else comes back as it was. `now` stands for when the part was completed there.
    pub fn into_published(self, now: Instant) -> Result<(String, Published, Option<u64>), FeedEvent> {
        Ok(match self {
            FeedEvent::Init { rendition, tracks, data } => (rendition, Published::Init { tracks, data }, None),
            FeedEvent::Part {
                rendition,
                number,
                segment,
                data,
                duration,
                independent,
                program_time_ms,
                part_target,
                ..
            } => (
                rendition,
                Published::Part {
                    segment,
                    data,
                    duration,
                    independent,
                    program_time_ms,
                    part_target,
                    completed_at: now,
                    last_frame_arrived: None,
                },
                Some(number),
            ),
            FeedEvent::SegmentEnd { rendition, segment } => (rendition, Published::SegmentEnd { segment }, None),
            FeedEvent::Gap { rendition, segment, duration } => (rendition, Published::Gap { segment, duration }, None),
            other => return Err(other),
        })
    }

    /// The media segment this event belongs to, with its rendition.
    pub fn segment(&self) -> Option<(&str, u64)> {
        match self {
            FeedEvent::Part { rendition, segment, .. }
            | FeedEvent::SegmentEnd { rendition, segment }
            | FeedEvent::Gap { rendition, segment, .. } => Some((rendition, *segment)),
            _ => None,
        }
    }
}

/// An event with its place in the origin's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedItem {
    /// Consecutive from 1 within one journal (one stream on one origin process).
    pub seq: u64,
    pub event: FeedEvent,
}
