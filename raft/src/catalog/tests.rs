use super::*;
use crate::catalog::{NodeRejection, StreamRejection};

fn p(at_ms: i64, command: Command) -> Proposal {
    Proposal { at_ms, command }
}

fn put(name: &str) -> Command {
    Command::PutStream { name: name.into(), ladder: None, token_sha256: None, create_only: true }
}

fn node(id: NodeId) -> Command {
    Command::PutNode {
        node: NodeRecord {
            id,
            cluster_addr: format!("10.0.0.{id}:7000"),
            http_addr: format!("10.0.0.{id}:8080"),
            joined_ms: 0,
            region: None,
        },
    }
}

#[test]
fn streams_are_created_updated_and_deleted_with_validation() {
    let mut c = Catalog::default();
    assert!(matches!(c.apply(&p(1, put("cam-1"))), Outcome::Stream(s) if s.created_ms == 1));
    assert_eq!(
        c.apply(&p(2, put("cam-1"))),
        Outcome::Rejected(Rejection::Stream(StreamRejection::StreamExists("cam-1".into())))
    );
    let update = Command::PutStream {
        name: "cam-1".into(),
        ladder: Some("source,360p:600".into()),
        token_sha256: Some("AB".repeat(32)),
        create_only: false,
    };
    let Outcome::Stream(s) = c.apply(&p(3, update)) else { panic!() };
    assert_eq!((s.created_ms, s.updated_ms), (1, 3));
    assert_eq!(s.token_sha256.as_deref(), Some("ab".repeat(32).as_str()), "hashes are stored lowercase");
    for bad in ["", "has space", "slash/name", &"x".repeat(65)] {
        assert_eq!(
            c.apply(&p(4, put(bad))),
            Outcome::Rejected(Rejection::Stream(StreamRejection::InvalidName(bad.into())))
        );
    }
    let bad_hash =
        Command::PutStream { name: "x".into(), ladder: None, token_sha256: Some("zz".into()), create_only: true };
    assert_eq!(c.apply(&p(4, bad_hash)), Outcome::Rejected(Rejection::Stream(StreamRejection::InvalidTokenHash)));
    assert_eq!(c.streams.len(), 1, "rejections change nothing");
    assert_eq!(c.apply(&p(5, Command::DeleteStream { name: "cam-1".into() })), Outcome::Done);
    assert_eq!(
        c.apply(&p(6, Command::DeleteStream { name: "cam-1".into() })),
        Outcome::Rejected(Rejection::Stream(StreamRejection::NoSuchStream("cam-1".into())))
    );
}

#[test]
fn the_archive_extent_is_recorded_and_a_record_without_one_still_reads() {
    let mut c = Catalog::default();
    c.apply(&p(1, put("cam-1")));
    let extent = ArchiveExtent { first_msn: 3, last_msn: 40, files: 76, bytes: 9_000_000 };
    let set = |archive| Command::SetArchive { stream: "cam-1".into(), archive };
    assert_eq!(c.apply(&p(2, set(Some(extent)))), Outcome::Done);
    assert_eq!(c.streams["cam-1"].archive, Some(extent));
    assert_eq!(c.apply(&p(3, set(None))), Outcome::Done);
    assert_eq!(c.streams["cam-1"].archive, None);
    let unknown = Command::SetArchive { stream: "nope".into(), archive: None };
    assert_eq!(
        c.apply(&p(4, unknown)),
        Outcome::Rejected(Rejection::Stream(StreamRejection::NoSuchStream("nope".into())))
    );
    // A record written before archives were recorded reads as having none.
    let old =
        r#"{"name":"x","ladder":null,"token_sha256":null,"created_ms":1,"updated_ms":1,"origin":null,"last_epoch":0}"#;
    assert_eq!(serde_json::from_str::<StreamRecord>(old).unwrap().archive, None);
}

#[test]
fn origin_epochs_only_grow_and_fence_the_old_holder() {
    let mut c = Catalog::default();
    c.apply(&p(0, node(1)));
    c.apply(&p(0, node(2)));
    c.apply(&p(0, put("s")));
    let acquire = |n| Command::AcquireOrigin { stream: "s".into(), node: n };
    assert_eq!(
        c.apply(&p(1, acquire(1))),
        Outcome::Origin(OriginLease { node: 1, epoch: 1, since_ms: 1, replaced: None })
    );
    assert!(c.may_publish("s", 1, 1));
    // Node 2 takes over (node 1 died): node 1's epoch is now stale, and node 2 knows whose
    // unreleased lease it replaced.
    let taken = OriginLease { node: 2, epoch: 2, since_ms: 2, replaced: Some(1) };
    assert_eq!(c.apply(&p(2, acquire(2))), Outcome::Origin(taken));
    assert!(!c.may_publish("s", 1, 1));
    assert!(c.may_publish("s", 2, 2));
    let release_old = Command::ReleaseOrigin { stream: "s".into(), node: 1, epoch: 1 };
    assert!(matches!(
        c.apply(&p(3, release_old)),
        Outcome::Rejected(Rejection::Stream(StreamRejection::StaleEpoch { .. }))
    ));
    assert_eq!(
        c.apply(&p(3, Command::DeleteStream { name: "s".into() })),
        Outcome::Rejected(Rejection::Stream(StreamRejection::StreamLive("s".into())))
    );
    assert_eq!(c.apply(&p(4, Command::ReleaseOrigin { stream: "s".into(), node: 2, epoch: 2 })), Outcome::Done);
    // A new lease never reuses an epoch.
    assert_eq!(
        c.apply(&p(5, acquire(1))),
        Outcome::Origin(OriginLease { node: 1, epoch: 3, since_ms: 5, replaced: None })
    );
    assert_eq!(c.apply(&p(6, acquire(9))), Outcome::Rejected(Rejection::Node(NodeRejection::NoSuchNode(9))));
}

#[test]
fn a_cluster_is_initialized_once_and_admits_nodes_with_fresh_ids() {
    let mut c = Catalog::default();
    let admit = Command::AdmitNode { cluster_addr: "a:7000".into(), http_addr: "a:8080".into() };
    assert_eq!(c.apply(&p(0, admit.clone())), Outcome::Rejected(Rejection::Node(NodeRejection::NotInitialized)));
    let first =
        NodeRecord { id: 1, cluster_addr: "n1:7000".into(), http_addr: "n1:8080".into(), joined_ms: 0, region: None };
    let init = Command::InitCluster {
        ca: CaRecord { cert_pem: "cert".into(), key_pem: "key".into() },
        first,
        join_sha256: "aa".repeat(32),
        admin_sha256: "BB".repeat(32),
    };
    assert_eq!(c.apply(&p(1, init.clone())), Outcome::Done);
    assert_eq!(c.apply(&p(2, init)), Outcome::Rejected(Rejection::Node(NodeRejection::AlreadyInitialized)));
    assert!(c.accepts(TokenKind::Join, &"aa".repeat(32)));
    assert!(c.accepts(TokenKind::Admin, &"bb".repeat(32)), "hashes compare lowercase");
    assert!(!c.accepts(TokenKind::Admin, &"aa".repeat(32)));
    let Outcome::Admitted(n2) = c.apply(&p(3, admit.clone())) else { panic!() };
    let Outcome::Admitted(n3) = c.apply(&p(4, admit)) else { panic!() };
    assert_eq!((n2.id, n3.id, n3.joined_ms), (2, 3, 4));
    c.apply(&p(5, Command::RevokeToken { kind: TokenKind::Join, sha256: "aa".repeat(32) }));
    assert!(!c.accepts(TokenKind::Join, &"aa".repeat(32)));
}

#[test]
fn removing_a_node_lapses_its_leases() {
    let mut c = Catalog::default();
    c.apply(&p(0, node(1)));
    c.apply(&p(0, put("s")));
    c.apply(&p(1, Command::AcquireOrigin { stream: "s".into(), node: 1 }));
    assert_eq!(c.apply(&p(2, Command::RemoveNode { id: 1 })), Outcome::Done);
    assert_eq!(c.streams["s"].origin, None);
    assert_eq!(c.streams["s"].last_epoch, 1);
    assert_eq!(
        c.apply(&p(3, Command::RemoveNode { id: 1 })),
        Outcome::Rejected(Rejection::Node(NodeRejection::NoSuchNode(1)))
    );
}

#[test]
fn the_same_log_gives_the_same_catalog_and_it_survives_a_snapshot() {
    let log: Vec<Proposal> = (0..200)
        .map(|i| {
            let name = format!("s{}", i % 7);
            p(
                i,
                match i % 5 {
                    0 => put(&name),
                    1 => node(i as u64 % 3),
                    2 => Command::AcquireOrigin { stream: name, node: i as u64 % 3 },
                    3 => Command::ReleaseOrigin { stream: name, node: i as u64 % 3, epoch: (i as u64 / 5) % 4 },
                    _ => Command::DeleteStream { name },
                },
            )
        })
        .collect();
    let (mut a, mut b) = (Catalog::default(), Catalog::default());
    let outa: Vec<Outcome> = log.iter().map(|x| a.apply(x)).collect();
    let outb: Vec<Outcome> = log.iter().map(|x| b.apply(x)).collect();
    assert_eq!(outa, outb);
    assert_eq!(a, b);
    let snap = serde_json::to_vec(&a).unwrap();
    assert_eq!(serde_json::from_slice::<Catalog>(&snap).unwrap(), a);
}

fn init(admin: &str) -> Command {
    Command::InitCluster {
        ca: CaRecord { cert_pem: format!("cert-{admin}"), key_pem: "key".into() },
        first: NodeRecord {
            id: 1,
            cluster_addr: "n1:7000".into(),
            http_addr: "n1:8080".into(),
            joined_ms: 0,
            region: None,
        },
        join_sha256: "aa".repeat(32),
        admin_sha256: admin.repeat(32),
    }
}

#[test]
fn an_export_imports_into_a_new_cluster_without_its_members() {
    // The old cluster: a live stream with a token, a scheduled release with a vote, a
    // leased VOD job, a second admin token.
    let mut old = Catalog::default();
    old.apply(&p(0, init("bb")));
    old.apply(&p(1, node(2)));
    let token = Some("cc".repeat(32));
    old.apply(&p(
        2,
        Command::PutStream {
            name: "cam".into(),
            ladder: Some("source,360p:600".into()),
            token_sha256: token.clone(),
            create_only: true,
        },
    ));
    old.apply(&p(3, Command::AcquireOrigin { stream: "cam".into(), node: 2 }));
    old.apply(&p(4, Command::AddToken { kind: TokenKind::Admin, sha256: "dd".repeat(32) }));
    let Outcome::Release(r) = old.apply(&p(
        5,
        Command::ScheduleRelease { content: "live/cam".into(), at_ms: 10_000, end_ms: None, regions: vec![] },
    )) else {
        panic!()
    };
    old.apply(&p(6, Command::ReleaseReady { id: r.id, node: 2, ready: true, detail: String::new() }));
    let source = SourceRecord {
        node: 2,
        size: 1,
        sha256: "ab".repeat(32),
        container: "mp4".into(),
        duration_ms: 1000,
        video: None,
        audio: None,
    };
    let asset = AssetRecord {
        id: "film".into(),
        title: "Film".into(),
        source,
        state: Default::default(),
        keep_source: false,
        created_ms: 0,
    };
    old.apply(&p(7, Command::AddAsset { asset }));
    old.apply(&p(
        8,
        Command::AddJobs { asset: "film".into(), jobs: vec![("360p".into(), "360p:800".into())], segments_total: 4 },
    ));
    assert!(matches!(
        old.apply(&p(
            9,
            Command::ClaimJob { asset: "film".into(), rendition: "360p".into(), node: 2, lease_ms: 60_000 }
        )),
        Outcome::JobLease(_)
    ));
    let export = old.export(10);
    let text = serde_json::to_string(&export).unwrap();
    assert!(!text.contains("cert-bb") && !text.contains(&"aa".repeat(32)), "no CA, no join token");

    let mut new = Catalog::default();
    new.apply(&p(20, init("ee")));
    let import = Command::ImportCatalog { export: Box::new(serde_json::from_str(&text).unwrap()) };
    assert_eq!(new.apply(&p(21, import.clone())), Outcome::Done);
    let cam = &new.streams["cam"];
    assert_eq!((cam.ladder.as_deref(), &cam.token_sha256, cam.origin), (Some("source,360p:600"), &token, None));
    assert!(new.accepts(TokenKind::Admin, &"bb".repeat(32)) && new.accepts(TokenKind::Admin, &"dd".repeat(32)));
    assert!(new.accepts(TokenKind::Admin, &"ee".repeat(32)), "the new cluster's own token stays");
    assert_eq!(new.ca.as_ref().unwrap().cert_pem, "cert-ee");
    assert_eq!(new.nodes.keys().copied().collect::<Vec<_>>(), vec![1]);
    let release = &new.releases[&r.id];
    assert_eq!((release.state, release.at_ms, release.ready.len()), (ReleaseState::Scheduled, 10_000, 0));
    let job = &new.jobs[&job_key("film", "360p")];
    assert_eq!((job.state, job.lease), (JobState::Pending, None), "claimable again by the new members");

    // Whole or not at all, and only once.
    assert!(matches!(new.apply(&p(22, import)), Outcome::Rejected(Rejection::Import(ImportRejection::NotEmpty(_)))));
    let mut newer = Catalog::default();
    let mut future = export.clone();
    future.format = EXPORT_FORMAT + 1;
    let refused = newer.apply(&p(0, Command::ImportCatalog { export: Box::new(future) }));
    assert_eq!(refused, Outcome::Rejected(Rejection::Import(ImportRejection::UnknownFormat(EXPORT_FORMAT + 1))));
    assert_eq!(newer, Catalog::default());
}
