//! Publishes an MPEG-TS file as N concurrent SRT streams, in real time, looping.
//!
//!   multi_publish FILE SECONDS STREAMS TARGET [TARGET...]
//!
//! Stream i is `live/bench-i`, sent to TARGET[i % targets] (host:port). As an encoder does
//! (OBS, ffmpeg with its reconnect options), a stream whose connection fails or is closed by
//! the node connects again a second later, until SECONDS are up; the count of reconnections
//! is printed at the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tessera_cli::publish::{connect, publish, publish_stream_id, TsFile};
use tokio::time::Instant;

/// How long a stream waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 5, "usage: multi_publish FILE SECONDS STREAMS TARGET [TARGET...]");
    let data = std::fs::read(&args[1]).with_context(|| args[1].clone())?;
    let seconds: u64 = args[2].parse()?;
    let streams: usize = args[3].parse()?;
    let targets: Vec<SocketAddr> = args[4..].iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
    let file = Arc::new(TsFile::new(&data)?);
    let until = Instant::now() + Duration::from_secs(seconds);
    let reconnects = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..streams {
        let (file, reconnects) = (file.clone(), reconnects.clone());
        let target = targets[i % targets.len()];
        tasks.push(tokio::spawn(async move {
            // Spread the starts so keyframes do not all line up.
            tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 1000)).await;
            let name = format!("bench-{i}");
            let mut connected_once = false;
            loop {
                let attempt = async {
                    let mut socket = connect(target, &publish_stream_id(&name)).await?;
                    connected_once = true;
                    publish(&mut socket, &file, None).await
                };
                match tokio::time::timeout_at(until, attempt).await {
                    Err(_) => return connected_once,
                    Ok(Ok(())) => return true,
                    Ok(Err(e)) => {
                        eprintln!("multi_publish: {name}: {e}; connecting again");
                        reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if tokio::time::timeout_at(until, tokio::time::sleep(RECONNECT_AFTER)).await.is_err() {
                    return connected_once;
                }
            }
        }));
    }
    let mut never = 0;
    for t in tasks {
        if !t.await.unwrap_or(false) {
            never += 1;
        }
    }
    let reconnects = reconnects.load(Ordering::Relaxed);
    eprintln!("multi_publish: {streams} streams, {reconnects} reconnects, {never} never connected");
    Ok(())
}
