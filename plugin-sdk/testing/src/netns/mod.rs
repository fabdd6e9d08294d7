//! A worker node, its pod and a pod VM as network namespaces on this machine, built with `ip`
//! and removed by Drop guards. Shared by the pod-networking, adaptor and forwarder tests and the
//! pod-networking benchmark; all of it needs root.
//!
//! ```text
//!  worker ns W                                     "VM" ns V
//!  u0 192.168.100.1/24  <──── veth underlay ────>  eth0 192.168.100.2/24
//!  vp0 10.244.1.1/24 (pod gateway)                 pod ns PV (the VM's /run/netns/podns)
//!    │ veth
//!  pod ns P: eth0 10.244.1.7/24, default via 10.244.1.1
//! ```

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{CloneFlags, setns};

pub mod traffic;

/// The env var that enables these tests (they need root).
pub const ENV: &str = "CAA_TEST_NETNS";

/// True when the namespace tests may run; otherwise prints the skip line.
pub fn enabled() -> bool {
    if std::env::var(ENV).as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipping: set {ENV}=1 (needs root)");
    false
}

/// Runs a command, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `caa<pid>x<n><role>` (unique across parallel tests and runs).
    pub fn new(role: &str) -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("caa{}x{n}{role}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip -n <ns> <args…>`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// `tc -n <ns> <args…>`.
    pub fn tc(&self, args: &[&str]) -> String {
        let mut full = vec!["tc", "-n", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Names of the namespace's links.
    pub fn link_names(&self) -> Vec<String> {
        let out = self.ip(&["-br", "link"]);
        out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect()
    }

    /// The nftables tables of the namespace, one `table ip name` per line.
    pub fn nft_tables(&self) -> String {
        self.exec(&["nft", "list", "tables"])
    }

    /// Deletes the namespace now (what the guard would do).
    pub fn delete(&self) {
        sh(&["ip", "netns", "del", &self.name]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Runs `f` on a thread inside `ns`; sockets it creates stay in that namespace.
pub fn in_netns<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(ns).unwrap_or_else(|e| panic!("open {}: {e}", ns.display()));
    std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// Worker and VM namespaces joined by the underlay, each with a default route over it.
#[derive(Debug)]
pub struct Underlay {
    pub worker: Netns,
    pub vm: Netns,
}

pub const WORKER_IP: &str = "192.168.100.1";
pub const VM_IP: &str = "192.168.100.2";
pub const POD_IP: &str = "10.244.1.7";
pub const POD_GW: &str = "10.244.1.1";

impl Underlay {
    pub fn create() -> Underlay {
        let worker = Netns::new("w");
        let vm = Netns::new("v");
        // The VM's NIC is `eth0`, like the pod interface it recreates in its pod namespace: a real
        // VM has both, and the tunnel code must cope with the clash.
        worker
            .ip(&["link", "add", "u0", "type", "veth", "peer", "name", "eth0", "netns", &vm.name]);
        worker.ip(&["addr", "add", "192.168.100.1/24", "dev", "u0"]);
        worker.ip(&["link", "set", "u0", "up"]);
        worker.ip(&["route", "add", "default", "via", VM_IP]);
        vm.ip(&["addr", "add", "192.168.100.2/24", "dev", "eth0"]);
        vm.ip(&["link", "set", "eth0", "up"]);
        vm.ip(&["route", "add", "default", "via", WORKER_IP]);
        Underlay { worker, vm }
    }

    /// A CNI-like pod on the worker: its own namespace with `eth0` (`mac`, 10.244.1.7/24,
    /// default via 10.244.1.1) and a veth peer `host_if` in the worker namespace, which holds
    /// the gateway address when `gateway` (only one pod at a time can carry traffic).
    pub fn add_pod(&self, host_if: &str, mac: &str, gateway: bool) -> Netns {
        let pod = Netns::new("p");
        let w = &self.worker;
        w.ip(&["link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", &pod.name]);
        if gateway {
            w.ip(&["addr", "add", "10.244.1.1/24", "dev", host_if]);
        }
        w.ip(&["link", "set", host_if, "up"]);
        pod.ip(&["link", "set", "eth0", "address", mac]);
        pod.ip(&["addr", "add", "10.244.1.7/24", "dev", "eth0"]);
        pod.ip(&["link", "set", "eth0", "up"]);
        pod.ip(&["route", "add", "default", "via", POD_GW]);
        pod
    }

    /// The VM's pod namespace (`/run/netns/podns` in a real VM).
    pub fn add_vm_podns(&self) -> Netns {
        Netns::new("q")
    }
}
