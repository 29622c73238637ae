//! The owner of a node's long-lived tasks: a task that ends or panics while the node runs is
//! started again after a backoff (250 ms, doubling up to 30 s, back to 250 ms once a run
//! lasted a minute), logged with its name and counted (`tessera_task_restarts_total{task}`).
//! A task that cannot be started again (one that owns a listening socket) is logged and
//! counted (`tessera_task_exits_total{task}`) instead, so its loss is never silent.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::server::until_true;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long earns the next failure the first backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How a run of a task ended.
fn ended(result: Result<(), tokio::task::JoinError>) -> String {
    match result {
        Ok(()) => "it ended on its own".into(),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            format!("it panicked: {message}")
        }
        Err(_) => "it was cancelled".into(),
    }
}

/// Runs `make`'s task until `stop` turns true, starting it again whenever it ends or
/// panics before that. Each run gets its own copy of `stop`.
pub(crate) async fn restarting<F, Fut>(task: &'static str, mut stop: watch::Receiver<bool>, mut make: F)
where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let run = tokio::spawn(make(stop.clone()));
        let how = ended(run.await);
        if *stop.borrow() {
            return;
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        metrics::counter!("tessera_task_restarts_total", "task" => task).increment(1);
        tracing::error!(task, reason = %how, backoff_ms = backoff.as_millis() as u64, "node task stopped; starting it again");
        tokio::select! {
            _ = until_true(&mut stop) => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Runs a task that cannot be started again (it owns its socket); if it ends before the
/// node stops, says so.
pub(crate) async fn once<Fut>(task: &'static str, stop: watch::Receiver<bool>, run: Fut)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let how = ended(tokio::spawn(run).await);
    if !*stop.borrow() {
        metrics::counter!("tessera_task_exits_total", "task" => task).increment(1);
        tracing::error!(task, reason = %how, "node task stopped and cannot be started again (it owns its socket): restart the node");
    }
}

/// Spawns on `tasks` a task kept running by [`restarting`].
pub(crate) fn spawn_restarting<F, Fut>(
    tasks: &mut JoinSet<()>,
    task: &'static str,
    stop: &watch::Receiver<bool>,
    make: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tasks.spawn(restarting(task, stop.clone(), make));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_or_ends_is_started_again_until_the_node_stops() {
        let metrics = crate::metrics_handle();
        let (stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let owner = tokio::spawn(restarting("test", stop, move |mut stop| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => panic!("first run fails"),
                    1 => {} // ends on its own
                    _ => until_true(&mut stop).await,
                }
            }
        }));
        // 250 ms after the panic, then 500 ms after the early end: a third run.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), owner).await.expect("the owner ends with the node").unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "nothing is started once the node stops");
        let text = metrics.render();
        assert!(text.contains("tessera_task_restarts_total{task=\"test\"} 2"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_cannot_be_restarted_is_reported_and_counted() {
        let metrics = crate::metrics_handle();
        let (_stop_tx, stop) = watch::channel(false);
        tokio::time::timeout(Duration::from_secs(1), once("test-listener", stop, async {}))
            .await
            .expect("reported, not restarted");
        let text = metrics.render();
        assert!(text.contains("tessera_task_exits_total{task=\"test-listener\"} 1"), "{text}");
    }
}
