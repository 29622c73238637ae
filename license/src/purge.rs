//! When a CDN must forget content, sans-IO: a content's rights changed (encryption, regions,
//! URL signing) or it stopped being served (its release ended, was taken down or
//! cancelled). Caches answer for the origin; once the rules behind an answer change, the
//! copies must go, however long they were given ([`crate::cache`] bounds that too).
//!
//! [`PurgeWatch::observe`] compares the catalog with what it saw last and names each
//! content to purge, with its reason; its first look only learns what is there. The node
//! drives it (`purge hooks`) and, when it leads the catalog, calls the configured hooks.

use std::collections::HashMap;

use serde::Serialize;
use tessera_raft::{Catalog, Protection, ReleaseState};

/// What decides how a content may be served from a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    mode: Protection,
    regions: Vec<String>,
    signed_urls: bool,
    /// Served now (no release, or an open one not past its end).
    served: bool,
}

/// One content a CDN must forget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purge {
    /// `live/NAME` or `vod/ASSET`.
    pub content: String,
    /// `rights_changed` or `taken_down`.
    pub reason: &'static str,
    /// The URL prefix of everything served for it (`/live/NAME/`, `/vod/ASSET/`).
    pub prefix: String,
}

/// What was seen last, by content.
#[derive(Debug, Default)]
pub struct PurgeWatch {
    seen: HashMap<String, Fingerprint>,
    primed: bool,
}

fn fingerprint(c: &Catalog, content: &str, now_ms: i64) -> Fingerprint {
    let p = c.protection.get(content);
    let served =
        c.release_of(content).is_none_or(|r| r.state == ReleaseState::Open && r.end_ms.is_none_or(|end| now_ms < end));
    Fingerprint {
        mode: p.map_or(Protection::None, |p| p.mode),
        regions: p.map(|p| p.regions.clone()).unwrap_or_default(),
        signed_urls: p.is_some_and(|p| p.signed_urls),
        served,
    }
}

impl PurgeWatch {
    /// The contents to purge since the last look, at `now_ms`.
    pub fn observe(&mut self, c: &Catalog, now_ms: i64) -> Vec<Purge> {
        let contents = c.protection.keys().chain(c.release_by_content.keys());
        let now: HashMap<String, Fingerprint> =
            contents.map(|content| (content.clone(), fingerprint(c, content, now_ms))).collect();
        let mut purges = Vec::new();
        if self.primed {
            for (content, was) in &self.seen {
                let open = Fingerprint { mode: Protection::None, regions: vec![], signed_urls: false, served: true };
                let is = now.get(content).unwrap_or(&open);
                let reason = if was.served && !is.served {
                    "taken_down"
                } else if (was.mode, &was.regions, was.signed_urls) != (is.mode, &is.regions, is.signed_urls) {
                    "rights_changed"
                } else {
                    continue;
                };
                purges.push(Purge { content: content.clone(), reason, prefix: format!("/{content}/") });
            }
            for (content, is) in now.iter().filter(|(c, _)| !self.seen.contains_key(*c)) {
                // Content that gains rules (or a gate) it did not have: what caches hold was served without them.
                if !is.served || is.mode != Protection::None || !is.regions.is_empty() || is.signed_urls {
                    let reason = if is.served { "rights_changed" } else { "taken_down" };
                    purges.push(Purge { content: content.clone(), reason, prefix: format!("/{content}/") });
                }
            }
        }
        purges.sort_by(|a, b| a.content.cmp(&b.content));
        self.seen = now;
        self.primed = true;
        purges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_raft::{Command, Proposal};

    fn apply(c: &mut Catalog, command: Command) {
        c.apply(&Proposal { at_ms: 1, command });
    }

    #[test]
    fn changed_rights_and_ended_releases_are_purged_once() {
        let mut c = Catalog::default();
        apply(&mut c, Command::SetRights { content: "live/a".into(), regions: vec!["eu".into()] });
        let mut w = PurgeWatch::default();
        assert!(w.observe(&c, 0).is_empty(), "the first look learns");
        assert!(w.observe(&c, 0).is_empty(), "nothing changed");
        apply(&mut c, Command::SetRights { content: "live/a".into(), regions: vec!["us".into()] });
        apply(&mut c, Command::SetProtection { content: "vod/film".into(), mode: Protection::Aes128 });
        let purges = w.observe(&c, 0);
        let got: Vec<_> = purges.iter().map(|p| (p.content.as_str(), p.reason, p.prefix.as_str())).collect();
        assert_eq!(got, vec![("live/a", "rights_changed", "/live/a/"), ("vod/film", "rights_changed", "/vod/film/")]);
        assert!(w.observe(&c, 0).is_empty(), "purged once");
        // Rules lifted: what caches hold is still of the old rules, but serving it harms no
        // right; a rule set back to what it was is a change again.
        apply(&mut c, Command::SetRights { content: "live/a".into(), regions: vec![] });
        assert_eq!(w.observe(&c, 0).len(), 1);
    }

    #[test]
    fn a_release_past_its_end_is_taken_down_and_an_opening_purges_nothing() {
        let mut c = Catalog::default();
        let schedule =
            Command::ScheduleRelease { content: "live/final".into(), at_ms: 100, end_ms: Some(1_000), regions: vec![] };
        apply(&mut c, schedule);
        let mut w = PurgeWatch::default();
        assert!(w.observe(&c, 0).is_empty());
        let id = c.release_by_content["live/final"];
        c.releases.get_mut(&id).unwrap().state = ReleaseState::Open;
        assert!(w.observe(&c, 500).is_empty(), "caches held only refusals, never stored");
        let purges = w.observe(&c, 1_000);
        assert_eq!(
            purges.iter().map(|p| (p.content.as_str(), p.reason)).collect::<Vec<_>>(),
            vec![("live/final", "taken_down")]
        );
        assert!(w.observe(&c, 2_000).is_empty());
    }
}
