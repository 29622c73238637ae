//! The codec worker process: spawning it and moving bytes between its pipes and the
//! encoder actor.
//!
//! Four tasks per process, all ending with it: a writer draining a bounded queue into
//! stdin, a reader turning stdout into [`WorkerEvent::Message`]s, a logger for stderr
//! (FFmpeg's and the runtime's last words), and a waiter that reports the exit (or kills
//! the process when asked, or when the handle is dropped). Events go to a
//! [`WorkerEvents`] callback: the encoder beside it, or the link to an encoder on another
//! node.

use std::path::PathBuf;
use std::process::Stdio;

use tessera_transcode::wire::{self, FrameReader, FromWorker, ToWorker};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::launch::{WorkerEvent, WorkerEvents};

/// How to start a codec worker: the program and its arguments (`tessera codec-worker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Why input was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the worker's queue is full")]
    Full,
    #[error("the worker is gone")]
    Closed,
}

/// A running worker process.
pub struct WorkerProcess {
    pub pid: Option<u32>,
    input: mpsc::Sender<Vec<u8>>,
    kill: Option<oneshot::Sender<()>>,
}

/// Messages queued for the worker's stdin at most.
const QUEUE: usize = 256;

impl WorkerProcess {
    pub fn spawn(command: &WorkerCommand, stream: &str, events: WorkerEvents) -> std::io::Result<Self> {
        let mut child = tokio::process::Command::new(&command.program)
            .args(&command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id();
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (input, mut queue) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(async move {
            while let Some(buf) = queue.recv().await {
                if stdin.write_all(&buf).await.is_err() {
                    break;
                }
            }
        });
        let reader_events = events.clone();
        tokio::spawn(async move {
            let mut reader = FrameReader::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                reader.push(&buf[..n]);
                loop {
                    let event = match reader.next_message::<FromWorker>() {
                        Ok(Some((msg, body))) => WorkerEvent::Message(msg, body),
                        Ok(None) => break,
                        Err(e) => WorkerEvent::Garbled(e.to_string()),
                    };
                    let garbled = matches!(event, WorkerEvent::Garbled(_));
                    if !reader_events(event) || garbled {
                        return;
                    }
                }
            }
        });
        let log_stream = stream.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(stream = %log_stream, pid, "codec worker: {line}");
            }
        });
        let (kill, killed) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = killed => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let how = match status {
                Ok(s) => describe(s),
                Err(e) => format!("could not be waited for: {e}"),
            };
            events(WorkerEvent::Exited(how));
        });
        Ok(WorkerProcess { pid, input, kill: Some(kill) })
    }

    /// Queues a message for the worker's stdin.
    pub fn send(&self, msg: &ToWorker, body: &[u8]) -> Result<(), QueueError> {
        self.input.try_send(wire::encode(msg, body)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })
    }

    /// Kills the process; its exit is still reported.
    pub fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}{}", if status.core_dumped() { " (core dumped)" } else { "" });
        }
    }
    match status.code() {
        Some(0) => "exited normally".to_string(),
        Some(c) => format!("exited with status {c}"),
        None => "exited".to_string(),
    }
}
