//! Live streams across the cluster. The node a publisher is connected to is the stream's
//! origin (its lease is in the catalog); it keeps a journal of what the stream's pipelines
//! publish ([`RelaySink`] fills a [`FeedRegistry`]). Any other node asked for the stream
//! follows that journal over QUIC ([`Followers`]): one subscription per node and stream,
//! pushed as the origin publishes, acknowledged as applied, resumed from the last item held
//! after a reconnect, replayed into the node's own segment store, which then answers its
//! players (blocking reloads included) as if the publisher were local.
//!
//! A segment this node lacks (from before its subscription, or before a restart) is pulled
//! through from a node that has it, once, concurrent requests sharing the fetch.
//!
//! Topology: a tree rooted at each stream's origin ([`tessera_relay::tree`]). The origin
//! feeds at most `relay_fanout` nodes; each following node keeps a copy of the origin's
//! journal under the same numbers and feeds the nodes below it, so the origin's upload stays
//! flat as the cluster grows. A relay that fails is passed over for the next node up; the
//! subscription resumes there from the same position.
//!
//! Backpressure: an origin sends each follower what its journal holds after the follower's
//! position, at the pace the follower reads (QUIC flow control); a follower that falls more
//! than the journal's window behind is started again at the live edge, and its playlists
//! continue with a discontinuity. Nothing waits on a slow follower.
//!
//! Time: the driver's timers and deadlines (silence of a relay, the way back to a parent,
//! idleness) are tokio's, so under a paused clock (the chaos simulator) it runs on virtual
//! time and a seed replays it.

mod feeds;
mod follow;
mod protocols;
mod pull;
pub mod term;
mod upstream;

pub use feeds::{FeedRegistry, RelaySink};
pub use follow::Followers;
pub use protocols::{numbering, positions, serve};
pub use term::{OriginTerm, TermState};
pub use tessera_packager::MediaFile;

#[cfg(test)]
mod tests;
