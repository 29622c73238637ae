//! Sessions of streams whose origin is another node: the relay replays the origin's
//! events into a session of its own here, numbered from the origin's base.

use super::{SegmentStore, StreamEntry};

impl SegmentStore {
    /// The numbering base of a live session and whether it waits for a ladder.
    pub fn session_info(&self, name: &str, session: u64) -> Option<(u64, bool)> {
        let entry = self.entry(name)?;
        let st = entry.state.lock().expect("stream lock");
        (st.session == Some(session)).then_some((st.session_base, st.expects_plan))
    }

    /// Whether a publisher of this node (not a mirror of another node's) is live on `name`.
    pub fn publishing_here(&self, name: &str) -> bool {
        self.entry(name).is_some_and(|e| {
            let st = e.state.lock().expect("stream lock");
            st.session.is_some() && !st.mirrored
        })
    }

    /// Starts a session that follows another node's: its segments are numbered from `base`
    /// as the origin numbers them. A session already open for the stream (an earlier
    /// mirror) ends first; a local publisher's is left alone (`None`).
    pub fn begin_mirror(&self, name: &str, base: u64, expects_plan: bool) -> Option<u64> {
        let session = self.next_session.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = StreamEntry::in_map(&mut self.streams.lock().expect("streams lock"), name);
        let mut st = entry.state.lock().expect("stream lock");
        if st.session.is_some() && !st.mirrored {
            return None;
        }
        st.close_all();
        self.hand_over(name, &mut st);
        st.start_session(session, base, true, expects_plan);
        st.changes += 1;
        drop(st);
        entry.bump();
        tracing::info!(stream = name, session, base, "following the stream's origin");
        Some(session)
    }

    /// Whether the stream is known here at all (live, waiting for its publisher, or ended).
    pub fn has_stream(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// Numbers a session that has published nothing yet from at least where `cluster` says
    /// the stream got to: a new origin carries on the segment and part numbers other nodes
    /// hold, so a URI never names two different things anywhere in the cluster.
    pub fn carry_on_from(&self, name: &str, session: u64, cluster: Numbering) {
        let Some(entry) = self.entry(name) else { return };
        let mut st = entry.state.lock().expect("stream lock");
        if st.session != Some(session) {
            return;
        }
        st.part_floor = st.part_floor.max(cluster.next_part);
        if cluster.next_msn > st.session_base {
            tracing::info!(
                stream = name,
                session,
                from = st.session_base,
                to = cluster.next_msn,
                next_part = st.part_floor,
                "numbering carries on from the cluster"
            );
            st.session_base = cluster.next_msn;
        }
    }

    /// Where this node stands in the stream (its passthrough rendition).
    pub fn held(&self, name: &str) -> Option<Held> {
        let entry = self.entry(name)?;
        let st = entry.state.lock().expect("stream lock");
        let src = st.renditions.get(super::SOURCE_RENDITION)?;
        let report = src.playlist.report(String::new())?;
        Some(Held {
            last_msn: report.last_msn,
            last_part: report.last_part,
            next: Numbering {
                next_msn: st.renditions.values().map(|r| r.playlist.next_msn()).max().unwrap_or(0),
                next_part: st.renditions.values().map(|r| r.playlist.next_part_seq()).max().unwrap_or(0),
            },
            live: st.session.is_some(),
            following: st.mirrored,
            upstream: None,
        })
    }

    /// A mirrored rendition that lists nothing yet begins at its first whole segment `msn`
    /// (session-relative), not with the numbers before it as gaps.
    pub fn mirror_start(&self, name: &str, session: u64, rendition: &str, segment: u64) {
        let Some(entry) = self.entry(name) else { return };
        let mut st = entry.state.lock().expect("stream lock");
        if st.session != Some(session) || !st.mirrored {
            return;
        }
        let msn = st.session_base + segment;
        if let Some(r) = st.renditions.get_mut(rendition) {
            r.playlist.start_at(msn);
        }
    }
}

/// Where a node stands in a stream, for operators and for a new origin's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Held {
    /// The newest segment (complete or not) of the passthrough rendition, and its newest part.
    pub last_msn: u64,
    pub last_part: Option<u64>,
    /// The numbers the stream's next segment and part would get here.
    pub next: Numbering,
    pub live: bool,
    /// The node follows another node, the stream's origin.
    pub following: bool,
    /// The node it receives the stream from: the origin, or a relay nearer it.
    #[serde(default)]
    pub upstream: Option<u64>,
}

/// The numbers a stream's next segment and part get: one past the highest in any rendition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Numbering {
    pub next_msn: u64,
    pub next_part: u64,
}

impl Numbering {
    /// The numbering that carries on from both.
    pub fn max(self, other: Numbering) -> Numbering {
        Numbering { next_msn: self.next_msn.max(other.next_msn), next_part: self.next_part.max(other.next_part) }
    }
}
