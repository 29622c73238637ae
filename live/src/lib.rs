//! A node's live streams: what it holds of each, and how they cross the cluster.
//!
//! - [`store`]: every stream's renditions, playlist state and media for the live window,
//!   numbered across publisher sessions, releasing blocked playlist requests the moment a
//!   part lands.
//! - [`relay`]: the origin's journal other nodes follow ([`relay::RelaySink`] fills it as
//!   the pipelines publish), and the follower that replays another node's journal into this
//!   node's store; their protocols on the cluster transport.
//! - [`http`]: the live routes (`/live/NAME/...`).
//!
//! # Contract
//! - The store is the only state shared between streams. Its locks (one per stream, one for
//!   the stream map) are held only to read or update state, never across an await; waiters
//!   subscribe to a stream's `watch` channel before they check it, so no publication is
//!   missed.
//! - Segment, part and init names (`seg-MSN.m4s`, `part-N.m4s`, `init-N.mp4`) are the same
//!   on every node and never name two different files within a stream's life.
//! - Nothing waits on a slow follower: an origin sends at the pace each follower reads
//!   (QUIC flow control), and a follower that falls out of the journal's window starts again
//!   at the live edge.

pub mod http;
pub mod relay;
pub mod store;

/// What the tests of the store and the relay share.
#[cfg(test)]
mod testing {
    use bytes::Bytes;
    use tessera_ingest::media::{AacConfig, CodecConfig, TrackInfo};

    /// An AAC track: what an init segment in these tests describes.
    pub(crate) fn aac_track() -> TrackInfo {
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
}
