//! Who watches what on this node. A viewer is a client (its address and user agent) that
//! asked for one of a stream's media playlists within the last [`VIEWER_WINDOW`]: players
//! reload a live playlist at least every target duration (a blocking reload within three),
//! so one that stops asking has gone. Counted per node; the cluster's figure is the sum.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a viewer counts after its last playlist request.
pub const VIEWER_WINDOW: Duration = Duration::from_secs(15);

/// Streams are pruned of gone viewers on a count; past this many clients per stream the
/// oldest are let go first (a flood of spoofed user agents stays bounded).
const MAX_PER_STREAM: usize = 1_000_000;

/// Last playlist request per client, per stream.
#[derive(Default)]
pub struct ViewerTally {
    seen: Mutex<HashMap<String, HashMap<u64, Instant>>>,
}

/// A client's identity: its address and user agent, hashed.
pub fn client_key(addr: std::net::IpAddr, user_agent: Option<&[u8]>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    addr.hash(&mut h);
    user_agent.hash(&mut h);
    h.finish()
}

impl ViewerTally {
    /// `client` asked for a playlist of `stream` at `now`.
    pub fn seen(&self, stream: &str, client: u64, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let clients = match seen.get_mut(stream) {
            Some(c) => c,
            None => seen.entry(stream.to_string()).or_default(),
        };
        if clients.len() >= MAX_PER_STREAM && !clients.contains_key(&client) {
            clients.retain(|_, at| now.saturating_duration_since(*at) < VIEWER_WINDOW);
            if clients.len() >= MAX_PER_STREAM {
                return;
            }
        }
        clients.insert(client, now);
    }

    /// Viewers of each stream at `now` (streams without any are left out, and forgotten).
    pub fn counts(&self, now: Instant) -> HashMap<String, usize> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, clients| {
            clients.retain(|_, at| now.saturating_duration_since(*at) < VIEWER_WINDOW);
            !clients.is_empty()
        });
        seen.iter().map(|(s, c)| (s.clone(), c.len())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_counts_while_it_asks_and_once_however_often() {
        let tally = ViewerTally::default();
        let t0 = Instant::now();
        let (a, b) = (client_key([10, 0, 0, 1].into(), Some(b"hls.js")), client_key([10, 0, 0, 2].into(), None));
        for i in 0..10 {
            tally.seen("cam", a, t0 + Duration::from_millis(200 * i));
        }
        tally.seen("cam", b, t0);
        tally.seen("news", b, t0);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(tally.counts(at(1)), HashMap::from([("cam".into(), 2), ("news".into(), 1)]));
        // b stops asking; a goes on.
        tally.seen("cam", a, at(14));
        assert_eq!(tally.counts(at(16)), HashMap::from([("cam".into(), 1)]));
        assert!(tally.counts(at(40)).is_empty(), "everyone gone");
        let other_agent = client_key([10, 0, 0, 1].into(), Some(b"AppleCoreMedia"));
        assert_ne!(a, other_agent, "two players behind one address count twice");
    }
}
