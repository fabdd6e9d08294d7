//! A pod as a CNI plugin would leave it on the worker node, for the real-VM pod network tests and
//! the quick start: a network namespace whose `eth0` holds the pod IP and MAC with a default
//! route, and a veth peer in this host's namespace holding the gateway. Needs root.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use caa_test_support::netns::{Netns, sh};

/// The pod IP.
pub const POD_IP: &str = "10.244.250.7";
/// The pod's gateway (on the host side of its veth).
pub const POD_GW: &str = "10.244.250.1";
/// The pod's MAC.
pub const POD_MAC: &str = "0a:58:0a:f4:fa:07";
/// Where the test pod VM's HTTP server listens inside its pod namespace.
pub const POD_HTTP_PORT: u16 = 8080;
/// What that server answers starts with this.
pub const POD_HTTP_BODY: &str = "served by the test pod VM";

/// The pod's namespace; removed (with its veth) on drop.
#[derive(Debug)]
pub struct CniPod {
    netns: Netns,
}

impl CniPod {
    /// Makes the namespace and its veth.
    pub fn create() -> CniPod {
        let netns = Netns::new("e");
        let host_if = format!("caae{}", std::process::id() % 100_000);
        let peer = ["link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns"];
        sh(&[&["ip"][..], &peer, &[netns.name.as_str()]].concat());
        sh(&["ip", "addr", "add", &format!("{POD_GW}/24"), "dev", &host_if]);
        sh(&["ip", "link", "set", &host_if, "up"]);
        netns.ip(&["link", "set", "eth0", "address", POD_MAC]);
        netns.ip(&["addr", "add", &format!("{POD_IP}/24"), "dev", "eth0"]);
        netns.ip(&["link", "set", "eth0", "up"]);
        netns.ip(&["route", "add", "default", "via", POD_GW]);
        CniPod { netns }
    }

    /// The path Kata would send as `networkNamespacePath`.
    pub fn path(&self) -> PathBuf {
        self.netns.path()
    }

    /// Whether the adaptor's tunnel device is in the pod's namespace.
    pub fn has_tunnel(&self) -> bool {
        self.netns.link_names().iter().any(|l| l.starts_with("vxlan1"))
    }

    /// `ip -d link show vxlan1` in the pod's namespace (diagnostics).
    pub fn tunnel_details(&self) -> String {
        self.netns.ip(&["-d", "link", "show"])
    }
}

/// `GET /` from the pod IP's HTTP port, from this host's namespace: through the pod's veth, and
/// when the pod runs in a VM, the tunnel. Returns the whole response.
pub fn http_get_pod_ip() -> std::io::Result<String> {
    let addr = SocketAddr::new(POD_IP.parse().expect("pod IP"), POD_HTTP_PORT);
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    Ok(response)
}

/// [`http_get_pod_ip`] retried for up to `limit` (ARP and the first frames through a fresh tunnel
/// take a moment).
pub fn http_get_pod_ip_within(limit: Duration) -> std::io::Result<String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match http_get_pod_ip() {
            Ok(body) => return Ok(body),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}
