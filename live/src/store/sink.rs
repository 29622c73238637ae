//! The store as the sink of a node's pipelines and of the streams it mirrors.

use tessera_packager::{MediaSink, PlannedRendition, Published, SessionEnd, TranscoderStatus};

use super::SegmentStore;

impl SegmentStore {
    /// Publishes a pipeline's event, or one of another node's replayed here: a part gets
    /// `number` when that node already numbered it (see
    /// [`PlaylistState::number_parts_from`](tessera_packager::PlaylistState::number_parts_from)).
    /// Returns the number a part got, `None` for a part not listed (its segment was closed)
    /// and for anything else.
    pub fn publish_numbered(
        &self,
        stream: &str,
        session: u64,
        rendition: &str,
        event: Published,
        number: Option<u64>,
    ) -> Option<u64> {
        self.update(stream, session, rendition, |st, config| {
            let (base, part_floor) = (st.session_base, st.part_floor);
            let dvr = self.tiers.get().map_or(0.0, |t| t.retention(stream).dvr.as_secs_f64());
            // A gap with nothing before it in its rendition starts when a sibling's segment
            // of the same number does: the renditions share their timeline.
            let sibling_start = match &event {
                Published::Gap { segment, .. } => st
                    .renditions
                    .values()
                    .filter(|o| o.name != rendition)
                    .find_map(|o| o.playlist.segments().find(|s| s.msn == base + segment).map(|s| s.program_time_ms)),
                _ => None,
            };
            let r = st.rendition(rendition, config);
            r.playlist.set_dvr_seconds(dvr);
            match event {
                Published::Init { tracks, data } => {
                    let id = r.init(tracks, data);
                    tracing::info!(stream, session, rendition, init = id, codecs = %r.tracks.iter().map(|t| t.codec.rfc6381()).collect::<Vec<_>>().join(","), "init segment");
                    None
                }
                Published::Part {
                    segment,
                    data,
                    duration,
                    independent,
                    program_time_ms,
                    part_target,
                    completed_at,
                    last_frame_arrived,
                } => {
                    r.playlist.set_part_target(part_target);
                    r.playlist.number_parts_from(number.unwrap_or(part_floor));
                    let part = r.part(base + segment, data, duration, independent, program_time_ms, completed_at);
                    let Some(seq) = part else {
                        tracing::debug!(stream, rendition, segment, "part for a closed segment dropped");
                        return None;
                    };
                    metrics::counter!("tessera_parts_published_total").increment(1);
                    if let Some(at) = last_frame_arrived {
                        metrics::histogram!("tessera_part_available_seconds").record(at.elapsed().as_secs_f64());
                    }
                    Some(seq)
                }
                Published::SegmentEnd { segment } => {
                    r.segment_end(base + segment);
                    None
                }
                Published::Gap { segment, duration } => {
                    r.gap(base + segment, duration, sibling_start);
                    None
                }
            }
        })
        .flatten()
    }
}

impl MediaSink for SegmentStore {
    fn publish(&self, stream: &str, session: u64, rendition: &str, event: Published) {
        self.publish_numbered(stream, session, rendition, event, None);
    }

    fn plan(&self, stream: &str, session: u64, renditions: Vec<PlannedRendition>) {
        self.update(stream, session, "plan", |st, config| {
            st.planned = true;
            for r in st.renditions.values_mut() {
                if r.planned.take().is_some() && !renditions.iter().any(|p| p.name == r.name) {
                    // Not in this session's ladder (the source changed size): it ends.
                    r.playlist.end();
                }
            }
            for p in renditions {
                let name = p.name.clone();
                st.rendition(&name, config).planned = Some(p);
            }
        });
    }

    fn transcoder(&self, stream: &str, session: u64, status: TranscoderStatus) {
        self.update(stream, session, "transcoder", |st, _| {
            for (name, why) in &status.dropped {
                if let Some(r) = st.renditions.get_mut(name) {
                    r.dropped = Some(why.clone());
                }
            }
            st.transcoder = status;
        });
    }

    fn end(&self, stream: &str, session: u64, how: SessionEnd) {
        self.session_end(stream, session, &how);
    }
}
