//! The series about one stream: what it receives (`tessera_ingest_bytes_total`, whose rate
//! is its bitrate), its input errors (`tessera_ingest_errors_total{kind}`: continuity gaps
//! among them), its timestamp breaks (`tessera_timeline_breaks_total`) and the rungs its
//! ladder dropped (`tessera_transcode_rungs_dropped_total{reason}`).
//!
//! They carry a `stream` label only when the node asks for it ([`label_streams`]): a
//! cluster of ten thousand streams would otherwise give Prometheus ten thousand series per
//! name. Without it they add up over the node's streams.

use std::sync::atomic::{AtomicBool, Ordering};

use metrics::Label;

static PER_STREAM: AtomicBool = AtomicBool::new(false);

/// Whether series about one stream carry its name from now on (process-wide, as the
/// metrics recorder is).
pub fn label_streams(on: bool) {
    PER_STREAM.store(on, Ordering::Relaxed);
}

/// `extra`, with the stream's name when series carry it.
pub(crate) fn labels(stream: &str, extra: &[(&'static str, &'static str)]) -> Vec<Label> {
    let mut labels: Vec<Label> = extra.iter().map(|(k, v)| Label::new(*k, *v)).collect();
    if PER_STREAM.load(Ordering::Relaxed) {
        labels.push(Label::new("stream", stream.to_string()));
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_label_is_added_only_when_asked_for() {
        label_streams(false);
        assert_eq!(labels("news", &[("kind", "continuity")]), vec![Label::new("kind", "continuity")]);
        label_streams(true);
        assert_eq!(
            labels("news", &[("kind", "continuity")]),
            vec![Label::new("kind", "continuity"), Label::new("stream", "news")]
        );
        label_streams(false);
    }
}
