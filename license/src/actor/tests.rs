use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use ractor::call_t;
use tessera_raft::{NodeRecord, Proposal as Entry};

use super::*;

const KEK: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A node whose catalog applies proposals at once; origin of `live/cam` at segment 40.
struct FakeNode {
    catalog: Mutex<Catalog>,
    now: AtomicI64,
    origin: bool,
    /// How node 2 answers a stream count: `None`, it does not answer.
    node_two: Option<Result<(), u32>>,
    asked_node_two: AtomicI64,
}

impl FakeNode {
    fn new(now: i64, origin: bool) -> Arc<Self> {
        Arc::new(FakeNode {
            catalog: Mutex::default(),
            now: AtomicI64::new(now),
            origin,
            node_two: None,
            asked_node_two: AtomicI64::new(0),
        })
    }
}

impl LicenseNode for FakeNode {
    fn peek(&self, f: &mut dyn FnMut(&Catalog)) {
        f(&self.catalog.lock().unwrap())
    }
    fn propose(&self, command: Command) -> Proposal {
        let at_ms = self.now.load(Ordering::SeqCst);
        self.catalog.lock().unwrap().apply(&Entry { at_ms, command });
        Box::pin(async { Ok(()) })
    }
    fn origin_edge(&self, name: &str) -> Option<u64> {
        (self.origin && name == "cam").then_some(40)
    }
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
    fn node_id(&self) -> NodeId {
        1
    }
    fn count_at(&self, node: NodeId, _claim: StreamClaim) -> RemoteCount {
        assert_eq!(node, 2, "only node 2 is another node");
        self.asked_node_two.fetch_add(1, Ordering::SeqCst);
        let answer = self.node_two;
        Box::pin(async move { answer })
    }

    fn ask_key_server(&self, _url: &str, _document: String) -> crate::provider::KeyServerAnswer {
        Box::pin(async { Err("no key server in these tests".to_string()) })
    }
}

async fn start(node: Arc<FakeNode>) -> ActorRef<LicenseMsg> {
    let cfg = LicenseConfig {
        node,
        kek: Arc::new(Kek::parse(KEK).unwrap()),
        rotation: Duration::from_secs(60),
        rotation_lead_segments: 3,
        streams: Arc::default(),
        jwks: None,
    };
    Actor::spawn(None, LicenseActor, cfg).await.unwrap().0
}

fn query(token: Option<String>, kid: &str) -> KeyQuery {
    KeyQuery {
        content: "live/cam".into(),
        kid: kid.into(),
        token,
        client: "10.0.0.1".parse().unwrap(),
        region: None,
        released: true,
    }
}

#[tokio::test]
async fn the_origin_makes_and_rotates_keys_and_a_token_it_issued_gets_them() {
    let node = FakeNode::new(1_000_000, true);
    node.propose(Command::SetProtection { content: "live/cam".into(), mode: Protection::Aes128 }).await.unwrap();
    let actor = start(node.clone()).await;
    actor.cast(LicenseMsg::Tick).unwrap();
    let claims = Claims {
        sub: "v".into(),
        content: "live/cam".into(),
        exp: 2_000,
        iat: 1_000,
        regions: None,
        max_streams: None,
    };
    let token = call_t!(actor, LicenseMsg::Issue, 1000, claims).unwrap().unwrap();
    let first = node.catalog.lock().unwrap().protection["live/cam"].keys[0].clone();
    assert_eq!(first.from_msn, 0, "the first key covers the stream from its start");
    let key = call_t!(actor, LicenseMsg::Key, 1000, query(Some(token.clone()), &first.kid)).unwrap().unwrap();
    // The key handed out is the one wrapped in the catalog.
    let kek = Kek::parse(KEK).unwrap();
    assert_eq!(kek.unwrap("live/cam", parse_kid(&first.kid).unwrap(), &first.wrapped).unwrap().key, key);
    assert!(node.catalog.lock().unwrap().token_secret.is_some(), "the cluster's token secret was made once");

    // Not yet time to rotate; then a minute on, a new key from three segments past the edge.
    actor.cast(LicenseMsg::Tick).unwrap();
    node.now.fetch_add(60_000, Ordering::SeqCst);
    actor.cast(LicenseMsg::Tick).unwrap();
    let _ = call_t!(
        actor,
        LicenseMsg::Issue,
        1000,
        Claims { sub: "x".into(), content: "x".into(), exp: 0, iat: 0, regions: None, max_streams: None }
    );
    let keys = node.catalog.lock().unwrap().protection["live/cam"].keys.clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[1].from_msn, 43);
    let next = call_t!(actor, LicenseMsg::Key, 1000, query(Some(token.clone()), &keys[1].kid)).unwrap().unwrap();
    assert_ne!(next, key);
    let refused = call_t!(actor, LicenseMsg::Key, 1000, query(None, &keys[1].kid)).unwrap();
    assert_eq!(refused, Err(Denial::NoToken));
    actor.stop(None);
}

#[tokio::test]
async fn a_node_that_is_not_the_origin_makes_no_key() {
    let node = FakeNode::new(0, false);
    node.propose(Command::SetProtection { content: "live/cam".into(), mode: Protection::Aes128 }).await.unwrap();
    let actor = start(node.clone()).await;
    actor.cast(LicenseMsg::Tick).unwrap();
    let claims =
        Claims { sub: "v".into(), content: "live/cam".into(), exp: 10, iat: 0, regions: None, max_streams: None };
    let token = call_t!(actor, LicenseMsg::Issue, 1000, claims).unwrap().unwrap();
    assert!(node.catalog.lock().unwrap().protection["live/cam"].keys.is_empty());
    let refused = call_t!(actor, LicenseMsg::Key, 1000, query(Some(token), &"ab".repeat(16))).unwrap();
    assert_eq!(refused.unwrap_err().code(), "no_such_key");
    actor.stop(None);
}

/// A subject whose streams node 2 counts (node 1 is this one).
fn counted_by_node_two() -> String {
    (0..)
        .map(|i| format!("viewer-{i}"))
        .find(|s| counting_nodes(s, [1, 2])[0] == 2)
        .expect("some subject is counted by node 2")
}

#[tokio::test]
async fn a_limited_stream_is_counted_by_its_subjects_counting_node_or_here_when_it_does_not_answer() {
    for (node_two, expected) in [
        (Some(Ok(())), Ok(())),
        (Some(Err(1)), Err(Denial::StreamLimit(1))),
        (None, Ok(())), // no answer: counted here
    ] {
        let node = Arc::new(FakeNode { node_two, ..Arc::into_inner(FakeNode::new(0, true)).unwrap() });
        for id in [1, 2] {
            let record = NodeRecord {
                id,
                cluster_addr: format!("n{id}:7000"),
                http_addr: format!("n{id}:8080"),
                joined_ms: 0,
                region: None,
            };
            node.propose(Command::PutNode { node: record }).await.unwrap();
        }
        node.propose(Command::SetProtection { content: "live/cam".into(), mode: Protection::Aes128 }).await.unwrap();
        let actor = start(node.clone()).await;
        actor.cast(LicenseMsg::Tick).unwrap();
        let sub = counted_by_node_two();
        let claims = Claims { sub, content: "live/cam".into(), exp: 10, iat: 0, regions: None, max_streams: Some(1) };
        let token = call_t!(actor, LicenseMsg::Issue, 1000, claims).unwrap().unwrap();
        let kid = node.catalog.lock().unwrap().protection["live/cam"].keys[0].kid.clone();
        let answer = call_t!(actor, LicenseMsg::Key, 1000, query(Some(token), &kid)).unwrap();
        assert_eq!(answer.map(|_| ()), expected, "node 2 answering {node_two:?}");
        assert_eq!(node.asked_node_two.load(Ordering::SeqCst), 1, "node 2 is asked first, once");
        actor.stop(None);
    }
}

#[tokio::test]
async fn a_license_actor_that_stops_is_started_again_and_hands_out_the_same_keys() {
    let node = FakeNode::new(1_000_000, true);
    node.propose(Command::SetProtection { content: "live/cam".into(), mode: Protection::Aes128 }).await.unwrap();
    let cfg = LicenseConfig {
        node: node.clone(),
        kek: Arc::new(Kek::parse(KEK).unwrap()),
        rotation: Duration::from_secs(600),
        rotation_lead_segments: 3,
        streams: Arc::default(),
        jwks: None,
    };
    // The supervisor ticks the actor: the origin's first key is made without anyone asking.
    let (license, supervisor) = crate::supervisor::start(cfg, Duration::from_millis(20)).await.unwrap();
    let patience = Duration::from_secs(1);
    let claims = Claims {
        sub: "v".into(),
        content: "live/cam".into(),
        exp: 2_000,
        iat: 1_000,
        regions: None,
        max_streams: None,
    };
    let token = license.call(|r| LicenseMsg::Issue(claims, r), patience).await.unwrap().unwrap();
    let kid = loop {
        if let Some(k) = node.catalog.lock().unwrap().protection["live/cam"].keys.first() {
            break k.kid.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let before = license.call(|r| LicenseMsg::Key(query(Some(token.clone()), &kid), r), patience).await;
    let before = before.unwrap().unwrap();

    for how in ["stop", "kill"] {
        let first = license.get().expect("the actor runs");
        if how == "stop" {
            first.stop(Some("gone".into()));
        } else {
            first.kill();
        }
        let again = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match license.get() {
                    Some(a) if a.get_id() != first.get_id() => break a,
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("after {how}, a new license actor within 5 s"));
        assert_ne!(again.get_id(), first.get_id());
        // The new actor reads its keys from the catalog: the viewer gets the same key.
        let after = license.call(|r| LicenseMsg::Key(query(Some(token.clone()), &kid), r), patience).await;
        assert_eq!(after.unwrap().unwrap(), before, "after {how}");
    }
    assert_eq!(node.catalog.lock().unwrap().protection["live/cam"].keys.len(), 1, "no key was made twice");

    // Stopping the supervisor (the node stopping) stops the actor, which is not started again.
    let last = license.get().expect("the actor runs");
    supervisor.stop_and_wait(None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(last.get_status(), ractor::ActorStatus::Stopped);
    assert!(license.get().is_none());
}
