//! Keeps the catalog in step with the archive: what it holds of each stream goes into the
//! stream's record (`Command::SetArchive`), proposed by the node that archives the stream.

use std::collections::HashMap;

use tessera_raft::{ArchiveExtent, Command};

use tessera_cluster::ClusterService;
use tessera_storage::ArchiveReport;

/// A report that proposes each change: for a stream this node is origin of (it archives
/// it), whatever the archive holds, nothing included; for a stream without an origin, what
/// this node's archive holds of it, if anything (an archive this node does not share with
/// the others never clears another's record).
pub fn to_catalog(cluster: ClusterService) -> ArchiveReport {
    Box::new(move |held: HashMap<String, ArchiveExtent>| {
        let me = cluster.identity.id;
        let changes: Vec<(String, Option<ArchiveExtent>)> = cluster
            .catalog
            .read_local(|c| {
                c.streams
                    .values()
                    .filter_map(|s| {
                        let now = held.get(&s.name).copied();
                        let archives_it = match s.origin {
                            Some(lease) => lease.node == me,
                            None => now.is_some(),
                        };
                        (archives_it && now != s.archive).then(|| (s.name.clone(), now))
                    })
                    .collect()
            })
            .value;
        if changes.is_empty() {
            return;
        }
        let cluster = cluster.clone();
        tokio::spawn(async move {
            for (stream, archive) in changes {
                let command = Command::SetArchive { stream: stream.clone(), archive };
                if let Err(e) = cluster.propose(command).await {
                    tracing::warn!(stream, error = %e, "cannot record the archive's extent in the catalog");
                }
            }
        });
    })
}
