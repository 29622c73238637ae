//! The origin's record of one live stream: what a subscriber needs to follow it.

use std::collections::{BTreeMap, VecDeque};

use crate::event::{FeedEvent, FeedItem};

/// The state a fresh subscriber needs before the items kept: as of the oldest item kept.
#[derive(Debug, Default, Clone)]
struct Baseline {
    session: Option<FeedItem>,
    plan: Option<FeedItem>,
    transcoder: Option<FeedItem>,
    inits: BTreeMap<String, FeedItem>,
    end: Option<FeedItem>,
}

impl Baseline {
    fn absorb(&mut self, item: FeedItem) {
        match &item.event {
            FeedEvent::Session { .. } => *self = Baseline { session: Some(item), ..Baseline::default() },
            FeedEvent::Plan(_) => self.plan = Some(item),
            FeedEvent::Transcoder(_) => self.transcoder = Some(item),
            FeedEvent::Init { rendition, .. } => {
                self.inits.insert(rendition.clone(), item);
            }
            FeedEvent::End(_) => self.end = Some(item),
            _ => {}
        }
    }

    fn items(&self) -> Vec<FeedItem> {
        let mut out: Vec<FeedItem> = [&self.session, &self.plan, &self.transcoder, &self.end]
            .into_iter()
            .flatten()
            .chain(self.inits.values())
            .cloned()
            .collect();
        out.sort_by_key(|i| i.seq);
        out
    }
}

/// What a subscriber receives first.
#[derive(Debug, PartialEq)]
pub struct Catchup {
    /// The subscriber's position could not be continued: `items` starts with a `Reset`.
    pub fresh: bool,
    pub items: Vec<FeedItem>,
}

/// One stream's journal on its origin: every event, numbered, the last `keep_segments`
/// segments of it kept.
#[derive(Debug)]
pub struct Journal {
    /// Tells this journal from an earlier one (another process, another origin): a
    /// subscriber's position is only good in the journal that gave it.
    id: u64,
    next_seq: u64,
    items: VecDeque<FeedItem>,
    baseline: Baseline,
    keep_segments: usize,
    /// Per segment number, the sequence number of its first item (in any rendition).
    segment_starts: VecDeque<(u64, u64)>,
    /// Per rendition, the segment its last part belonged to.
    open: BTreeMap<String, u64>,
    session: Option<u64>,
    /// A copy of another node's journal (see [`Journal::copy`]).
    copied: bool,
}

impl Journal {
    /// `id` must differ from any journal of the same stream before it (a random number).
    pub fn new(id: u64, keep_segments: usize) -> Journal {
        Journal {
            id,
            next_seq: 1,
            items: VecDeque::new(),
            baseline: Baseline::default(),
            keep_segments: keep_segments.max(1),
            segment_starts: VecDeque::new(),
            open: BTreeMap::new(),
            session: None,
            copied: false,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The sequence number of the newest item, 0 before any.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The session the journal follows.
    pub fn session(&self) -> Option<u64> {
        self.session
    }

    /// Records an event; returns the item to send to current subscribers. A `Part` gets
    /// its `starts_segment` here.
    pub fn record(&mut self, mut event: FeedEvent) -> FeedItem {
        if let FeedEvent::Part { rendition, segment, starts_segment, .. } = &mut event {
            *starts_segment = self.open.get(rendition.as_str()) != Some(segment);
        }
        let item = FeedItem { seq: self.next_seq, event };
        self.push(item.clone());
        item
    }

    /// Whether this journal copies another node's (see [`Self::copy`]).
    pub fn is_copy(&self) -> bool {
        self.copied
    }

    /// Takes an item of journal `id`, another node's, as a node relaying what it follows
    /// receives it: kept under the same id and number, so a subscriber may resume on any
    /// node that relays that journal. A `Reset` starts the copy over; the items before its
    /// `kept_from` form the baseline. Items already held are ignored.
    pub fn copy(&mut self, id: u64, item: FeedItem) {
        if let FeedEvent::Reset { kept_from } = item.event {
            *self = Journal { copied: true, next_seq: kept_from, ..Journal::new(id, self.keep_segments) };
            return;
        }
        if id != self.id || !self.copied {
            // Another journal without a reset first: start over from this item.
            *self = Journal { copied: true, next_seq: item.seq, ..Journal::new(id, self.keep_segments) };
        }
        if item.seq < self.next_seq {
            // Before the first item kept, older items are the baseline; after, duplicates.
            if self.items.is_empty() {
                if let FeedEvent::Session { session, .. } = &item.event {
                    self.session = Some(*session);
                }
                self.baseline.absorb(item);
            }
            return;
        }
        self.push(item);
    }

    /// Appends an item numbered `next_seq` or later.
    fn push(&mut self, item: FeedItem) {
        match &item.event {
            FeedEvent::Session { session, .. } => {
                self.session = Some(*session);
                self.open.clear();
                self.segment_starts.clear();
            }
            FeedEvent::Part { rendition, segment, .. } => {
                self.open.insert(rendition.clone(), *segment);
            }
            _ => {}
        }
        self.next_seq = item.seq + 1;
        if let Some((_, segment)) = item.event.segment() {
            if self.segment_starts.back().is_none_or(|(s, _)| segment > *s) {
                self.segment_starts.push_back((segment, item.seq));
            }
        }
        self.items.push_back(item);
        self.trim();
    }

    /// Drops whole segments beyond the ones to keep, folding what they set into the baseline.
    fn trim(&mut self) {
        while self.segment_starts.len() > self.keep_segments {
            self.segment_starts.pop_front();
            let keep_from = self.segment_starts.front().map_or(self.next_seq, |(_, seq)| *seq);
            while self.items.front().is_some_and(|i| i.seq < keep_from) {
                let item = self.items.pop_front().expect("checked");
                self.baseline.absorb(item);
            }
        }
    }

    /// Where a subscriber at `position` stands once sent everything this journal holds: its
    /// head, or the subscriber's own position if that is further on (a relay lagging behind
    /// its subscriber never takes it back).
    pub fn sent_all(&self, position: Option<(u64, u64)>) -> (u64, u64) {
        let head = self.last_seq();
        (self.id, position.filter(|(j, _)| *j == self.id).map_or(head, |(_, after)| after.max(head)))
    }

    /// What a subscriber that holds everything up to `after` in journal `journal` receives
    /// first; `None` for a subscriber that holds nothing.
    pub fn since(&self, position: Option<(u64, u64)>) -> Catchup {
        let oldest = self.items.front().map_or(self.next_seq, |i| i.seq);
        if let Some((journal, after)) = position {
            // Continuable: same journal and nothing missed was trimmed. A subscriber ahead
            // of this journal (a relay that lags behind it) gets nothing until the journal
            // passes its position, never a fresh start that would take it backwards.
            if journal == self.id && after + 1 >= oldest {
                let items = self.items.iter().filter(|i| i.seq > after).cloned().collect();
                return Catchup { fresh: false, items };
            }
        }
        let mut items = vec![FeedItem { seq: 0, event: FeedEvent::Reset { kept_from: oldest } }];
        items.extend(self.baseline.items());
        items.extend(self.items.iter().cloned());
        Catchup { fresh: true, items }
    }
}

#[cfg(test)]
mod tests;
