//! A datagram network for the simulator, for QUIC to run over unchanged: each node binds a
//! [`SimSocket`] (quinn's [`AsyncUdpSocket`]) on an address of its own, and the
//! [`UdpNet`] carries its datagrams to the others after a one-way delay, dropping those on
//! cut links and, at random from the network's seed, a share of the rest.
//!
//! Under [`crate::sim`] the delay is virtual and the losses are drawn from the seed, so a
//! run over real QUIC (its handshakes, retransmissions, flow control, idle timeouts) replays
//! like any other. Outside a simulation it works on real tokio time.
//!
//! Datagrams are delivered whole, after the network's delay (those sent at one instant may
//! arrive in any order, as UDP allows); a socket's queue is unbounded, as a simulated host
//! never runs out of buffer. Nothing here blocks: a send never waits.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

use crate::cluster::Rng;

/// The network: its sockets, cut links, loss and delay.
#[derive(Clone)]
pub struct UdpNet {
    state: Arc<Mutex<NetState>>,
}

struct NetState {
    sockets: BTreeMap<SocketAddr, Inbox>,
    /// One-way cuts, (from, to) by host.
    cut: BTreeSet<(IpAddr, IpAddr)>,
    /// Datagrams lost per million.
    loss_ppm: u64,
    delay: Duration,
    rng: Rng,
    delivered: u64,
    dropped: u64,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<(SocketAddr, Bytes)>,
    waker: Option<Waker>,
}

/// What the network has carried so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetCounts {
    pub delivered: u64,
    pub dropped: u64,
}

impl tessera_cluster::host::DatagramNetwork for UdpNet {
    fn bind(&self, addr: SocketAddr) -> Arc<dyn AsyncUdpSocket> {
        UdpNet::bind(self, addr)
    }
}

impl UdpNet {
    /// A network whose every datagram takes `delay`, its losses drawn from `seed`.
    pub fn new(seed: u64, delay: Duration) -> UdpNet {
        let state = NetState {
            sockets: BTreeMap::new(),
            cut: BTreeSet::new(),
            loss_ppm: 0,
            delay,
            rng: Rng::new(seed),
            delivered: 0,
            dropped: 0,
        };
        UdpNet { state: Arc::new(Mutex::new(state)) }
    }

    /// A socket at `addr`; one bound there before is replaced (a restarted process), and
    /// what was queued for it is lost.
    pub fn bind(&self, addr: SocketAddr) -> Arc<SimSocket> {
        self.lock().sockets.insert(addr, Inbox::default());
        Arc::new(SimSocket { addr, net: self.clone() })
    }

    /// Removes the socket at `addr` (its process died): datagrams to it are lost.
    pub fn unbind(&self, addr: SocketAddr) {
        self.lock().sockets.remove(&addr);
    }

    /// Cuts datagrams from host `from` to host `to` (one way).
    pub fn cut(&self, from: IpAddr, to: IpAddr) {
        self.lock().cut.insert((from, to));
    }

    /// Cuts both ways between `a` and `b`.
    pub fn partition(&self, a: IpAddr, b: IpAddr) {
        self.cut(a, b);
        self.cut(b, a);
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// Loses `per_million` of the datagrams on links that are up.
    pub fn set_loss(&self, per_million: u64) {
        self.lock().loss_ppm = per_million.min(1_000_000);
    }

    pub fn counts(&self) -> NetCounts {
        let s = self.lock();
        NetCounts { delivered: s.delivered, dropped: s.dropped }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NetState> {
        self.state.lock().expect("udp net")
    }

    /// Carries one datagram from `from` to `to`, after the network's delay.
    fn send(&self, from: SocketAddr, to: SocketAddr, datagram: Bytes) {
        let delay = {
            let mut s = self.lock();
            let lost = s.loss_ppm > 0 && s.rng.below(1_000_000) < s.loss_ppm;
            if lost || s.cut.contains(&(from.ip(), to.ip())) || !s.sockets.contains_key(&to) {
                s.dropped += 1;
                return;
            }
            s.delay
        };
        let net = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut s = net.lock();
            // A link cut while the datagram was on its way loses it too.
            if s.cut.contains(&(from.ip(), to.ip())) {
                s.dropped += 1;
                return;
            }
            let Some(inbox) = s.sockets.get_mut(&to) else {
                s.dropped += 1;
                return;
            };
            inbox.queue.push_back((from, datagram));
            let waker = inbox.waker.take();
            s.delivered += 1;
            drop(s);
            if let Some(w) = waker {
                w.wake();
            }
        });
    }
}

/// One node's socket on a [`UdpNet`].
pub struct SimSocket {
    addr: SocketAddr,
    net: UdpNet,
}

impl fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimSocket").field("addr", &self.addr).finish()
    }
}

/// A send never waits: the poller is always ready.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for SimSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let size = transmit.segment_size.unwrap_or(transmit.contents.len()).max(1);
        for datagram in transmit.contents.chunks(size) {
            self.net.send(self.addr, transmit.destination, Bytes::copy_from_slice(datagram));
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut s = self.net.lock();
        let Some(inbox) = s.sockets.get_mut(&self.addr) else {
            // Unbound (its process is dead): nothing will ever arrive.
            return Poll::Pending;
        };
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let Some((from, datagram)) = inbox.queue.pop_front() else { break };
            let len = datagram.len().min(bufs[n].len());
            bufs[n][..len].copy_from_slice(&datagram[..len]);
            meta[n] = RecvMeta { addr: from, len, stride: len, ecn: None, dst_ip: Some(self.addr.ip()) };
            n += 1;
        }
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        inbox.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
