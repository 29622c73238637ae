//! A UDP link between nodes that a test can cut or slow: a proxy in front of one node's
//! cluster address (the one it advertises), forwarding each peer's datagrams both ways, cut
//! off, lossy or delayed per peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// What happens to one peer's datagrams.
#[derive(Clone, Copy, Default)]
struct Fault {
    cut: bool,
    /// Every `drop_every`-th datagram is lost (0: none).
    drop_every: u64,
    delay: std::time::Duration,
}

#[derive(Default)]
struct Faults {
    by_port: HashMap<u16, Fault>,
    counter: u64,
}

impl Faults {
    /// Whether to pass a datagram of `port`, and after how long.
    fn verdict(&mut self, port: u16) -> Option<std::time::Duration> {
        let f = self.by_port.get(&port).copied().unwrap_or_default();
        self.counter += 1;
        if f.cut || (f.drop_every > 0 && self.counter.is_multiple_of(f.drop_every)) {
            return None;
        }
        Some(f.delay)
    }
}

/// The proxy: `addr` stands for the node at `target`.
pub struct FaultyLink {
    pub addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    task: tokio::task::JoinHandle<()>,
}

async fn pass(socket: &Arc<UdpSocket>, data: &[u8], to: Option<SocketAddr>, delay: std::time::Duration) {
    let send = move |socket: Arc<UdpSocket>, data: Vec<u8>| async move {
        let _ = match to {
            Some(to) => socket.send_to(&data, to).await,
            None => socket.send(&data).await,
        };
    };
    if delay.is_zero() {
        send(socket.clone(), data.to_vec()).await;
    } else {
        let (socket, data) = (socket.clone(), data.to_vec());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            send(socket, data).await;
        });
    }
}

impl FaultyLink {
    pub async fn start(target: SocketAddr) -> FaultyLink {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let blocked = faults.clone();
        let task = tokio::spawn(async move {
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, peer)) = front.recv_from(&mut buf).await else { return };
                let Some(delay) = blocked.lock().unwrap().verdict(peer.port()) else { continue };
                let up = match upstreams.get(&peer) {
                    Some(u) => u.clone(),
                    None => {
                        // One upstream socket per peer; what the node answers on it goes back
                        // to that peer, unless it is cut off.
                        let u = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        u.connect(target).await.unwrap();
                        let (front, u2, blocked) = (front.clone(), u.clone(), blocked.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 65536];
                            while let Ok(n) = u2.recv(&mut buf).await {
                                let verdict = blocked.lock().unwrap().verdict(peer.port());
                                if let Some(delay) = verdict {
                                    pass(&front, &buf[..n], Some(peer), delay).await;
                                }
                            }
                        });
                        upstreams.insert(peer, u.clone());
                        u
                    }
                };
                pass(&up, &buf[..n], None, delay).await;
            }
        });
        FaultyLink { addr, faults, task }
    }

    /// Drops everything to and from the peer whose socket has this port.
    pub fn cut(&self, peer_port: u16) {
        self.faults.lock().unwrap().by_port.entry(peer_port).or_default().cut = true;
    }

    /// Loses every `drop_every`-th datagram to and from the peer and delays the rest.
    pub fn slow(&self, peer_port: u16, drop_every: u64, delay: std::time::Duration) {
        let mut faults = self.faults.lock().unwrap();
        let f = faults.by_port.entry(peer_port).or_default();
        f.drop_every = drop_every;
        f.delay = delay;
    }

    /// Every peer's datagrams pass again, at once.
    pub fn heal(&self) {
        self.faults.lock().unwrap().by_port.clear();
    }
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
