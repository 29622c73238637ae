//! Pull-through: a segment or init segment this node lacks (older than its subscription,
//! or from before a restart) is fetched once from a node that has it, concurrent requests
//! for it waiting on the same fetch, and kept in a bounded cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use tessera_packager::MediaFile;
use tessera_raft::NodeId;

use tessera_cluster::ClusterService;

use super::protocols::{fetch as fetch_from, FetchRequest};

/// How long one node gets to answer a fetch before the next is asked.
const ASK_PATIENCE: Duration = Duration::from_millis(800);

type Key = (String, String, MediaFile);

/// Fetched files, oldest dropped first beyond a byte budget.
struct Cache {
    files: HashMap<Key, Bytes>,
    order: VecDeque<Key>,
    bytes: usize,
    budget: usize,
}

impl Cache {
    fn put(&mut self, key: Key, data: Bytes) {
        if data.len() > self.budget || self.files.contains_key(&key) {
            return;
        }
        self.bytes += data.len();
        self.order.push_back(key.clone());
        self.files.insert(key, data);
        while self.bytes > self.budget {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(d) = self.files.remove(&old) {
                self.bytes -= d.len();
            }
        }
    }
}

pub(crate) struct PullThrough {
    cluster: ClusterService,
    cache: Mutex<Cache>,
    inflight: Mutex<HashMap<Key, Shared<BoxFuture<'static, Option<Bytes>>>>>,
}

impl PullThrough {
    pub(crate) fn new(cluster: ClusterService, budget: usize) -> PullThrough {
        let cache = Cache { files: HashMap::new(), order: VecDeque::new(), bytes: 0, budget };
        PullThrough { cluster, cache: Mutex::new(cache), inflight: Mutex::default() }
    }

    /// The file from the cache or from another node: the stream's origin first, then the others.
    pub(crate) async fn get(&self, stream: &str, rendition: &str, file: MediaFile) -> Option<Bytes> {
        let key: Key = (stream.to_string(), rendition.to_string(), file);
        if let Some(d) = self.cache.lock().expect("cache").files.get(&key) {
            metrics::counter!("tessera_relay_pulls_total", "result" => "cached").increment(1);
            return Some(d.clone());
        }
        let fetch = {
            let mut inflight = self.inflight.lock().expect("inflight");
            inflight
                .entry(key.clone())
                .or_insert_with(|| {
                    let (cluster, key) = (self.cluster.clone(), key.clone());
                    async move {
                        // Counted once per fetch, however many requests wait on it.
                        let got = fetch(&cluster, &key).await;
                        let result = if got.is_some() { "fetched" } else { "missing" };
                        metrics::counter!("tessera_relay_pulls_total", "result" => result).increment(1);
                        got
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        let got = fetch.await;
        self.inflight.lock().expect("inflight").remove(&key);
        if let Some(d) = &got {
            self.cache.lock().expect("cache").put(key, d.clone());
        }
        got
    }
}

/// Asks the origin, then every other node, until one has the file.
async fn fetch(cluster: &ClusterService, (stream, rendition, file): &Key) -> Option<Bytes> {
    let me = cluster.identity.id;
    let mut nodes: Vec<(NodeId, String, bool)> = cluster
        .catalog
        .read_local(|c| {
            let origin = c.streams.get(stream).and_then(|s| s.origin).map(|o| o.node);
            c.nodes
                .values()
                .filter(|n| n.id != me)
                .map(|n| (n.id, n.cluster_addr.clone(), Some(n.id) == origin))
                .collect()
        })
        .value;
    nodes.sort_by_key(|(_, _, origin)| !origin);
    for (id, addr, _) in nodes {
        let request = FetchRequest { stream: stream.clone(), rendition: rendition.clone(), file: *file };
        if let Ok(Some(data)) = tokio::time::timeout(ASK_PATIENCE, fetch_from(cluster, id, &addr, request)).await {
            tracing::debug!(stream, rendition, ?file, from = id, "pulled through");
            return Some(data);
        }
    }
    None
}
