//! Durable Raft storage on redb: the log, the vote and the commit index
//! ([`LogStore`]), and the catalog state machine with its snapshots ([`StateMachineStore`]).
//!
//! Every write of the log, the vote and snapshots is a redb transaction committed with
//! immediate durability (fsync) before openraft is told it happened, so an acknowledged
//! write survives a crash; the commit index rides along with the next such commit. The state
//! machine itself lives in memory: on start it is restored from the last snapshot, and
//! openraft re-applies the committed entries after it (the commit index is saved too).

// The error type is openraft's, large by its design.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use tokio::sync::oneshot;

use crate::catalog::{Catalog, NodeId, Outcome};
use crate::log_writer::{LogWrite, LogWriteError, LogWriter, PendingLog};
use crate::TypeConfig;

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

type StoreResult<T> = Result<T, StorageError<NodeId>>;

fn failed(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageError::IO { source: StorageIOError::new(subject, verb, AnyError::new(&e)) }
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    failed(ErrorSubject::Store, ErrorVerb::Read, e)
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    failed(ErrorSubject::Store, ErrorVerb::Write, e)
}

/// How log writes reach the disk. Both make a write durable before openraft hears of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogWrites {
    /// A thread commits whatever has queued up in one transaction and one fsync, so the
    /// Raft task never waits for the disk: what a node runs.
    #[default]
    GroupCommit,
    /// Each write is committed on the Raft task that asked for it, before it returns: what
    /// the simulator runs, where a thread would race the paused clock.
    Inline,
}

/// Opens (or creates) the catalog's database in `dir`.
pub fn open(dir: &Path, writes: LogWrites) -> Result<(LogStore, StateMachineStore), StorageError<NodeId>> {
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let db = Arc::new(Database::create(dir.join("catalog.redb")).map_err(write_err)?);
    let tx = db.begin_write().map_err(write_err)?;
    tx.open_table(LOG).map_err(write_err)?;
    tx.open_table(META).map_err(write_err)?;
    tx.commit().map_err(write_err)?;
    let pending = PendingLog::default();
    let writer = match writes {
        LogWrites::GroupCommit => LogWriter::thread(db.clone(), pending.clone()).map_err(write_err)?,
        LogWrites::Inline => LogWriter::Inline { db: db.clone(), pending: pending.clone() },
    };
    let log = LogStore { db: db.clone(), pending, writer: Arc::new(writer) };
    let sm = StateMachineStore::open(db)?;
    Ok((log, sm))
}

fn get_meta<T: for<'a> Deserialize<'a>>(db: &Database, key: &str) -> StoreResult<Option<T>> {
    let tx = db.begin_read().map_err(read_err)?;
    let table = tx.open_table(META).map_err(read_err)?;
    match table.get(key).map_err(read_err)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(read_err)?)),
        None => Ok(None),
    }
}

fn put_meta<T: Serialize>(db: &Database, key: &str, value: &T) -> StoreResult<()> {
    let bytes = serde_json::to_vec(value).map_err(write_err)?;
    let tx = db.begin_write().map_err(write_err)?;
    {
        let mut table = tx.open_table(META).map_err(write_err)?;
        table.insert(key, bytes.as_slice()).map_err(write_err)?;
    }
    tx.commit().map_err(write_err)
}

/// The Raft log, vote and commit index. Reads go to redb and to the entries still on
/// their way to it; writes go through the [`LogWriter`].
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    pending: PendingLog,
    writer: Arc<LogWriter>,
}

impl LogStore {
    fn send(&self, w: LogWrite) -> StoreResult<()> {
        self.writer.submit(w).map_err(write_err)
    }

    /// Queues a write and waits until it (and everything queued before it) is durable.
    async fn write_and_wait(
        &self,
        w: impl FnOnce(oneshot::Sender<Result<(), LogWriteError>>) -> LogWrite,
    ) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        self.send(w(done))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(write_err(std::io::Error::other(e))),
            Err(_) => Err(write_err(std::io::Error::other("the catalog log writer has stopped"))),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        // Pending first: an entry leaves it only once it is on disk, so none falls between.
        let pending = self.pending.range(start, |i| range.contains(&i));
        let tx = self.db.begin_read().map_err(read_err)?;
        let table = tx.open_table(LOG).map_err(read_err)?;
        let mut out = BTreeMap::new();
        for item in table.range(start..).map_err(read_err)? {
            let (k, v) = item.map_err(read_err)?;
            if !range.contains(&k.value()) {
                break;
            }
            out.insert(k.value(), serde_json::from_slice(v.value()).map_err(read_err)?);
        }
        out.extend(pending.into_iter().map(|e| (e.log_id.index, e)));
        Ok(out.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StoreResult<LogState<TypeConfig>> {
        let last_purged: Option<LogId<NodeId>> = get_meta(&self.db, "purged")?;
        if let Some(last) = self.pending.last() {
            return Ok(LogState { last_purged_log_id: last_purged, last_log_id: Some(last) });
        }
        let tx = self.db.begin_read().map_err(read_err)?;
        let table = tx.open_table(LOG).map_err(read_err)?;
        let last = match table.last().map_err(read_err)? {
            Some((_, v)) => {
                let e: Entry<TypeConfig> = serde_json::from_slice(v.value()).map_err(read_err)?;
                Some(e.log_id)
            }
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StoreResult<()> {
        let value = serde_json::to_vec(vote).map_err(write_err)?;
        self.write_and_wait(|done| LogWrite::Meta { key: "vote", value, done: Some(done) }).await
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<NodeId>>> {
        get_meta(&self.db, "vote")
    }

    /// Not waited for: it reaches the disk with the next commit of the log writer. The commit index only spares a restarted node from waiting
    /// for the leader before it re-applies; an older one on disk is safe.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StoreResult<()> {
        let value = serde_json::to_vec(&committed).map_err(write_err)?;
        self.send(LogWrite::Meta { key: "committed", value, done: None })
    }

    async fn read_committed(&mut self) -> StoreResult<Option<LogId<NodeId>>> {
        Ok(get_meta::<Option<LogId<NodeId>>>(&self.db, "committed")?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Readable at once; acknowledged (the callback) once durable.
        let mut serialized = Vec::new();
        for e in entries {
            serialized.push((e.log_id, serde_json::to_vec(&e).map_err(write_err)?));
            self.pending.insert(e);
        }
        self.send(LogWrite::Append { entries: serialized, flushed: callback })
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        self.pending.truncate(log_id.index);
        self.write_and_wait(|done| LogWrite::Truncate { from: log_id.index, done }).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let record = serde_json::to_vec(&log_id).map_err(write_err)?;
        self.write_and_wait(|done| LogWrite::Purge { upto: log_id.index, record, done }).await
    }
}

/// The catalog with the Raft position it reflects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppliedCatalog {
    pub last_applied: Option<LogId<NodeId>>,
    pub last_membership: StoredMembership<NodeId, openraft::BasicNode>,
    pub catalog: Catalog,
}

/// A snapshot as kept on disk.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    data: Vec<u8>,
}

/// The state machine: the catalog in memory, shared with local readers.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    state: Arc<RwLock<AppliedCatalog>>,
}

impl StateMachineStore {
    fn open(db: Arc<Database>) -> StoreResult<Self> {
        let state = match get_meta::<StoredSnapshot>(&db, "snapshot")? {
            Some(s) => AppliedCatalog {
                last_applied: s.meta.last_log_id,
                last_membership: s.meta.last_membership,
                catalog: serde_json::from_slice(&s.data).map_err(read_err)?,
            },
            None => AppliedCatalog::default(),
        };
        Ok(StateMachineStore { db, state: Arc::new(RwLock::new(state)) })
    }

    /// The catalog as this node has applied it (a local, possibly stale, read).
    pub fn read<T>(&self, f: impl FnOnce(&AppliedCatalog) -> T) -> T {
        f(&self.state.read().expect("catalog lock"))
    }
}

/// Builds a snapshot from a copy of the catalog, off the Raft task's critical path.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    state: AppliedCatalog,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let data = serde_json::to_vec(&self.state.catalog).map_err(write_err)?;
        let id = match self.state.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, tessera_ingest::timestamp::unix_ms()),
            None => format!("0-0-{}", tessera_ingest::timestamp::unix_ms()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.last_membership.clone(),
            snapshot_id: id,
        };
        put_meta(&self.db, "snapshot", &StoredSnapshot { meta: meta.clone(), data: data.clone() })?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StoreResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, openraft::BasicNode>)> {
        Ok(self.read(|s| (s.last_applied, s.last_membership.clone())))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<Outcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state.write().expect("catalog lock");
        let mut out = Vec::new();
        for e in entries {
            state.last_applied = Some(e.log_id);
            out.push(match e.payload {
                EntryPayload::Blank => Outcome::Done,
                EntryPayload::Normal(p) => state.catalog.apply(&p),
                EntryPayload::Membership(m) => {
                    state.last_membership = StoredMembership::new(Some(e.log_id), m);
                    Outcome::Done
                }
            });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { db: self.db.clone(), state: self.read(|s| s.clone()) }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let data = snapshot.into_inner();
        let catalog: Catalog = serde_json::from_slice(&data).map_err(read_err)?;
        put_meta(&self.db, "snapshot", &StoredSnapshot { meta: meta.clone(), data })?;
        *self.state.write().expect("catalog lock") =
            AppliedCatalog { last_applied: meta.last_log_id, last_membership: meta.last_membership.clone(), catalog };
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        Ok(get_meta::<StoredSnapshot>(&self.db, "snapshot")?
            .map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}
