//! The receiving side: follows one stream's journal and says what to apply.

use std::collections::BTreeMap;

use crate::event::{FeedEvent, FeedItem};

/// What to do with a received item.
#[derive(Debug, PartialEq)]
pub enum MirrorStep {
    /// Apply the event to the local store.
    Apply(FeedEvent),
    /// Start over: end the local copy of the session; what follows starts a new one.
    Restart,
    /// Nothing to apply (a part of a segment joined half way, or a duplicate).
    Skip,
}

/// Follows one stream's journal on a receiving node.
#[derive(Debug, Default)]
pub struct Mirror {
    /// The journal and the newest item applied from it.
    position: Option<(u64, u64)>,
    /// Renditions whose current segment was joined half way: their parts are skipped until
    /// the next segment starts.
    joining: BTreeMap<String, bool>,
    /// After a reset, renditions not yet seen start out joining, until a session starts
    /// among the items kept (at or after this sequence number).
    after_reset: Option<u64>,
}

impl Mirror {
    pub fn new() -> Mirror {
        Mirror::default()
    }

    /// Where to resubscribe from: (journal id, newest sequence number held).
    pub fn position(&self) -> Option<(u64, u64)> {
        self.position
    }

    /// Takes the next item from journal `journal`, in the order the origin sent them.
    pub fn accept(&mut self, journal: u64, item: FeedItem) -> MirrorStep {
        if let FeedEvent::Reset { kept_from } = item.event {
            self.joining.clear();
            self.after_reset = Some(kept_from);
            self.position = Some((journal, 0));
            return MirrorStep::Restart;
        }
        if let Some((j, last)) = self.position {
            if j == journal && item.seq <= last {
                return MirrorStep::Skip;
            }
        }
        self.position = Some((journal, item.seq));
        match &item.event {
            FeedEvent::Session { .. } if self.after_reset.is_none_or(|kept_from| item.seq >= kept_from) => {
                // A session starting here starts whole (one from the baseline started long ago).
                self.joining.clear();
                self.after_reset = None;
            }
            FeedEvent::Part { rendition, starts_segment, .. } => {
                let joining = self.joining.entry(rendition.clone()).or_insert(self.after_reset.is_some());
                if *starts_segment {
                    *joining = false;
                }
                if *joining {
                    return MirrorStep::Skip;
                }
            }
            FeedEvent::SegmentEnd { rendition, .. }
                if self.joining.get(rendition.as_str()).copied().unwrap_or(self.after_reset.is_some()) =>
            {
                // The end of the segment joined half way: the next one is whole.
                self.joining.insert(rendition.clone(), false);
                return MirrorStep::Skip;
            }
            _ => {}
        }
        MirrorStep::Apply(item.event)
    }
}
