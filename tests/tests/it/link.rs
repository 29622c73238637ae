//! A UDP link between nodes that a test can cut: a proxy in front of one node's cluster
//! address (the one it advertises), forwarding each peer's datagrams both ways unless that
//! peer is cut off.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// The proxy: `addr` stands for the node at `target`.
pub struct FaultyLink {
    pub addr: SocketAddr,
    cut: Arc<Mutex<HashSet<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyLink {
    pub async fn start(target: SocketAddr) -> FaultyLink {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let cut: Arc<Mutex<HashSet<u16>>> = Arc::default();
        let blocked = cut.clone();
        let task = tokio::spawn(async move {
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, peer)) = front.recv_from(&mut buf).await else { return };
                if blocked.lock().unwrap().contains(&peer.port()) {
                    continue;
                }
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
                                if !blocked.lock().unwrap().contains(&peer.port()) {
                                    let _ = front.send_to(&buf[..n], peer).await;
                                }
                            }
                        });
                        upstreams.insert(peer, u.clone());
                        u
                    }
                };
                let _ = up.send(&buf[..n]).await;
            }
        });
        FaultyLink { addr, cut, task }
    }

    /// Drops everything to and from the peer whose socket has this port.
    pub fn cut(&self, peer_port: u16) {
        self.cut.lock().unwrap().insert(peer_port);
    }

    pub fn heal(&self) {
        self.cut.lock().unwrap().clear();
    }
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
