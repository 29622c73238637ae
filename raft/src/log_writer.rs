//! Group commit for the Raft log: one thread owns every write to the log, the vote and the
//! commit index, in the order they were asked for, and commits as many as have queued up
//! in one redb transaction, one fsync.
//!
//! openraft hands [`LogStore::append`](crate::store::LogStore) entries and a callback; the
//! entries are readable at once (from [`PendingLog`]) and the callback fires once they are
//! on disk, so the Raft task never waits for the disk while clients keep writing. A vote,
//! a truncation or a purge waits for its own commit (and so for every write queued before
//! it); the commit index does not (it reaches the disk with the next commit).
//!
//! The simulator commits each write inline instead ([`LogWriter::Inline`]): on the
//! caller's task, before `append` returns, so no thread races the paused clock.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use openraft::storage::LogFlushed;
use openraft::{Entry, LogId};
use redb::{Database, Durability};
use tokio::sync::oneshot;

use crate::catalog::NodeId;
use crate::TypeConfig;

/// At most this many queued writes go into one transaction.
const MAX_BATCH: usize = 4096;

/// A write to the log's tables.
pub(crate) enum LogWrite {
    /// Serialized entries by index; `flushed` fires once they are durable.
    Append { entries: Vec<(LogId<NodeId>, Vec<u8>)>, flushed: LogFlushed<TypeConfig> },
    /// Removes the entries from this index on.
    Truncate { from: u64, done: oneshot::Sender<Result<(), LogWriteError>> },
    /// Removes the entries up to and including `upto`, recording it as purged.
    Purge { upto: u64, record: Vec<u8>, done: oneshot::Sender<Result<(), LogWriteError>> },
    /// Sets a key of the meta table; `done` (when given) fires once it is durable.
    Meta { key: &'static str, value: Vec<u8>, done: Option<oneshot::Sender<Result<(), LogWriteError>>> },
}

/// A commit of the log's tables that failed; every write of its batch is told.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the catalog log commit failed: {0}")]
pub(crate) struct LogWriteError(Arc<redb::Error>);

/// Entries handed to the writer and not yet committed, readable meanwhile.
#[derive(Clone, Default)]
pub(crate) struct PendingLog {
    entries: Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>,
}

impl PendingLog {
    pub(crate) fn insert(&self, entry: Entry<TypeConfig>) {
        self.entries.lock().expect("pending log").insert(entry.log_id.index, entry);
    }

    /// Forgets pending entries from `index` on (a truncation).
    pub(crate) fn truncate(&self, index: u64) {
        self.entries.lock().expect("pending log").split_off(&index);
    }

    /// Pending entries in `range`, by index.
    pub(crate) fn range(&self, start: u64, contains: impl Fn(u64) -> bool) -> Vec<Entry<TypeConfig>> {
        let entries = self.entries.lock().expect("pending log");
        entries.range(start..).map(|(_, e)| e).take_while(|e| contains(e.log_id.index)).cloned().collect()
    }

    pub(crate) fn last(&self) -> Option<LogId<NodeId>> {
        self.entries.lock().expect("pending log").last_key_value().map(|(_, e)| e.log_id)
    }

    /// Forgets entries now on disk, unless a later write replaced them meanwhile.
    fn committed(&self, ids: impl Iterator<Item = LogId<NodeId>>) {
        let mut entries = self.entries.lock().expect("pending log");
        for id in ids {
            if entries.get(&id.index).is_some_and(|e| e.log_id == id) {
                entries.remove(&id.index);
            }
        }
    }
}

/// Where the log's writes are committed.
pub(crate) enum LogWriter {
    /// By the group-commit thread; it ends when the last sender is dropped.
    Thread(mpsc::Sender<LogWrite>),
    /// On the caller's task, one transaction per write.
    Inline { db: Arc<Database>, pending: PendingLog },
}

/// The writer thread has stopped (it only does when the store is dropped).
#[derive(Debug, thiserror::Error)]
#[error("the catalog log writer has stopped")]
pub(crate) struct WriterStopped;

impl LogWriter {
    /// Starts the group-commit thread.
    pub(crate) fn thread(db: Arc<Database>, pending: PendingLog) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("catalog-log".into()).spawn(move || run(&db, &pending, &rx))?;
        Ok(LogWriter::Thread(tx))
    }

    /// Hands a write over (or, inline, commits it and tells its waiter at once).
    pub(crate) fn submit(&self, w: LogWrite) -> Result<(), WriterStopped> {
        match self {
            LogWriter::Thread(tx) => tx.send(w).map_err(|_| WriterStopped),
            LogWriter::Inline { db, pending } => {
                let batch = vec![w];
                let result = commit(db, &batch).map_err(|e| LogWriteError(Arc::new(e)));
                finish(batch, &result, pending);
                Ok(())
            }
        }
    }
}

fn run(db: &Database, pending: &PendingLog, rx: &mpsc::Receiver<LogWrite>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let result = commit(db, &batch).map_err(|e| LogWriteError(Arc::new(e)));
        finish(batch, &result, pending);
    }
}

/// Tells every write of a batch how its commit went.
fn finish(batch: Vec<LogWrite>, result: &Result<(), LogWriteError>, pending: &PendingLog) {
    if let Err(e) = result {
        tracing::error!(error = %e, writes = batch.len(), "catalog log write failed");
    }
    for w in batch {
        match w {
            LogWrite::Append { entries, flushed } => {
                if result.is_ok() {
                    pending.committed(entries.iter().map(|(id, _)| *id));
                }
                flushed.log_io_completed(result.clone().map_err(std::io::Error::other));
            }
            LogWrite::Truncate { done, .. } | LogWrite::Purge { done, .. } => {
                let _ = done.send(result.clone());
            }
            LogWrite::Meta { done, .. } => {
                if let Some(done) = done {
                    let _ = done.send(result.clone());
                }
            }
        }
    }
}

/// Applies the writes in order in one transaction; durable when it returns `Ok`.
fn commit(db: &Database, batch: &[LogWrite]) -> Result<(), redb::Error> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    {
        let mut log = tx.open_table(crate::store::LOG)?;
        let mut meta = tx.open_table(crate::store::META)?;
        for w in batch {
            match w {
                LogWrite::Append { entries, .. } => {
                    for (id, bytes) in entries {
                        log.insert(id.index, bytes.as_slice())?;
                    }
                }
                LogWrite::Truncate { from, .. } => {
                    log.retain_in(*from.., |_, _| false)?;
                }
                LogWrite::Purge { upto, record, .. } => {
                    meta.insert("purged", record.as_slice())?;
                    log.retain_in(..=*upto, |_, _| false)?;
                }
                LogWrite::Meta { key, value, .. } => {
                    meta.insert(*key, value.as_slice())?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}
