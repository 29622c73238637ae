//! What `/streams` tells operators about each stream: its renditions and its transcoder.

use std::sync::Arc;

use super::{SegmentStore, StreamEntry};

/// What `/streams` says about a stream.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StreamStatus {
    pub name: String,
    pub live: bool,
    pub renditions: Vec<RenditionStatus>,
    pub transcoder: Option<TranscoderView>,
    /// Players of the stream on this node.
    pub viewers: usize,
}

/// A rendition of a stream on this node.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RenditionStatus {
    /// `src` (the passthrough) or a rung.
    pub name: String,
    /// Whether the multivariant playlist offers it.
    pub offered: bool,
    /// Why the rung was dropped from the ladder, if it was.
    pub dropped: Option<String>,
    pub last_msn: Option<u64>,
    /// What the multivariant playlist says of it: measured over recent segments, bits/s.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// RFC 6381 codec strings.
    pub codecs: String,
    /// Width and height.
    #[schema(value_type = Option<Vec<u32>>)]
    pub resolution: Option<(u32, u32)>,
}

/// The stream's transcoder on this node (its codec worker process).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
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
