use super::*;
use crate::catalog::{AssetRecord, NodeRecord, Proposal, SourceRecord};
use crate::catalog::{AssetRejection, JobRejection, NodeRejection};
use crate::RecordedRendition;

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    for id in [1, 2] {
        let node = NodeRecord {
            id,
            cluster_addr: format!("n{id}:1"),
            http_addr: format!("n{id}:2"),
            joined_ms: 0,
            region: None,
        };
        c.apply(&Proposal { at_ms: 0, command: Command::PutNode { node } });
    }
    let source = SourceRecord {
        node: 1,
        size: 10,
        sha256: "ab".repeat(32),
        container: "mp4".into(),
        duration_ms: 60_000,
        video: None,
        audio: None,
    };
    let asset = AssetRecord {
        id: "film".into(),
        title: "Film".into(),
        source,
        state: AssetState::Uploaded,
        keep_source: true,
        created_ms: 0,
    };
    c.apply(&Proposal { at_ms: 0, command: Command::AddAsset { asset } });
    let jobs = vec![("src".to_string(), "source".to_string()), ("720p".to_string(), "720p:2500".to_string())];
    c.apply(&Proposal { at_ms: 0, command: Command::AddJobs { asset: "film".into(), jobs, segments_total: 30 } });
    c
}

fn at(c: &mut Catalog, at_ms: i64, command: Command) -> Outcome {
    c.apply(&Proposal { at_ms, command })
}

fn claim(node: NodeId) -> Command {
    Command::ClaimJob { asset: "film".into(), rendition: "720p".into(), node, lease_ms: 10_000 }
}

fn renew(node: NodeId, epoch: u64, segments_done: u32) -> Command {
    Command::RenewJob { asset: "film".into(), rendition: "720p".into(), node, epoch, lease_ms: 10_000, segments_done }
}

fn finish(node: NodeId, epoch: u64, rendition: &str) -> Command {
    Command::FinishJob { asset: "film".into(), rendition: rendition.into(), node, epoch }
}

fn fail(node: NodeId, epoch: u64) -> Command {
    Command::FailJob { asset: "film".into(), rendition: "720p".into(), node, epoch, error: "encoder crashed".into() }
}

fn job(c: &Catalog) -> &JobRecord {
    &c.jobs[&job_key("film", "720p")]
}

#[test]
fn a_lease_lapses_to_another_worker_which_resumes_at_the_checkpoint_and_the_first_is_fenced_off() {
    let mut c = catalog();
    assert_eq!(c.assets["film"].state, AssetState::Transcoding);
    assert_eq!(c.jobs_of("film").count(), 2);
    let first = at(&mut c, 1_000, claim(1));
    assert_eq!(first, Outcome::JobLease(JobLease { node: 1, epoch: 1, until_ms: 11_000 }));
    assert!(
        matches!(at(&mut c, 2_000, claim(2)), Outcome::Rejected(Rejection::Job(JobRejection::JobNotClaimable { .. }))),
        "held"
    );
    assert_eq!(at(&mut c, 9_000, renew(1, 1, 12)), Outcome::JobLease(JobLease { node: 1, epoch: 1, until_ms: 19_000 }));
    assert_eq!(job(&c).segments_done, 12, "the checkpoint");
    // Node 1 goes quiet; its lease lapses and node 2 takes over from the checkpoint.
    assert!(matches!(at(&mut c, 19_000, claim(2)), Outcome::Rejected(_)), "not before the lease ends");
    assert_eq!(at(&mut c, 19_001, claim(2)), Outcome::JobLease(JobLease { node: 2, epoch: 2, until_ms: 29_001 }));
    let j = job(&c);
    assert_eq!((j.attempts, j.segments_done), (1, 12), "a lapsed lease is an attempt; the checkpoint stays");
    assert_eq!(j.epochs, vec![(0, 1), (12, 2)]);
    assert_eq!((j.epoch_of(11), j.epoch_of(12), j.epoch_of(29)), (Some(1), Some(2), Some(2)), "who made which segment");
    assert!(j.last_error.as_deref().unwrap().contains("lapsed"));
    // Node 1 comes back: everything it says is refused.
    let fenced = |o: Outcome| {
        matches!(o, Outcome::Rejected(Rejection::Job(JobRejection::StaleJobLease { node: 1, epoch: 1, .. })))
    };
    assert!(fenced(at(&mut c, 20_000, renew(1, 1, 20))));
    assert!(fenced(at(&mut c, 20_000, finish(1, 1, "720p"))));
    assert!(fenced(at(&mut c, 20_000, fail(1, 1))));
    assert_eq!(at(&mut c, 21_000, finish(2, 2, "720p")), Outcome::Done);
    assert_eq!((job(&c).state, job(&c).output_node), (JobState::Done, Some(2)), "one output, node 2's");
    assert!(matches!(at(&mut c, 22_000, finish(2, 2, "720p")), Outcome::Rejected(_)), "finished once");
    assert_eq!(c.assets["film"].state, AssetState::Transcoding, "the source job is not done");
    let src = Command::ClaimJob { asset: "film".into(), rendition: "src".into(), node: 1, lease_ms: 5_000 };
    assert!(matches!(at(&mut c, 23_000, src), Outcome::JobLease(JobLease { epoch: 1, .. })));
    assert_eq!(at(&mut c, 24_000, finish(1, 1, "src")), Outcome::Done);
    assert_eq!(c.assets["film"].state, AssetState::Ready, "every job done");
}

#[test]
fn failures_back_off_then_land_in_the_dead_letter_state_and_can_be_retried() {
    let mut c = catalog();
    let mut now = 0;
    for attempt in 1..=MAX_ATTEMPTS {
        let Outcome::JobLease(l) = at(&mut c, now, claim(1)) else { panic!("claim {attempt} at {now}") };
        assert_eq!(at(&mut c, now + 10, fail(1, l.epoch)), Outcome::Done);
        assert_eq!(job(&c).attempts, attempt);
        if attempt < MAX_ATTEMPTS {
            let wait = job(&c).not_before_ms - (now + 10);
            assert_eq!(wait, (1000 << attempt).min(MAX_BACKOFF_MS), "backoff after attempt {attempt}");
            assert!(matches!(at(&mut c, now + 20, claim(2)), Outcome::Rejected(_)), "not during the backoff");
            now = job(&c).not_before_ms;
        }
    }
    assert_eq!(job(&c).state, JobState::Dead);
    assert_eq!(c.assets["film"].state, AssetState::Failed, "visible on the asset");
    assert!(matches!(
        at(&mut c, now + 1_000_000, claim(2)),
        Outcome::Rejected(Rejection::Job(JobRejection::JobNotClaimable { .. }))
    ));
    let retry = Command::RetryJob { asset: "film".into(), rendition: "720p".into() };
    assert_eq!(at(&mut c, now, retry), Outcome::Done);
    assert_eq!((job(&c).state, job(&c).attempts), (JobState::Pending, 0));
    assert!(matches!(at(&mut c, now, claim(2)), Outcome::JobLease(_)));
    assert_eq!(at(&mut c, now, Command::DeleteAsset { id: "film".into() }), Outcome::Done);
    assert!(c.jobs.is_empty(), "an asset's jobs go with it");
}

#[test]
fn jobs_are_added_once_for_a_known_asset_and_claimed_only_by_members() {
    let mut c = catalog();
    let again =
        Command::AddJobs { asset: "film".into(), jobs: vec![("720p".into(), "other".into())], segments_total: 1 };
    assert_eq!(at(&mut c, 5, again), Outcome::Done);
    assert_eq!(job(&c).spec, "720p:2500", "adding again changes nothing");
    let unknown = Command::AddJobs { asset: "none".into(), jobs: vec![], segments_total: 1 };
    assert_eq!(at(&mut c, 5, unknown), Outcome::Rejected(Rejection::Asset(AssetRejection::NoSuchAsset("none".into()))));
    let bad = Command::AddJobs { asset: "film".into(), jobs: vec![("a/b".into(), "x".into())], segments_total: 1 };
    assert!(matches!(at(&mut c, 5, bad), Outcome::Rejected(Rejection::Asset(AssetRejection::InvalidAsset(_)))));
    assert_eq!(at(&mut c, 5, claim(9)), Outcome::Rejected(Rejection::Node(NodeRejection::NoSuchNode(9))));
}

#[test]
fn a_recording_is_ready_when_finished_with_its_renditions_done_and_never_claimable() {
    let mut c = catalog();
    let asset = AssetRecord {
        id: "show-1".into(),
        title: "Show".into(),
        source: SourceRecord { container: "live".into(), duration_ms: 0, ..c.assets["film"].source.clone() },
        state: AssetState::Uploaded,
        keep_source: false,
        created_ms: 0,
    };
    at(&mut c, 5, Command::AddAsset { asset });
    assert_eq!(c.assets["show-1"].state, AssetState::Recording);
    let recorded =
        |rendition: &str| RecordedRendition { rendition: rendition.into(), epochs: vec![(0, 0), (7, 1)], segments: 12 };
    let finish = Command::FinishRecording {
        asset: "show-1".into(),
        duration_ms: 24_000,
        renditions: vec![recorded("src"), recorded("360p")],
    };
    assert_eq!(at(&mut c, 9, finish.clone()), Outcome::Done);
    let a = &c.assets["show-1"];
    assert_eq!((a.state, a.source.duration_ms), (AssetState::Ready, 24_000));
    let j = &c.jobs[&job_key("show-1", "360p")];
    assert_eq!((j.state, j.segments_done, j.epoch_of(6), j.epoch_of(7)), (JobState::Done, 12, Some(0), Some(1)));
    assert!(!j.claimable(1_000_000));
    assert!(
        matches!(at(&mut c, 10, finish), Outcome::Rejected(Rejection::Asset(AssetRejection::InvalidAsset(_)))),
        "finished once"
    );
    let other = Command::FinishRecording { asset: "film".into(), duration_ms: 1, renditions: vec![recorded("src")] };
    assert!(matches!(at(&mut c, 11, other), Outcome::Rejected(_)), "an upload is no recording");
}
