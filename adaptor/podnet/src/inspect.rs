//! Worker side, CreateVM: reading the pod's network as the CNI built it (caa-facts §6.1) into
//! apf.json's `pod-network`, so the VM can recreate it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use caa_userdata::{PodNetwork, Route};

use crate::netns::{self, NsSet, SELF_NETNS};
use crate::nl::{self, format_mac, link_mac, link_mtu};
use crate::routes::{permanent_neighbors, to_route};
use crate::vni::Vni;
use crate::{Ipv4Cidr, PodNetError};

/// Upstream's default VXLAN UDP port.
pub const DEFAULT_VXLAN_PORT: u16 = 4789;

/// What [`inspect`] needs besides the pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectOptions {
    /// The namespace the adaptor's tunnel sockets live in (default [`SELF_NETNS`]).
    pub host_netns: PathBuf,
    /// `-host-interface`: the worker interface for tunnel traffic. When it is not the primary
    /// interface the pod network is `dedicated` (§6.6).
    pub host_interface: Option<String>,
    /// `POD_SUBNET_CIDRS`: each becomes a route via the pod's default gateway.
    pub pod_subnet_cidrs: Vec<Ipv4Cidr>,
    /// `VXLAN_PORT`.
    pub vxlan_port: u16,
    /// The sandbox's VNI, from [`crate::VniAllocator`].
    pub vni: Vni,
    /// `EXTERNAL_NETWORK_VIA_PODVM`: passed through to apf.json.
    pub external_net_via_pod_vm: bool,
}

impl InspectOptions {
    /// Options for `vni` with upstream's defaults: host namespace = this process's, primary
    /// interface, no extra subnets, port 4789.
    pub fn new(vni: Vni) -> Self {
        InspectOptions {
            host_netns: PathBuf::from(SELF_NETNS),
            host_interface: None,
            pod_subnet_cidrs: Vec::new(),
            vxlan_port: DEFAULT_VXLAN_PORT,
            vni,
            external_net_via_pod_vm: false,
        }
    }
}

/// Reads the pod network of the pod namespace `pod_netns` (§6.1).
pub async fn inspect(pod_netns: &Path, opts: &InspectOptions) -> Result<PodNetwork, PodNetError> {
    let (paths, pod, opts) =
        (vec![opts.host_netns.clone(), pod_netns.to_owned()], pod_netns.to_owned(), opts.clone());
    netns::run(paths, move |set| inspect_in(set, pod, opts)).await
}

/// [`inspect`] for callers without a runtime.
pub fn inspect_blocking(
    pod_netns: &Path,
    opts: &InspectOptions,
) -> Result<PodNetwork, PodNetError> {
    let (paths, pod, opts) =
        (vec![opts.host_netns.clone(), pod_netns.to_owned()], pod_netns.to_owned(), opts.clone());
    netns::run_blocking(paths, move |set| inspect_in(set, pod, opts))
}

async fn inspect_in(
    set: NsSet,
    pod_netns: PathBuf,
    opts: InspectOptions,
) -> Result<PodNetwork, PodNetError> {
    let host = set.get(0, &opts.host_netns)?;
    let primary = nl::primary_interface(host).await?;
    let (tunnel_if, dedicated) = match (&opts.host_interface, primary) {
        (Some(want), Some((_, primary))) => (want.clone(), *want != primary),
        // Without a default route there is nothing to be dedicated against.
        (Some(want), None) => (want.clone(), false),
        (None, Some((_, primary))) => (primary, false),
        (None, None) => return Err(PodNetError::NoDefaultRoute { netns: opts.host_netns.clone() }),
    };
    let link = nl::require_link(host, &tunnel_if).await?;
    let addrs = nl::ipv4_addrs(host.handle(), link.header.index).await?;
    let worker_ip = *addrs.first().ok_or_else(|| PodNetError::AddressCount {
        name: tunnel_if.clone(),
        count: 0,
        expected: "the tunnel interface needs one",
    })?;
    if addrs.len() > 1 {
        tracing::info!(interface = %tunnel_if, using = %worker_ip, count = addrs.len(),
            "the worker's tunnel interface has several IPv4 addresses; using the first");
    }

    let pod = set.get(1, &pod_netns)?;
    let (pod_index, pod_if) = nl::primary_interface(pod)
        .await?
        .ok_or_else(|| PodNetError::NoDefaultRoute { netns: pod.path().to_owned() })?;
    let pod_link = nl::require_link(pod, &pod_if).await?;
    let pod_addrs = nl::ipv4_addrs(pod.handle(), pod_index).await?;
    let [pod_ip] = pod_addrs.as_slice() else {
        return Err(PodNetError::AddressCount {
            name: pod_if,
            count: pod_addrs.len(),
            expected: "the pod interface needs exactly one",
        });
    };
    let links = nl::links(pod.handle()).await?;
    let main = nl::main_routes(pod.handle()).await?;
    let mut routes: Vec<Route> = main.iter().filter_map(|r| to_route(r, &links)).collect();
    let gateway = main
        .iter()
        .filter(|r| r.header.destination_prefix_length == 0 && nl::route_oif(r) == Some(pod_index))
        .find_map(nl::route_gateway);
    routes.extend(subnet_routes(&opts.pod_subnet_cidrs, gateway, &pod_if));
    let neighbors = permanent_neighbors(pod.handle(), pod_index, &pod_if).await?;

    Ok(PodNetwork {
        pod_ip: pod_ip.to_string(),
        pod_hw_addr: link_mac(&pod_link).map(format_mac).unwrap_or_default(),
        interface: pod_if,
        worker_node_ip: worker_ip.to_string(),
        tunnel_type: "vxlan".to_owned(),
        routes,
        neighbors,
        mtu: link_mtu(&pod_link).unwrap_or(1500),
        index: opts.vni.index,
        vxlan_port: opts.vxlan_port,
        vxlan_id: opts.vni.id,
        dedicated,
        external_net_via_pod_vm: opts.external_net_via_pod_vm,
    })
}

/// `POD_SUBNET_CIDRS` as routes via the pod's default gateway (none without a gateway).
fn subnet_routes(cidrs: &[Ipv4Cidr], gateway: Option<Ipv4Addr>, dev: &str) -> Vec<Route> {
    let Some(gw) = gateway else { return Vec::new() };
    cidrs
        .iter()
        .map(|c| Route {
            dst: c.network().to_string(),
            gw: gw.to_string(),
            dev: dev.to_owned(),
            ..Route::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_routes_go_via_the_default_gateway() {
        let cidrs = vec!["10.96.0.0/12".parse().unwrap(), "10.244.7.9/16".parse().unwrap()];
        let r = subnet_routes(&cidrs, Some(Ipv4Addr::new(10, 244, 1, 1)), "eth0");
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].dst.as_str(), r[0].gw.as_str(), r[0].dev.as_str()),
            ("10.96.0.0/12", "10.244.1.1", "eth0")
        );
        assert_eq!(r[1].dst, "10.244.0.0/16");
        assert!(subnet_routes(&cidrs, None, "eth0").is_empty());
    }
}
