//! A node whose data folder fills up (a small tmpfs): its media tier says why it cannot
//! write (a log line, a metric) and the node goes on; once its catalog log cannot be
//! written it stops with the reason (fail-stop, for its supervisor to restart it). Nothing
//! acknowledged is lost, and once there is room again it catches up with the cluster.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use super::Network;
use crate::cluster::{create_stream, eventually, form_these, stream_names, Proc};
use crate::common::{get, publish_sample_to};

/// A tmpfs of `mb` MiB mounted at `dir`; unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, mb: u32) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let size = format!("size={mb}m");
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(dir).status();
        assert!(ok.is_ok_and(|s| s.success()), "mount a tmpfs (the namespace suite needs root)");
        SmallDisk(dir.to_path_buf())
    }

    /// Fills what is left but `keep_kb`, with one file; returns its path.
    fn fill(&self, keep_kb: u64) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        let out = Command::new("df").args(["-k", "--output=avail"]).arg(&self.0).output().unwrap();
        let avail: u64 = String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
        let len = avail.saturating_sub(keep_kb) * 1024;
        let _ = std::fs::write(&filler, vec![0u8; len as usize]);
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fills_up_loses_nothing_and_catches_up() {
    let net = Network::new(3);
    let procs: Vec<Proc> =
        net.hosts.iter().enumerate().map(|(i, h)| Proc::in_namespace(&format!("disk{i}"), &h.netns, h.ip)).collect();
    let disk = SmallDisk::mount(procs[2].dir(), 64);
    let (mut nodes, join, admin) = form_these(procs, |_| Vec::new()).await;
    let publisher = publish_sample_to(nodes[2].srt, "filling", 1_000);
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Its media tier fails first: counted, and the node goes on.
    let filler = disk.fill(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = get(nodes[2].http, "/metrics").await.text();
    assert!(
        metrics.lines().any(|l| l.starts_with("tessera_warm_errors_total")),
        "the full node counts the media it could not write:\n{}",
        nodes[2].log()
    );
    // Then its catalog log, once what its store preallocated is used up: the majority
    // takes every write meanwhile. The full node either keeps up (while its store still
    // has room) or stops, saying why: a catalog that cannot write is fail-stop, never
    // half-working.
    let mut acknowledged = BTreeSet::new();
    for i in 0..40 {
        let name = format!("while-full-{i}");
        if create_stream(&nodes[i % 2], &admin, &name).await.is_ok() {
            acknowledged.insert(name);
        }
    }
    assert_eq!(acknowledged.len(), 40, "the majority takes every write");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Room again: a node that stopped restarts, reopens its store and catches up.
    std::fs::remove_file(&filler).unwrap();
    if let Some(status) = nodes[2].exited() {
        assert!(!status.success(), "it stops with an error");
        assert!(nodes[2].log().contains("the catalog's storage failed"), "{}", nodes[2].log());
        eprintln!("the full node stopped ({status}); restarting it");
        let (first, rest) = nodes.split_at_mut(1);
        rest[1].join(&first[0], &join, &[]);
    } else {
        eprintln!("the full node kept up");
    }
    for node in &nodes {
        let names = eventually(Duration::from_secs(30), "every node to hold every acknowledged write", || async {
            stream_names(node, &admin, true).await.filter(|n| acknowledged.is_subset(n))
        })
        .await;
        assert!(acknowledged.is_subset(&names));
    }
    publisher.abort();
    drop(nodes);
}
