//! Remote actors between two real QUIC endpoints with mutual TLS on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::*;
use crate::identity::ClusterCa;
use crate::transport::QuicTransport;

/// Echoes what it is sent (doubling the number), stops when told `0`.
struct Echo;

#[derive(Debug, Serialize, Deserialize)]
struct EchoArgs {
    name: String,
    refuse: bool,
}

impl RemoteKind for Echo {
    const NAME: &'static str = "test.echo";
    type Args = EchoArgs;
    type In = u32;
    type Out = (String, u32);
}

struct EchoActor {
    name: String,
    outbox: Outbox<Echo>,
    gone: Arc<Mutex<Vec<String>>>,
}

impl Hosted<Echo> for EchoActor {
    fn deliver(&mut self, n: u32, body: Bytes) {
        if n == 0 {
            self.outbox.stop("asked to stop by a zero");
            return;
        }
        let _ = self.outbox.try_send((self.name.clone(), n * 2), body);
    }

    fn owner_gone(&mut self, why: &str) {
        self.gone.lock().unwrap().push(why.to_string());
        self.outbox.stop("owner gone");
    }
}

struct Pair {
    host: QuicTransport,
    owner: QuicTransport,
    gone: Arc<Mutex<Vec<String>>>,
}

fn pair() -> Pair {
    let ca = ClusterCa::create().unwrap();
    let host = QuicTransport::bind("127.0.0.1:0".parse().unwrap(), &ca.issue(1).unwrap()).unwrap();
    let owner = QuicTransport::bind("127.0.0.1:0".parse().unwrap(), &ca.issue(2).unwrap()).unwrap();
    let gone: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = gone.clone();
    host::host::<Echo, _, _>(&host, LinkConfig::default(), move |peer, args: EchoArgs, outbox| {
        let gone = seen.clone();
        async move {
            assert_eq!(peer.node, Some(2), "the owner's certificate names it");
            if args.refuse {
                return Err("no room here".to_string());
            }
            Ok(Box::new(EchoActor { name: args.name, outbox, gone }) as Box<dyn Hosted<Echo>>)
        }
    });
    host.start();
    owner.start();
    Pair { host, owner, gone }
}

type Events = mpsc::UnboundedReceiver<RemoteEvent<(String, u32)>>;

async fn start(p: &Pair, name: &str, config: &LinkConfig) -> Result<(RemoteRef<Echo>, Events), SpawnError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let addr = p.host.local_addr().to_string();
    let args = EchoArgs { name: name.into(), refuse: name == "refused" };
    let remote = spawn::<Echo>(&p.owner, 1, &addr, &args, config, move |e| tx.send(e).is_ok()).await?;
    Ok((remote, rx))
}

async fn next(events: &mut Events) -> RemoteEvent<(String, u32)> {
    tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("an event within 5 s").expect("open")
}

#[tokio::test]
async fn messages_and_their_media_cross_both_ways_in_order_and_a_stop_is_reported_once() {
    let p = pair();
    let (remote, mut events) = start(&p, "a", &LinkConfig::default()).await.unwrap();
    assert_eq!(remote.node(), 1);
    for n in 1..=100u32 {
        remote.try_send(n, Bytes::from(vec![n as u8; n as usize * 100])).unwrap();
    }
    for n in 1..=100u32 {
        match next(&mut events).await {
            RemoteEvent::Message((name, m), body) => {
                assert_eq!((name.as_str(), m), ("a", n * 2));
                assert_eq!(body, Bytes::from(vec![n as u8; n as usize * 100]), "the media crosses as it is");
            }
            RemoteEvent::Down(d) => panic!("down early: {d}"),
        }
    }
    // The actor stops itself: its owner hears why, once.
    remote.try_send(0, Bytes::new()).unwrap();
    assert!(
        matches!(next(&mut events).await, RemoteEvent::Down(Down::Stopped(why)) if why == "asked to stop by a zero")
    );
    assert!(tokio::time::timeout(Duration::from_millis(500), events.recv()).await.unwrap().is_none(), "nothing after");
    assert_eq!(remote.try_send(1, Bytes::new()), Err(QueueError::Closed), "a stopped link takes no more");
    assert!(p.gone.lock().unwrap().is_empty(), "the owner was never taken as gone");
}

#[tokio::test]
async fn an_owner_that_stops_or_lets_go_is_gone_for_the_actor() {
    let p = pair();
    let (remote, mut events) = start(&p, "b", &LinkConfig::default()).await.unwrap();
    remote.stop("no longer needed");
    assert!(matches!(next(&mut events).await, RemoteEvent::Down(Down::Stopped(why)) if why == "owner gone"));
    assert_eq!(p.gone.lock().unwrap().as_slice(), ["its owner stopped it: no longer needed"]);

    let (remote, _events) = start(&p, "c", &LinkConfig::default()).await.unwrap();
    drop(remote);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(p.gone.lock().unwrap()[1], "its owner stopped it: its owner let go of it");
}

#[tokio::test]
async fn a_host_that_refuses_says_why() {
    let p = pair();
    match start(&p, "refused", &LinkConfig::default()).await {
        Err(SpawnError::Refused { node: 1, why }) => assert_eq!(why, "no room here"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_hosting_node_that_goes_away_is_lost_for_the_owner() {
    let p = pair();
    let config = LinkConfig { silence: Duration::from_millis(600), ..LinkConfig::default() };
    let (remote, mut events) = start(&p, "d", &config).await.unwrap();
    remote.try_send(3, Bytes::new()).unwrap();
    assert!(matches!(next(&mut events).await, RemoteEvent::Message((_, 6), _)));
    p.host.close();
    match next(&mut events).await {
        RemoteEvent::Down(Down::Lost(why)) => assert!(why.contains("node 1"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(events.recv().await.is_none(), "one down, then nothing");
}

#[tokio::test]
async fn a_full_mailbox_refuses_at_once_instead_of_waiting() {
    let p = pair();
    let config = LinkConfig { capacity: 4, ..LinkConfig::default() };
    let (remote, _events) = start(&p, "e", &config).await.unwrap();
    let big = Bytes::from(vec![0u8; 4 << 20]);
    let results: Vec<_> = (1..=64).map(|n| remote.try_send(n, big.clone())).collect();
    assert!(results.contains(&Err(QueueError::Full)), "64 messages of 4 MiB do not fit a queue of 4");
    assert!(results[0].is_ok());
}
