//! The node's Prometheus recorder, and the gauges of the process itself that `/metrics`
//! reads as it is scraped: resident memory, open and allowed descriptors, threads (from
//! Linux's `/proc/self`; absent elsewhere) and the runtime's live tasks.
//!
//! The process gauges keep the names every Prometheus client library gives them
//! (`process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`), so the
//! dashboards and alert rules written for them apply unchanged.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often histogram samples are folded into their buckets when nobody scrapes.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder (installed once; shared by every node in a process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0])
                .expect("static buckets")
                // Parts cross a cluster in well under a millisecond on a LAN.
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("tessera_relay_part_delay_seconds".into()),
                    &[0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
                )
                .expect("static buckets")
                // A blocking playlist reload is held for up to three target durations.
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("tessera_http_request_duration_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("a metrics recorder was already installed");
            }
            // A histogram's samples wait in the recorder until a scrape or an upkeep folds them
            // into its buckets: without upkeep, a node nobody scrapes would keep every sample
            // it ever took (about 350 MB an hour under a thousand players).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                std::thread::sleep(METRICS_UPKEEP);
                upkeep.run_upkeep();
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "no metrics upkeep thread: histograms grow until scraped");
            }
            handle
        })
        .clone()
}

/// Series that appear only once something happens, registered at zero when the node
/// starts: a rate or an increase then counts the first event too, and the dashboards and
/// alert rules (deploy/) find every series they name on every node.
pub(crate) fn register_event_series() {
    for counter in [
        "tessera_ingest_bytes_total",
        "tessera_ingest_errors_total",
        "tessera_timeline_breaks_total",
        "tessera_transcode_rungs_dropped_total",
        "tessera_ladder_placements_total",
        "tessera_ladder_moves_total",
        "tessera_license_requests_total",
        "tessera_raft_leader_changes_total",
        "tessera_raft_snapshots_total",
    ] {
        metrics::counter!(counter).increment(0);
    }
    for gauge in [
        "tessera_publishers",
        "tessera_ladders_made",
        "tessera_transcode_reserved_cores",
        "tessera_transcode_busy_cores",
    ] {
        metrics::gauge!(gauge).increment(0.0);
    }
    for tier in ["live", "memory", "disk", "peer"] {
        for result in ["hit", "miss"] {
            metrics::counter!("tessera_tier_lookups_total", "tier" => tier, "result" => result).increment(0);
        }
    }
}

/// The process's own figures, as `/proc/self` tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcessSample {
    resident_bytes: u64,
    threads: u64,
    open_fds: u64,
    /// The soft limit on descriptors; `None` when unlimited.
    max_fds: Option<u64>,
}

impl ProcessSample {
    fn read() -> Option<ProcessSample> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let (resident_bytes, threads) = parse_status(&status)?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| parse_max_fds(&l));
        Some(ProcessSample { resident_bytes, threads, open_fds, max_fds })
    }
}

/// Resident bytes and threads from `/proc/self/status` (`VmRSS: 1234 kB`, `Threads: 7`).
fn parse_status(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((field("VmRSS")? * 1024, field("Threads")?))
}

/// The soft limit of `Max open files` in `/proc/self/limits`; `None` if unlimited or absent.
fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Sets the process and runtime gauges; called as `/metrics` is scraped, on the runtime
/// whose tasks it counts.
pub(crate) fn record_process() {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        metrics::gauge!("tessera_runtime_alive_tasks").set(runtime.metrics().num_alive_tasks() as f64);
    }
    let Some(p) = ProcessSample::read() else { return };
    metrics::gauge!("process_resident_memory_bytes").set(p.resident_bytes as f64);
    metrics::gauge!("process_threads").set(p.threads as f64);
    metrics::gauge!("process_open_fds").set(p.open_fds as f64);
    if let Some(max) = p.max_fds {
        metrics::gauge!("process_max_fds").set(max as f64);
    }
}

/// The size and free space of the filesystem holding the node's data folder (the catalog,
/// the disk tier, uploads): `tessera_data_fs_size_bytes`, `tessera_data_fs_free_bytes` (what
/// an unprivileged process may still write).
pub(crate) fn record_disk(data_dir: &std::path::Path) {
    match nix::sys::statvfs::statvfs(data_dir) {
        Ok(fs) => {
            let unit = fs.fragment_size() as f64;
            metrics::gauge!("tessera_data_fs_size_bytes").set(fs.blocks() as f64 * unit);
            metrics::gauge!("tessera_data_fs_free_bytes").set(fs.blocks_available() as f64 * unit);
        }
        Err(e) => tracing::debug!(path = %data_dir.display(), error = %e, "cannot read the data folder's filesystem"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_limits_are_read_as_linux_writes_them() {
        let status = "Name:\ttessera\nVmPeak:\t  400000 kB\nVmRSS:\t  356656 kB\nThreads:\t7\n";
        assert_eq!(parse_status(status), Some((356656 * 1024, 7)));
        assert_eq!(parse_status("Name:\tx\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(parse_max_fds("Max open files            unlimited            unlimited            files\n"), None);
    }

    #[tokio::test]
    async fn a_scrape_reports_the_process_and_its_tasks() {
        let handle = metrics_handle();
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let waiting = tokio::spawn(stopped);
        record_process();
        let text = handle.render();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        };
        assert!(value("tessera_runtime_alive_tasks") >= 1.0, "the waiting task is alive");
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        record_disk(std::path::Path::new("."));
        let text = handle.render();
        let value =
            |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok());
        let (size, free) = (value("tessera_data_fs_size_bytes").unwrap(), value("tessera_data_fs_free_bytes").unwrap());
        assert!(size > 0.0 && free <= size, "{size} {free}");
        waiting.abort();
    }
}
