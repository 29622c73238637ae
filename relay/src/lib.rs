//! Live media between nodes, sans-IO.
//!
//! The origin of a live stream (the node its publisher is connected to) records everything
//! its pipelines publish for the stream, in order, in a [`Journal`]: the session and its
//! numbering base, the ladder, init segments, parts, segment ends, gaps, the end. Another
//! node subscribes with the last sequence number it holds and receives what follows; if
//! that was trimmed away, it receives a fresh start instead: a [`FeedEvent::Reset`], the
//! state as of the oldest item kept, then the items kept. A node thus receives each part
//! once, however many viewers it serves, and answers its players from its own store.
//!
//! On the receiving node a [`Mirror`] checks the sequence numbers, drops the leading
//! parts of segments it joined half way (so every segment it serves is whole), and says
//! from where to resubscribe after a gap.
//!
//! A node that follows a stream also relays it: it keeps a copy of the origin's journal
//! (same id, same numbers, [`Journal::copy`]) and serves subscribers of its own, so the
//! nodes form a tree rooted at the origin ([`tree`]) and a subscriber may resume on any node
//! that relays the journal without starting over.
//!
//! # Contract
//! - Nothing here does I/O or reads a clock; the node's driver moves [`FeedFrame`]s over QUIC
//!   (laid out by [`frame::encode`]: media as it is, after a header) and applies what
//!   [`Mirror::accept`] returns to its segment store.
//! - Segment numbers are the origin's session-relative ones, as its pipelines publish them;
//!   the [`FeedEvent::Session`] event carries the base the origin adds, so both nodes number
//!   and date every segment alike and serve the same bytes under the same names.

pub mod event;
pub mod frame;
pub mod journal;
pub mod mirror;
pub mod tree;

pub use event::{FeedEvent, FeedItem};
pub use frame::FeedFrame;
pub use journal::Journal;
pub use mirror::{Mirror, MirrorStep};
pub use tree::upstreams;
