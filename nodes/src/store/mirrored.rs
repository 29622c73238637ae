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

    /// Numbers a session that has published nothing yet from at least `base`: a new
    /// origin carries on from where the cluster got to.
    pub fn raise_base(&self, name: &str, session: u64, base: u64) {
        let Some(entry) = self.entry(name) else { return };
        let mut st = entry.state.lock().expect("stream lock");
        if st.session == Some(session) && base > st.session_base {
            tracing::info!(
                stream = name,
                session,
                from = st.session_base,
                to = base,
                "numbering carries on from the cluster"
            );
            st.session_base = base;
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
            next_msn: st.renditions.values().map(|r| r.playlist.next_msn()).max().unwrap_or(0),
            live: st.session.is_some(),
            following: st.mirrored,
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
    /// One past the highest segment number in any rendition.
    pub next_msn: u64,
    pub live: bool,
    /// The node follows another node, the stream's origin.
    pub following: bool,
}
