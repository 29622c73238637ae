//! Nodes as separate hosts: each node process runs in a network namespace of its own,
//! joined to the others through a bridge, with its own address and ports, and the test
//! reaches every host from outside (as publishers and players do). Faults are the
//! kernel's: nftables drops packets (both ways, one way, or at random), tbf limits
//! bandwidth, kill -9 stops a process, a small tmpfs fills up; a host's clock is moved
//! with libfaketime. This kernel has no netem:
//! delay would come from a proxy, and no test here needs one.
//!
//! The suite needs root (it creates namespaces, links, addresses and rulesets of its own,
//! and removes them when a test ends). It fails, never skips, without it.

mod clock;
mod disk;
mod fencing;
mod partition;

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `program args`; panics with its error output if it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("{program} cannot run ({e}): the namespace suite needs iproute2 and nftables (scripts/setup.sh)")
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed (the namespace suite needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program args` inside namespace `ns`.
fn run_in(ns: &str, program: &str, args: &[&str]) {
    run("ip", &[&["netns", "exec", ns, program], args].concat());
}

/// A private network: a switch (a bridge in a namespace of its own) and hosts on it, each
/// in its own namespace with address `10.X.Y.i`, plus a link from the test's own namespace
/// (`10.X.Y.254`) so that the test reaches every host. Removed on drop.
pub(crate) struct Network {
    switch: String,
    pub(crate) hosts: Vec<Host>,
}

/// One host of a [`Network`].
pub(crate) struct Host {
    pub(crate) netns: String,
    pub(crate) ip: Ipv4Addr,
}

impl Network {
    pub(crate) fn new(hosts: usize) -> Network {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}n{k}", pid % 100_000);
        let (x, y) = (100 + (pid % 100) as u8, k as u8);
        let switch = format!("tsw{tag}");
        run("ip", &["netns", "add", &switch]);
        let network = Network { switch: switch.clone(), hosts: Vec::new() };
        run_in(&switch, "ip", &["link", "add", "br0", "type", "bridge"]);
        run_in(&switch, "ip", &["link", "set", "br0", "up"]);
        // The test's own side.
        let outside = format!("tv{tag}");
        run("ip", &["link", "add", &outside, "type", "veth", "peer", "name", "outside", "netns", &switch]);
        run("ip", &["addr", "add", &format!("10.{x}.{y}.254/24"), "dev", &outside]);
        run("ip", &["link", "set", &outside, "up"]);
        run_in(&switch, "ip", &["link", "set", "outside", "master", "br0", "up"]);
        let mut network = network;
        for i in 1..=hosts {
            let netns = format!("th{tag}h{i}");
            run("ip", &["netns", "add", &netns]);
            let port = format!("p{i}");
            run(
                "ip",
                &["link", "add", "eth0", "netns", &netns, "type", "veth", "peer", "name", &port, "netns", &switch],
            );
            run_in(&switch, "ip", &["link", "set", &port, "master", "br0", "up"]);
            let ip = Ipv4Addr::new(10, x, y, i as u8);
            run_in(&netns, "ip", &["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            run_in(&netns, "ip", &["link", "set", "eth0", "up"]);
            run_in(&netns, "ip", &["link", "set", "lo", "up"]);
            network.hosts.push(Host { netns, ip });
        }
        network
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.netns]).status();
        }
        // The switch's links go with it, and so does the test's end of its own link.
        let _ = Command::new("ip").args(["netns", "del", &self.switch]).status();
    }
}

impl Host {
    /// Replaces the host's fault rules with `rules` (nftables statements in the input and
    /// output chains of table `inet fault`).
    fn faults(&self, input: &[String], output: &[String]) {
        let _ =
            Command::new("ip").args(["netns", "exec", &self.netns, "nft", "delete", "table", "inet", "fault"]).output();
        let mut ruleset = String::from("table inet fault {\n chain input { type filter hook input priority 0;\n");
        input.iter().for_each(|r| ruleset += &format!("  {r}\n"));
        ruleset += " }\n chain output { type filter hook output priority 0;\n";
        output.iter().for_each(|r| ruleset += &format!("  {r}\n"));
        ruleset += " }\n}\n";
        let file = std::env::temp_dir().join(format!("{}.nft", self.netns));
        std::fs::write(&file, ruleset).unwrap();
        run_in(&self.netns, "nft", &["-f", file.to_str().unwrap()]);
    }

    /// Nothing passes between this host and `peers`, either way.
    pub(crate) fn cut(&self, peers: &[&Host]) {
        let input = peers.iter().map(|p| format!("ip saddr {} drop", p.ip)).collect::<Vec<_>>();
        let output = peers.iter().map(|p| format!("ip daddr {} drop", p.ip)).collect::<Vec<_>>();
        self.faults(&input, &output);
    }

    /// Nothing this host sends reaches `peers`; what they send still arrives.
    pub(crate) fn cut_outgoing(&self, peers: &[&Host]) {
        let output = peers.iter().map(|p| format!("ip daddr {} drop", p.ip)).collect::<Vec<_>>();
        self.faults(&[], &output);
    }

    /// `percent` of the packets between this host and `peers` are lost, each way.
    pub(crate) fn lose(&self, peers: &[&Host], percent: u32) {
        let rule = |dir: &str, p: &Host| format!("ip {dir} {} numgen random mod 100 < {percent} drop", p.ip);
        let input = peers.iter().map(|p| rule("saddr", p)).collect::<Vec<_>>();
        let output = peers.iter().map(|p| rule("daddr", p)).collect::<Vec<_>>();
        self.faults(&input, &output);
    }

    /// Every fault rule and bandwidth limit gone.
    pub(crate) fn heal(&self) {
        self.faults(&[], &[]);
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.netns, "tc", "qdisc", "del", "dev", "eth0", "root"])
            .output();
    }

    /// What the host sends is limited to `kbit` kbit/s (tbf).
    pub(crate) fn limit(&self, kbit: u32) {
        let rate = format!("{kbit}kbit");
        run_in(
            &self.netns,
            "tc",
            &["qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", &rate, "burst", "32kbit", "latency", "400ms"],
        );
    }
}
