use super::*;
use crate::catalog::{NodeRecord, Proposal};
use crate::catalog::{NodeRejection, ReleaseRejection};

fn cluster(nodes: u64) -> Catalog {
    let mut c = Catalog::default();
    for id in 1..=nodes {
        let region = Some(if id == 1 { "eu" } else { "us" }.to_string());
        let node = NodeRecord {
            id,
            cluster_addr: format!("n{id}:7000"),
            http_addr: format!("n{id}:8080"),
            joined_ms: 0,
            region,
        };
        c.apply(&Proposal { at_ms: 0, command: Command::PutNode { node } });
    }
    c
}

fn apply(c: &mut Catalog, at_ms: i64, command: Command) -> Outcome {
    c.apply(&Proposal { at_ms, command })
}

fn schedule(c: &mut Catalog, content: &str, at_ms: i64, end_ms: Option<i64>, regions: &[&str]) -> ReleaseRecord {
    let regions = regions.iter().map(|r| r.to_string()).collect();
    match apply(c, 10, Command::ScheduleRelease { content: content.into(), at_ms, end_ms, regions }) {
        Outcome::Release(r) => r,
        o => panic!("not scheduled: {o:?}"),
    }
}

fn vote(c: &mut Catalog, id: ReleaseId, node: NodeId, phase: ReleasePhase, clock_ms: i64) -> Outcome {
    let revision = c.releases[&id].revision;
    apply(c, clock_ms, Command::ReleaseClock { id, node, revision, phase, clock_ms })
}

#[test]
fn a_release_opens_when_a_majority_of_clocks_have_passed_it_and_not_before() {
    let mut c = cluster(3);
    let r = schedule(&mut c, "live/premiere", 1_000, None, &[]);
    assert_eq!(c.visibility("live/premiere", Some("eu"), 999_999), Visibility::Gated(Gate::NotReleased));
    assert_eq!(c.visibility("live/other", None, 0), Visibility::Public, "ungoverned content is public");
    // Node 1's clock runs fast: it votes early, alone, and opens nothing.
    let early = Command::ReleaseClock { id: r.id, node: 1, revision: 1, phase: ReleasePhase::Open, clock_ms: 999 };
    assert!(matches!(
        apply(&mut c, 999, early),
        Outcome::Rejected(Rejection::Release(ReleaseRejection::InvalidRelease(_)))
    ));
    vote(&mut c, r.id, 1, ReleasePhase::Open, 1_000);
    assert_eq!(c.releases[&r.id].state, ReleaseState::Scheduled);
    assert_eq!(c.visibility("live/premiere", None, 5_000), Visibility::Gated(Gate::NotReleased));
    // A duplicate changes nothing; the second node makes a majority (node 3, slow, is not awaited).
    vote(&mut c, r.id, 1, ReleasePhase::Open, 1_001);
    assert_eq!(c.releases[&r.id].open_votes.len(), 1);
    let Outcome::Release(open) = vote(&mut c, r.id, 2, ReleasePhase::Open, 1_004) else { panic!() };
    assert_eq!((open.state, open.opened_ms), (ReleaseState::Open, Some(1_004)));
    assert_eq!(c.visibility("live/premiere", None, 0), Visibility::Public, "open whatever the node's clock says");
    // The late vote is a harmless duplicate.
    assert!(
        matches!(vote(&mut c, r.id, 3, ReleasePhase::Open, 1_500), Outcome::Release(r) if r.opened_ms == Some(1_004))
    );
}

#[test]
fn a_takedown_closes_by_quorum_and_early_by_each_nodes_own_clock() {
    let mut c = cluster(3);
    let r = schedule(&mut c, "vod/film", 1_000, Some(5_000), &[]);
    vote(&mut c, r.id, 1, ReleasePhase::Open, 1_000);
    vote(&mut c, r.id, 3, ReleasePhase::Open, 1_000);
    assert_eq!(c.visibility("vod/film", None, 4_999), Visibility::Public);
    assert_eq!(c.visibility("vod/film", None, 5_000), Visibility::Gated(Gate::TakenDown), "a node's own clock");
    assert_eq!(c.due_clock_votes(2, 5_000).len(), 1);
    vote(&mut c, r.id, 2, ReleasePhase::End, 5_000);
    vote(&mut c, r.id, 3, ReleasePhase::End, 5_002);
    assert_eq!(c.releases[&r.id].state, ReleaseState::Ended);
    assert_eq!(c.visibility("vod/film", None, 0), Visibility::Gated(Gate::TakenDown));
    // Over: a new release of the same content may follow.
    let again = schedule(&mut c, "vod/film", 9_000, None, &[]);
    assert_eq!(c.release_of("vod/film").map(|r| r.id), Some(again.id));
}

#[test]
fn regions_limit_the_nodes_that_serve() {
    let mut c = cluster(3);
    let r = schedule(&mut c, "live/match", 1_000, None, &["eu"]);
    vote(&mut c, r.id, 2, ReleasePhase::Open, 1_000);
    vote(&mut c, r.id, 3, ReleasePhase::Open, 1_000);
    assert_eq!(c.visibility("live/match", Some("eu"), 2_000), Visibility::Public);
    assert_eq!(c.visibility("live/match", Some("us"), 2_000), Visibility::Gated(Gate::OutOfRegion));
    assert_eq!(c.visibility("live/match", None, 2_000), Visibility::Gated(Gate::OutOfRegion));
    let widen =
        Command::MoveRelease { id: r.id, at_ms: None, end_ms: None, regions: Some(vec!["eu".into(), "us".into()]) };
    assert!(matches!(apply(&mut c, 3_000, widen), Outcome::Release(_)));
    assert_eq!(c.visibility("live/match", Some("us"), 3_000), Visibility::Public);
}

#[test]
fn moving_a_release_starts_a_new_count_and_refuses_votes_for_the_old_time() {
    let mut c = cluster(3);
    let r = schedule(&mut c, "live/show", 1_000, None, &[]);
    vote(&mut c, r.id, 1, ReleasePhase::Open, 1_000);
    let moved = Command::MoveRelease { id: r.id, at_ms: Some(2_000), end_ms: None, regions: None };
    let Outcome::Release(m) = apply(&mut c, 1_001, moved) else { panic!() };
    assert_eq!((m.at_ms, m.revision, m.open_votes.len()), (2_000, 2, 0));
    // A vote cast under the old revision (in flight during the move) is refused.
    let stale = Command::ReleaseClock { id: r.id, node: 2, revision: 1, phase: ReleasePhase::Open, clock_ms: 1_002 };
    assert_eq!(
        apply(&mut c, 1_002, stale),
        Outcome::Rejected(Rejection::Release(ReleaseRejection::StaleRelease { id: r.id, revision: 2 }))
    );
    assert!(c.due_clock_votes(2, 1_500).is_empty());
    assert_eq!(c.next_release_moment(1_500), Some(2_000));
    vote(&mut c, r.id, 2, ReleasePhase::Open, 2_000);
    vote(&mut c, r.id, 3, ReleasePhase::Open, 2_001);
    assert_eq!(c.releases[&r.id].state, ReleaseState::Open);
    // Open: its time is history, its end can still be set (a takedown), it cannot be cancelled.
    let back = Command::MoveRelease { id: r.id, at_ms: Some(500), end_ms: None, regions: None };
    assert_eq!(apply(&mut c, 2_100, back), Outcome::Rejected(Rejection::Release(ReleaseRejection::ReleaseOpen(r.id))));
    let takedown = Command::MoveRelease { id: r.id, at_ms: None, end_ms: Some(Some(3_000)), regions: None };
    assert!(matches!(apply(&mut c, 2_100, takedown), Outcome::Release(r) if r.end_ms == Some(3_000)));
    assert_eq!(
        apply(&mut c, 2_200, Command::CancelRelease { id: r.id }),
        Outcome::Rejected(Rejection::Release(ReleaseRejection::ReleaseOpen(r.id)))
    );
}

#[test]
fn a_cancelled_release_stays_gated_and_only_one_release_per_content_is_pending() {
    let mut c = cluster(1);
    let r = schedule(&mut c, "live/show", 1_000, None, &[]);
    let twice = Command::ScheduleRelease { content: "live/show".into(), at_ms: 2_000, end_ms: None, regions: vec![] };
    assert_eq!(
        apply(&mut c, 20, twice.clone()),
        Outcome::Rejected(Rejection::Release(ReleaseRejection::ReleasePending {
            content: "live/show".into(),
            id: r.id
        }))
    );
    assert!(
        matches!(apply(&mut c, 30, Command::CancelRelease { id: r.id }), Outcome::Release(r) if r.state == ReleaseState::Cancelled)
    );
    assert!(matches!(apply(&mut c, 31, Command::CancelRelease { id: r.id }), Outcome::Release(_)), "idempotent");
    assert_eq!(c.visibility("live/show", None, 5_000), Visibility::Gated(Gate::Cancelled));
    assert!(c.due_clock_votes(1, 5_000).is_empty(), "nothing to vote on");
    let vote_late = vote(&mut c, r.id, 1, ReleasePhase::Open, 5_000);
    assert!(matches!(vote_late, Outcome::Release(r) if r.state == ReleaseState::Cancelled), "a vote cannot revive it");
    let Outcome::Release(next) = apply(&mut c, 40, twice) else { panic!() };
    assert!(next.id > r.id);
    // One node: its own clock is the quorum.
    vote(&mut c, next.id, 1, ReleasePhase::Open, 2_000);
    assert_eq!(c.visibility("live/show", None, 2_000), Visibility::Public);
}

#[test]
fn bad_releases_are_refused_and_change_nothing() {
    let mut c = cluster(3);
    let bad = |content: &str, at_ms, end_ms, regions: Vec<String>| Command::ScheduleRelease {
        content: content.into(),
        at_ms,
        end_ms,
        regions,
    };
    for content in ["show", "live/", "tv/show", "live/a b", "live/x/y"] {
        assert_eq!(
            apply(&mut c, 1, bad(content, 5, None, vec![])),
            Outcome::Rejected(Rejection::Release(ReleaseRejection::InvalidContent(content.into())))
        );
    }
    assert!(matches!(
        apply(&mut c, 1, bad("live/x", 5, Some(5), vec![])),
        Outcome::Rejected(Rejection::Release(ReleaseRejection::InvalidRelease(_)))
    ));
    assert!(matches!(
        apply(&mut c, 1, bad("live/x", 5, None, vec!["e u".into()])),
        Outcome::Rejected(Rejection::Release(ReleaseRejection::InvalidRelease(_)))
    ));
    let no_such = Command::MoveRelease { id: 9, at_ms: Some(1), end_ms: None, regions: None };
    assert_eq!(apply(&mut c, 1, no_such), Outcome::Rejected(Rejection::Release(ReleaseRejection::NoSuchRelease(9))));
    assert!(c.releases.is_empty() && c.release_by_content.is_empty());
    let r = schedule(&mut c, "live/x", 100, None, &[]);
    let stranger = Command::ReleaseClock { id: r.id, node: 7, revision: 1, phase: ReleasePhase::Open, clock_ms: 100 };
    assert_eq!(apply(&mut c, 100, stranger), Outcome::Rejected(Rejection::Node(NodeRejection::NoSuchNode(7))));
}

#[test]
fn votes_of_removed_nodes_do_not_count_and_readiness_keeps_its_since() {
    let mut c = cluster(3);
    let r = schedule(&mut c, "live/x", 100, None, &[]);
    vote(&mut c, r.id, 3, ReleasePhase::Open, 100);
    apply(&mut c, 101, Command::RemoveNode { id: 3 });
    vote(&mut c, r.id, 1, ReleasePhase::Open, 102);
    // Two nodes remain: a majority is both of them; node 3's vote does not count.
    assert_eq!(c.releases[&r.id].state, ReleaseState::Scheduled);
    vote(&mut c, r.id, 2, ReleasePhase::Open, 103);
    assert_eq!(c.releases[&r.id].state, ReleaseState::Open);
    let ready = |ready| Command::ReleaseReady { id: r.id, node: 2, ready, detail: "following".into() };
    apply(&mut c, 50, ready(true));
    apply(&mut c, 60, ready(true));
    assert_eq!(c.releases[&r.id].ready[&2].since_ms, 50);
    apply(&mut c, 70, ready(false));
    assert_eq!(c.releases[&r.id].ready[&2], Readiness { ready: false, since_ms: 70, detail: "following".into() });
}

#[test]
fn releases_survive_a_snapshot_and_older_snapshots_read_without_them() {
    let mut c = cluster(3);
    schedule(&mut c, "live/x", 100, Some(200), &["eu"]);
    let snap = serde_json::to_vec(&c).unwrap();
    assert_eq!(serde_json::from_slice::<Catalog>(&snap).unwrap(), c);
    let old = r#"{"streams":{},"nodes":{},"ca":null,"access":{"join_sha256":[],"admin_sha256":[]}}"#;
    assert!(serde_json::from_str::<Catalog>(old).unwrap().releases.is_empty());
}
