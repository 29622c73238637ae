//! Keys from a DRM provider's SPEKE v2 key server, for content whose protection names one
//! (`cbcs` only): the key and what Widevine, PlayReady and FairPlay players need to find
//! its license.
//!
//! # Contract
//! - The license actor asks for a key where it would otherwise make one (the origin of a
//!   live stream at each rotation, the keeper of an asset once); the exchange runs in a
//!   task of its own, so key requests of viewers are never held up, and one content has at
//!   most one exchange under way.
//! - The key id is made here (the encryptor's choice, as SPEKE has it); a live key's
//!   period index is the segment number it starts at. The answer is checked
//!   ([`crate::cpix::parse_response`]) and the key recorded wrapped under the KEK like any
//!   other, with the provider's signaling beside it ([`DrmRecord`]).
//! - A failure is logged with the content and counted
//!   (`tessera_key_server_requests_total{outcome}`), and asked again after a pause that
//!   doubles from 2 s to a minute; the content's media waits for its key meanwhile (a node
//!   never serves encrypted content in clear).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tessera_raft::{Command, DrmRecord, KeyRecord};

use crate::actor::LicenseNode;
use crate::cpix::{self, KeyRequest};
use crate::keys::{hex, ContentKey, Kek};

/// A key server's answer to a CPIX document: its body, or why there is none.
pub type KeyServerAnswer = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// The DRM systems whose signaling is asked for.
pub const SYSTEMS: [&str; 3] = [cpix::WIDEVINE, cpix::PLAYREADY, cpix::FAIRPLAY];

/// A content key, wrapped, as the catalog records it.
pub fn key_record(
    kek: &Kek,
    content: &str,
    key: &ContentKey,
    from_msn: u64,
    drm: Vec<DrmRecord>,
) -> Result<KeyRecord, crate::keys::KeyError> {
    let wrapped = kek.wrap(content, key)?;
    Ok(KeyRecord { kid: hex(&key.kid), wrapped, from_msn, created_ms: 0, drm })
}

/// Why a key did not come from the key server.
#[derive(Debug, thiserror::Error)]
enum ProviderError {
    #[error("key server: {0}")]
    Server(String),
    #[error("key server's answer: {0}")]
    Answer(#[from] cpix::CpixError),
    #[error("{0}")]
    Key(#[from] crate::keys::KeyError),
    #[error("catalog: {0}")]
    Catalog(#[from] tessera_cluster::ClusterError),
}

/// A failed exchange is tried again after this long, doubling up to [`LAST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(2);
const LAST_PAUSE: Duration = Duration::from_secs(60);

/// The contents whose key exchange is under way, and those waiting out a failure.
#[derive(Default)]
struct State {
    under_way: HashSet<String>,
    /// When each content may be asked again, and the pause after its next failure.
    paused: HashMap<String, (Instant, Duration)>,
}

impl State {
    /// Whether an exchange for `content` may start now; if so, it is under way.
    fn begin(&mut self, content: &str) -> bool {
        let waiting = self.paused.get(content).is_some_and(|(until, _)| Instant::now() < *until);
        !waiting && self.under_way.insert(content.to_string())
    }

    fn end(&mut self, content: &str, succeeded: bool) {
        self.under_way.remove(content);
        if succeeded {
            self.paused.remove(content);
        } else {
            let pause = self.paused.get(content).map_or(FIRST_PAUSE, |(_, p)| *p);
            self.paused.insert(content.to_string(), (Instant::now() + pause, (pause * 2).min(LAST_PAUSE)));
        }
    }
}

/// The key exchanges of this node.
#[derive(Clone, Default)]
pub struct Exchanges(Arc<Mutex<State>>);

impl Exchanges {
    /// Starts the exchange of a key for `content` from `from_msn` at the key server `url`,
    /// unless one is under way or a failed one's pause has not passed.
    pub fn start(
        &self,
        node: Arc<dyn LicenseNode>,
        kek: Arc<Kek>,
        (url, content): (String, String),
        from_msn: u64,
        kid: [u8; 16],
    ) {
        if !self.0.lock().expect("exchanges").begin(&content) {
            return;
        }
        let exchanges = self.clone();
        tokio::spawn(async move {
            let result = exchange(&*node, &kek, &url, &content, from_msn, kid).await;
            exchanges.0.lock().expect("exchanges").end(&content, result.is_ok());
            match result {
                Ok(systems) => {
                    metrics::counter!("tessera_key_server_requests_total", "outcome" => "keyed").increment(1);
                    metrics::counter!("tessera_license_keys_made_total").increment(1);
                    tracing::info!(%content, kid = %hex(&kid), from_msn, systems, "content key from the key server");
                }
                Err(e) => {
                    metrics::counter!("tessera_key_server_requests_total", "outcome" => "failed").increment(1);
                    tracing::warn!(%content, %url, error = %e, "no key from the key server; asking again after a pause");
                }
            }
        });
    }
}

/// One exchange: the request, the answer checked, the key recorded.
async fn exchange(
    node: &dyn LicenseNode,
    kek: &Kek,
    url: &str,
    content: &str,
    from_msn: u64,
    kid: [u8; 16],
) -> Result<usize, ProviderError> {
    let period = content.starts_with("live/").then_some(from_msn);
    let document = cpix::request_document(&KeyRequest { content_id: content, kid, period, systems: &SYSTEMS });
    let answer = node.ask_key_server(url, document).await.map_err(ProviderError::Server)?;
    let provided = cpix::parse_response(&answer, &kid)?;
    let drm: Vec<DrmRecord> = provided
        .signals
        .iter()
        .map(|s| DrmRecord {
            system_id: s.system_id.clone(),
            pssh: s.pssh.as_ref().map(|p| B64.encode(p)),
            hls: s.hls_media.clone(),
        })
        .collect();
    let systems = drm.len();
    let key = ContentKey { kid, key: provided.key };
    let record = key_record(kek, content, &key, from_msn, drm)?;
    node.propose(Command::AddKey { content: content.to_string(), key: record }).await?;
    Ok(systems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_exchange_at_a_time_and_a_failure_waits_out_a_doubling_pause() {
        let mut st = State::default();
        assert!(st.begin("live/a"));
        assert!(!st.begin("live/a"), "under way");
        assert!(st.begin("live/b"), "another content");
        st.end("live/a", false);
        assert!(!st.begin("live/a"), "paused after a failure");
        assert_eq!(st.paused["live/a"].1, FIRST_PAUSE * 2, "the next pause doubles");
        st.paused.get_mut("live/a").unwrap().0 = Instant::now();
        assert!(st.begin("live/a"), "the pause has passed");
        st.end("live/a", true);
        assert!(!st.paused.contains_key("live/a"), "a success forgets the failures");
        for _ in 0..10 {
            st.end("live/c", false);
        }
        assert_eq!(st.paused["live/c"].1, LAST_PAUSE);
    }
}
