//! Writes and linearizable reads from any member: a write is carried out at the leader,
//! wherever it is (following redirects and elections); a read asks the leader for a read
//! index and answers from this node's copy once it has applied that far.

use std::collections::BTreeSet;
use std::time::Duration;

use tessera_raft::{Catalog, CatalogError, Command, NodeId, Outcome};

use super::protocols::{Forward, Forwarded, ReadIndex, RemoteFailure};
use super::{ClusterError, ClusterService};

/// How long a forwarded operation keeps trying (through elections and membership changes)
/// before it is reported unavailable.
const FORWARD_PATIENCE: Duration = Duration::from_secs(15);

/// The pause before retry `attempt`.
fn backoff(attempt: u64) -> Duration {
    Duration::from_millis((50 * (attempt + 1)).min(500))
}

impl ClusterService {
    /// Waits until this node knows a leader.
    pub async fn wait_leader(&self, within: Duration) -> Result<NodeId, ClusterError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(l) = self.catalog.status().leader {
                return Ok(l);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(CatalogError::Unavailable("no leader".into()).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Carries out a forwarded operation here, if this node leads.
    pub(super) async fn apply_here(&self, op: Forwarded) -> Result<Outcome, CatalogError> {
        match op {
            Forwarded::Propose(c) => self.catalog.propose(c).await,
            Forwarded::AddLearner { id, addr } => self.catalog.add_learner(id, &addr).await.map(|_| Outcome::Done),
            Forwarded::Promote { id } => self.catalog.promote(BTreeSet::from([id])).await.map(|_| Outcome::Done),
            Forwarded::Remove { ids } => {
                self.catalog.remove_nodes(ids.into_iter().collect()).await.map(|_| Outcome::Done)
            }
        }
    }

    /// Resolves once this node knows of a leader other than `id`.
    async fn leader_other_than(&self, id: NodeId) {
        let mut metrics = self.catalog.raft.metrics();
        let _ = metrics.wait_for(|m| m.current_leader.is_some_and(|l| l != id)).await;
    }

    /// The leader as this node sees it, with its address.
    fn known_leader(&self) -> Option<(NodeId, String)> {
        let st = self.catalog.status();
        let l = st.leader?;
        st.members.iter().find(|m| m.id == l).map(|m| (l, m.addr.clone()))
    }

    /// Sends an operation to the leader, starting with the member at `first`, following
    /// redirects; when a target fails, asks again whoever this node now believes leads (an
    /// election may have moved the lead), for up to [`FORWARD_PATIENCE`].
    pub(super) async fn forward_via(&self, first: &str, op: Forwarded) -> Result<Outcome, ClusterError> {
        self.forward_to((None, first.to_string()), op).await
    }

    async fn forward_to(&self, first: (Option<NodeId>, String), op: Forwarded) -> Result<Outcome, ClusterError> {
        let mut last = first.clone();
        let mut target = Some(first);
        let deadline = tokio::time::Instant::now() + FORWARD_PATIENCE;
        for attempt in 0.. {
            if tokio::time::Instant::now() > deadline {
                break;
            }
            // A redirect first, then the leader this node knows, else the last one asked
            // (a joining node knows no leader until it is a member).
            let (id, addr) = target
                .take()
                .or_else(|| self.known_leader().map(|(l, a)| (Some(l), a)))
                .unwrap_or_else(|| last.clone());
            last = (id, addr.clone());
            if id == Some(self.identity.id) {
                match self.apply_here(op.clone()).await {
                    Ok(o) => return Ok(o),
                    Err(CatalogError::NotLeader(l)) => target = l.map(|(l, a)| (Some(l), a)),
                    Err(CatalogError::Rejected(r)) => return Err(CatalogError::Rejected(r).into()),
                    Err(_) => tokio::time::sleep(backoff(attempt)).await,
                }
                continue;
            }
            let request = self.transport.call::<Forward>(id, &addr, &op);
            // A leader that died takes its time to be noticed by the transport; an election
            // is quicker. Whichever comes first: the answer, or a new leader to ask.
            let answer = match id {
                Some(asked) => tokio::select! {
                    r = request => r,
                    () = self.leader_other_than(asked) => {
                        tracing::debug!(attempt, asked, "a new leader was elected while waiting; asking it");
                        continue;
                    }
                },
                None => request.await,
            };
            match answer {
                Ok(Ok(o)) => return Ok(o),
                Ok(Err(RemoteFailure::NotLeader(Some((l, a))))) => target = Some((Some(l), a)),
                Ok(Err(RemoteFailure::Refused(why))) => return Err(ClusterError::Refused(why)),
                Ok(Err(RemoteFailure::Rejected(r))) => return Err(CatalogError::Rejected(r).into()),
                Ok(Err(f)) => {
                    tracing::debug!(attempt, failure = %f, "forwarded operation failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "forwarding failed; asking again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(CatalogError::Unavailable("the leader could not be reached".into()).into())
    }

    /// Applies an operation at the leader, wherever it is.
    pub async fn submit(&self, op: Forwarded) -> Result<Outcome, ClusterError> {
        let leader = match self.known_leader() {
            Some(l) => l,
            None => {
                self.wait_leader(Duration::from_secs(5)).await?;
                self.known_leader().ok_or_else(|| CatalogError::Unavailable("no leader".into()))?
            }
        };
        self.forward_to((Some(leader.0), leader.1), op).await
    }

    /// Proposes a catalog command from any member.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ClusterError> {
        self.submit(Forwarded::Propose(command)).await
    }

    /// A linearizable read from any member: the leader confirms its lead with a quorum and
    /// names the log index the read must see; this node reads its own copy once it has
    /// applied that far.
    pub async fn read<T>(&self, f: impl Fn(&Catalog) -> T) -> Result<T, ClusterError> {
        const WITHIN: Duration = Duration::from_secs(5);
        for attempt in 0..10u64 {
            let leader = match self.catalog.read_index().await {
                Ok(index) => return Ok(self.catalog.read_at(index, WITHIN, &f).await?),
                Err(CatalogError::NotLeader(Some(l))) => l,
                Err(CatalogError::NotLeader(None)) => {
                    let id = self.wait_leader(WITHIN).await?;
                    match self.known_leader() {
                        Some(l) if l.0 == id => l,
                        _ => continue,
                    }
                }
                Err(e) => return Err(e.into()),
            };
            // As with a forwarded operation: an election that names another leader ends the
            // wait for one that may be gone or cut off.
            let request = self.transport.call::<ReadIndex>(Some(leader.0), &leader.1, &());
            let answer = tokio::select! {
                r = request => r,
                () = self.leader_other_than(leader.0) => {
                    tracing::debug!(attempt, asked = leader.0, "a new leader was elected while waiting; asking it");
                    continue;
                }
            };
            match answer {
                Ok(Ok(index)) => return Ok(self.catalog.read_at(index, WITHIN, &f).await?),
                Ok(Err(RemoteFailure::Refused(why))) => return Err(ClusterError::Refused(why)),
                Ok(Err(f)) => tracing::debug!(attempt, failure = %f, "read index refused"),
                Err(e) => tracing::debug!(attempt, error = %e, "read index request failed"),
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(CatalogError::Unavailable("no leader confirmed a read index".into()).into())
    }

    /// Removes a node from the cluster (membership, then its record), from any member.
    pub async fn remove(&self, id: NodeId) -> Result<(), ClusterError> {
        self.submit(Forwarded::Remove { ids: vec![id] }).await?;
        match self.propose(Command::RemoveNode { id }).await {
            Ok(_) | Err(ClusterError::Catalog(CatalogError::Rejected(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
