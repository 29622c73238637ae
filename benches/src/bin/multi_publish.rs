//! Publishes an MPEG-TS file as N concurrent SRT streams, in real time, looping.
//!
//!   multi_publish FILE SECONDS STREAMS TARGET [TARGET...]
//!
//! Stream i is `live/bench-i`, sent to TARGET[i % targets] (host:port).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tessera_cli::publish::{connect, publish, publish_stream_id, TsFile};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 5, "usage: multi_publish FILE SECONDS STREAMS TARGET [TARGET...]");
    let data = std::fs::read(&args[1]).with_context(|| args[1].clone())?;
    let seconds: u64 = args[2].parse()?;
    let streams: usize = args[3].parse()?;
    let targets: Vec<SocketAddr> = args[4..].iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
    let file = std::sync::Arc::new(TsFile::new(&data)?);
    let loops = seconds.div_ceil(file.duration().as_secs().max(1));
    let mut tasks = Vec::new();
    for i in 0..streams {
        let file = file.clone();
        let target = targets[i % targets.len()];
        tasks.push(tokio::spawn(async move {
            // Spread the starts so keyframes do not all line up.
            tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 1000)).await;
            let mut socket = connect(target, &publish_stream_id(&format!("bench-{i}"))).await?;
            publish(&mut socket, &file, Some(loops)).await?;
            anyhow::Ok(())
        }));
    }
    let deadline = tokio::time::sleep(Duration::from_secs(seconds + 2));
    tokio::pin!(deadline);
    let mut failed = 0;
    for t in tasks {
        tokio::select! {
            r = t => if !matches!(r, Ok(Ok(()))) { failed += 1 },
            _ = &mut deadline => break,
        }
    }
    eprintln!("multi_publish: {streams} streams, {failed} failed");
    Ok(())
}
