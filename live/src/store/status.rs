//! What `/streams` tells operators about each stream: its renditions and its transcoder.

use std::sync::Arc;

use super::{SegmentStore, StreamEntry};

/// What `/streams` says about a stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamStatus {
    pub name: String,
    pub live: bool,
    pub renditions: Vec<RenditionStatus>,
    pub transcoder: Option<TranscoderView>,
    /// Players of the stream on this node ([`super::viewers`]).
    pub viewers: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RenditionStatus {
    pub name: String,
    pub offered: bool,
    pub dropped: Option<String>,
    pub last_msn: Option<u64>,
    /// What the multivariant playlist says of it: measured over recent segments, bits/s.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TranscoderView {
    pub worker_pid: Option<u32>,
    pub worker_restarts: u64,
    pub load: f64,
}

impl SegmentStore {
    /// What each stream is doing, for operators.
    pub fn status(&self) -> Vec<StreamStatus> {
        let viewers = self.viewers.counts(std::time::Instant::now());
        let entries: Vec<(String, Arc<StreamEntry>)> =
            self.streams.lock().expect("streams lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut out: Vec<StreamStatus> = entries
            .into_iter()
            .map(|(name, e)| {
                let st = e.state.lock().expect("stream lock");
                StreamStatus {
                    viewers: viewers.get(&name).copied().unwrap_or(0),
                    name,
                    live: st.session.is_some(),
                    renditions: st
                        .renditions
                        .values()
                        .map(|r| {
                            let v = r.variant("index.m3u8");
                            RenditionStatus {
                                name: r.name.clone(),
                                offered: r.offered(),
                                dropped: r.dropped.clone(),
                                last_msn: r.playlist.last_msn(),
                                bandwidth: v.bandwidth,
                                average_bandwidth: v.average_bandwidth,
                                codecs: v.codecs,
                                resolution: v.resolution,
                            }
                        })
                        .collect(),
                    transcoder: st.expects_plan.then(|| TranscoderView {
                        worker_pid: st.transcoder.worker_pid,
                        worker_restarts: st.transcoder.worker_restarts,
                        load: st.transcoder.load,
                    }),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
