//! Scheduled releases: content no node serves until the cluster has committed that its
//! release time has come, and stops serving at its end (a takedown).
//!
//! # How time enters
//! The state machine reads no clock. A release opens by *quorum time*: every node, when
//! its own clock passes the release time, proposes a clock vote ([`Command::ReleaseClock`]);
//! the entry that brings the votes up to a majority of the catalog's nodes opens the
//! release, and a node serves the content once it has applied that entry. So:
//! - a node whose clock runs fast votes early, but one vote (a minority) opens nothing;
//! - a node whose clock runs slow votes late, but the majority does not wait for it;
//! - a node cut off from the quorum cannot learn of the opening, so it keeps the content
//!   gated, and opens when it applies the entry after it reconnects;
//! - the release opens no earlier than the moment a majority of clocks have passed it,
//!   i.e. the skew of the fastest clock in the slowest majority.
//!
//! Duplicate votes (a node retrying, a new leader re-proposing) are idempotent. Votes name
//! the release's `revision`: moving a release starts a new count, and a vote cast for the
//! old time is refused ([`Rejection::Release(ReleaseRejection::StaleRelease)`]).
//!
//! A takedown (`end_ms`) closes by the same quorum vote, and in addition each node stops
//! serving at its own clock's `end_ms`: for a takedown, early is the safe side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{valid_name, Catalog, Command, NodeId, Outcome, Rejection};
use crate::catalog::{NodeRejection, ReleaseRejection};

/// Identifies a release.
pub type ReleaseId = u64;

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Announced; gated everywhere.
    Scheduled,
    /// Committed open: served (in its regions) by every node that has applied it.
    Open,
    /// Taken down at its end.
    Ended,
    /// Cancelled before it opened; the content stays gated.
    Cancelled,
}

/// Which of a release's two moments a clock vote is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleasePhase {
    Open,
    End,
}

/// Whether a node holds the content, ready to serve it at release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Since when (proposal time) the node has been in this state.
    pub since_ms: i64,
    /// What the node holds, in words (for the admin API).
    pub detail: String,
}

/// A release of one piece of content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseRecord {
    pub id: ReleaseId,
    /// `live/NAME` or `vod/ASSET`.
    pub content: String,
    /// When it opens, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// When it is taken down, if ever.
    pub end_ms: Option<i64>,
    /// The regions whose nodes serve it; empty: every node.
    pub regions: Vec<String>,
    pub state: ReleaseState,
    /// Grows with every move; clock votes name it.
    pub revision: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The proposal time of the entry that opened it (the commit), and of the one that
    /// ended or cancelled it.
    pub opened_ms: Option<i64>,
    pub closed_ms: Option<i64>,
    /// Each voter's clock when it voted to open, and to end.
    pub open_votes: BTreeMap<NodeId, i64>,
    pub end_votes: BTreeMap<NodeId, i64>,
    /// Per node: does it hold the content yet.
    pub ready: BTreeMap<NodeId, Readiness>,
}

/// Why a node does not serve some content now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Scheduled, not committed open (as far as this node has applied).
    NotReleased,
    Cancelled,
    /// Open, but not in this node's region.
    OutOfRegion,
    TakenDown,
}

/// Whether content may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// No release governs it, or its release is open here.
    Public,
    Gated(Gate),
}

/// Checks a content id: `live/NAME` or `vod/ASSET`, each a valid name.
pub fn valid_content(content: &str) -> bool {
    match content.split_once('/') {
        Some(("live" | "vod", name)) => valid_name(name),
        _ => false,
    }
}

fn check_times(at_ms: i64, end_ms: Option<i64>) -> Result<(), Rejection> {
    match end_ms {
        Some(end) if end <= at_ms => {
            Err(Rejection::Release(ReleaseRejection::InvalidRelease("the end must come after the release time".into())))
        }
        _ => Ok(()),
    }
}

fn check_regions(regions: &[String]) -> Result<(), Rejection> {
    if regions.len() > 64 || regions.iter().any(|r| !valid_name(r)) {
        return Err(Rejection::Release(ReleaseRejection::InvalidRelease(
            "regions: up to 64 names of a-z, A-Z, 0-9, '-', '_', '.'".into(),
        )));
    }
    Ok(())
}

impl Catalog {
    /// The release that governs `content` now: its newest.
    pub fn release_of(&self, content: &str) -> Option<&ReleaseRecord> {
        self.release_by_content.get(content).and_then(|id| self.releases.get(id))
    }

    /// Whether a node in `region`, whose clock reads `clock_ms`, may serve `content`.
    pub fn visibility(&self, content: &str, region: Option<&str>, clock_ms: i64) -> Visibility {
        let Some(r) = self.release_of(content) else { return Visibility::Public };
        match r.state {
            ReleaseState::Scheduled => Visibility::Gated(Gate::NotReleased),
            ReleaseState::Cancelled => Visibility::Gated(Gate::Cancelled),
            ReleaseState::Ended => Visibility::Gated(Gate::TakenDown),
            ReleaseState::Open if r.end_ms.is_some_and(|end| clock_ms >= end) => Visibility::Gated(Gate::TakenDown),
            ReleaseState::Open if !r.serves_region(region) => Visibility::Gated(Gate::OutOfRegion),
            ReleaseState::Open => Visibility::Public,
        }
    }

    /// The clock votes a node should propose now: for every release whose time its clock
    /// has passed and that it has not voted for yet.
    pub fn due_clock_votes(&self, node: NodeId, clock_ms: i64) -> Vec<Command> {
        let vote =
            |r: &ReleaseRecord, phase| Command::ReleaseClock { id: r.id, node, revision: r.revision, phase, clock_ms };
        let mut due = Vec::new();
        for r in self.releases.values() {
            match r.state {
                ReleaseState::Scheduled if clock_ms >= r.at_ms && !r.open_votes.contains_key(&node) => {
                    due.push(vote(r, ReleasePhase::Open))
                }
                ReleaseState::Open
                    if r.end_ms.is_some_and(|end| clock_ms >= end) && !r.end_votes.contains_key(&node) =>
                {
                    due.push(vote(r, ReleasePhase::End))
                }
                _ => {}
            }
        }
        due
    }

    /// The next moment (on this node's clock) at which a release opens or ends.
    pub fn next_release_moment(&self, clock_ms: i64) -> Option<i64> {
        self.releases
            .values()
            .filter_map(|r| match r.state {
                ReleaseState::Scheduled => Some(r.at_ms),
                ReleaseState::Open => r.end_ms,
                _ => None,
            })
            .filter(|t| *t > clock_ms)
            .min()
    }

    /// The releases not over yet (scheduled or open).
    pub fn pending_releases(&self) -> impl Iterator<Item = &ReleaseRecord> {
        self.releases.values().filter(|r| matches!(r.state, ReleaseState::Scheduled | ReleaseState::Open))
    }

    pub(super) fn apply_release(&mut self, now: i64, command: &Command) -> Result<Outcome, Rejection> {
        match command {
            Command::ScheduleRelease { content, at_ms, end_ms, regions } => {
                if !valid_content(content) {
                    return Err(Rejection::Release(ReleaseRejection::InvalidContent(content.clone())));
                }
                check_times(*at_ms, *end_ms)?;
                check_regions(regions)?;
                if let Some(r) = self.release_of(content).filter(|r| r.is_pending()) {
                    return Err(Rejection::Release(ReleaseRejection::ReleasePending {
                        content: content.clone(),
                        id: r.id,
                    }));
                }
                let id = self.releases.keys().next_back().map_or(1, |m| m + 1);
                let r = ReleaseRecord {
                    id,
                    content: content.clone(),
                    at_ms: *at_ms,
                    end_ms: *end_ms,
                    regions: regions.clone(),
                    state: ReleaseState::Scheduled,
                    revision: 1,
                    created_ms: now,
                    updated_ms: now,
                    opened_ms: None,
                    closed_ms: None,
                    open_votes: BTreeMap::new(),
                    end_votes: BTreeMap::new(),
                    ready: BTreeMap::new(),
                };
                self.releases.insert(id, r.clone());
                self.release_by_content.insert(content.clone(), id);
                Ok(Outcome::Release(r))
            }
            Command::MoveRelease { id, at_ms, end_ms, regions } => {
                let r = self.releases.get_mut(id).ok_or(Rejection::Release(ReleaseRejection::NoSuchRelease(*id)))?;
                if !r.is_pending() {
                    return Err(Rejection::Release(ReleaseRejection::ReleaseOver(*id)));
                }
                if at_ms.is_some_and(|at| at != r.at_ms) && r.state != ReleaseState::Scheduled {
                    return Err(Rejection::Release(ReleaseRejection::ReleaseOpen(*id)));
                }
                let new_at = at_ms.unwrap_or(r.at_ms);
                let new_end = end_ms.unwrap_or(r.end_ms);
                check_times(new_at, new_end)?;
                if let Some(regions) = regions {
                    check_regions(regions)?;
                    r.regions = regions.clone();
                }
                if new_at != r.at_ms {
                    r.open_votes.clear();
                }
                if new_end != r.end_ms {
                    r.end_votes.clear();
                }
                (r.at_ms, r.end_ms) = (new_at, new_end);
                r.revision += 1;
                r.updated_ms = now;
                Ok(Outcome::Release(r.clone()))
            }
            Command::CancelRelease { id } => {
                let r = self.releases.get_mut(id).ok_or(Rejection::Release(ReleaseRejection::NoSuchRelease(*id)))?;
                match r.state {
                    ReleaseState::Scheduled => {
                        r.state = ReleaseState::Cancelled;
                        r.revision += 1;
                        (r.closed_ms, r.updated_ms) = (Some(now), now);
                        Ok(Outcome::Release(r.clone()))
                    }
                    ReleaseState::Cancelled => Ok(Outcome::Release(r.clone())),
                    ReleaseState::Open => Err(Rejection::Release(ReleaseRejection::ReleaseOpen(*id))),
                    ReleaseState::Ended => Err(Rejection::Release(ReleaseRejection::ReleaseOver(*id))),
                }
            }
            Command::ReleaseClock { id, node, revision, phase, clock_ms } => {
                if !self.nodes.contains_key(node) {
                    return Err(Rejection::Node(NodeRejection::NoSuchNode(*node)));
                }
                let quorum = self.nodes.len() / 2 + 1;
                let members = &self.nodes;
                let r = self.releases.get_mut(id).ok_or(Rejection::Release(ReleaseRejection::NoSuchRelease(*id)))?;
                let (votes, moment, from, to) = match phase {
                    ReleasePhase::Open => {
                        (&mut r.open_votes, Some(r.at_ms), ReleaseState::Scheduled, ReleaseState::Open)
                    }
                    ReleasePhase::End => (&mut r.end_votes, r.end_ms, ReleaseState::Open, ReleaseState::Ended),
                };
                if r.state != from {
                    // Already done (a duplicate), or no longer wanted: nothing to change.
                    return Ok(Outcome::Release(r.clone()));
                }
                if *revision != r.revision {
                    return Err(Rejection::Release(ReleaseRejection::StaleRelease { id: *id, revision: r.revision }));
                }
                if moment.is_none_or(|m| *clock_ms < m) {
                    return Err(Rejection::Release(ReleaseRejection::InvalidRelease(format!(
                        "node {node}'s clock has not reached the moment"
                    ))));
                }
                votes.insert(*node, *clock_ms);
                if votes.keys().filter(|n| members.contains_key(n)).count() >= quorum {
                    r.state = to;
                    match to {
                        ReleaseState::Open => r.opened_ms = Some(now),
                        _ => r.closed_ms = Some(now),
                    }
                    r.updated_ms = now;
                }
                Ok(Outcome::Release(r.clone()))
            }
            Command::ReleaseReady { id, node, ready, detail } => {
                if !self.nodes.contains_key(node) {
                    return Err(Rejection::Node(NodeRejection::NoSuchNode(*node)));
                }
                let r = self.releases.get_mut(id).ok_or(Rejection::Release(ReleaseRejection::NoSuchRelease(*id)))?;
                let since_ms = match r.ready.get(node) {
                    Some(old) if old.ready == *ready => old.since_ms,
                    _ => now,
                };
                r.ready
                    .insert(*node, Readiness { ready: *ready, since_ms, detail: detail.chars().take(200).collect() });
                Ok(Outcome::Done)
            }
            _ => unreachable!("not a release command"),
        }
    }
}

impl ReleaseRecord {
    /// Scheduled or open: not over.
    pub fn is_pending(&self) -> bool {
        matches!(self.state, ReleaseState::Scheduled | ReleaseState::Open)
    }

    /// Whether nodes of `region` serve it.
    pub fn serves_region(&self, region: Option<&str>) -> bool {
        self.regions.is_empty() || region.is_some_and(|g| self.regions.iter().any(|r| r == g))
    }
}

#[cfg(test)]
mod tests;
