//! Pod VM side, forwarder start (caa-facts §6.4): wait for the VM's network, create the VXLAN
//! in the VM's root namespace towards the worker, move it into the pod namespace under the pod
//! interface's name with the pod's MAC, address and MTU, and re-add the pod's routes and
//! neighbours. [`VmTunnel`] records it for [`vm_teardown`].

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use caa_userdata::PodNetwork;
use rtnetlink::packet_route::route::{RouteProtocol as NlProtocol, RouteScope as NlScope};
use rtnetlink::{LinkUnspec, LinkVxlan, RouteMessageBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{netlink, netlink_errno};
use crate::netns::{self, Ns, NsSet, SELF_NETNS};
use crate::nl::{self, EEXIST, is_gone, is_vxlan, link_by_name};
use crate::routes::{NeighborSpec, RouteSpec, ordered};
use crate::worker::temp_name;
use crate::{Ipv4Cidr, PodNetError, nft};

/// The VM-side tunnel interface's MTU is at most this (VXLAN over a 1500-byte underlay).
pub const VM_MTU_CAP: u32 = 1450;
/// Upstream waits this long for the primary interface, and again for its address.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(180);

/// What [`vm_setup`] needs besides the pod network and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmOptions {
    /// The VM's root namespace, where the tunnel socket lives (default [`SELF_NETNS`]).
    pub root_netns: PathBuf,
    /// The forwarder's `-host-interface`: the tunnel NIC in dedicated mode (§6.6).
    pub host_interface: Option<String>,
    /// How long to wait for the primary interface, and again for its address.
    pub wait: Duration,
    /// How often to look while waiting.
    pub poll: Duration,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            root_netns: PathBuf::from(SELF_NETNS),
            host_interface: None,
            wait: DEFAULT_WAIT,
            poll: Duration::from_secs(1),
        }
    }
}

/// What VM-side setup created, for [`vm_teardown`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmTunnel {
    /// The pod namespace (`/run/netns/podns`).
    pub pod_netns: PathBuf,
    /// The VM's root namespace.
    pub root_netns: PathBuf,
    /// The tunnel device in the pod namespace (the pod interface's name).
    pub interface: String,
    /// Its name in the root namespace before the move.
    pub temp_interface: String,
    /// VNI.
    pub vni: u32,
    /// UDP destination port.
    pub port: u16,
    /// The worker's tunnel address.
    pub remote: Ipv4Addr,
    /// The VM's tunnel address.
    pub local: Ipv4Addr,
    /// MTU given to the interface.
    pub mtu: u32,
    /// The nftables table of the conntrack bypass.
    pub conntrack_table: String,
}

/// The checked inputs of a VM-side setup.
#[derive(Debug, Clone)]
struct Plan {
    net: PodNetwork,
    pod_ip: Ipv4Cidr,
    mac: Vec<u8>,
    routes: Vec<RouteSpec>,
    neighbors: Vec<NeighborSpec>,
    tunnel: VmTunnel,
    opts: VmOptions,
}

/// Builds the VM side of the pod network in `pod_netns` (§6.4). On failure whatever was made
/// is removed again.
pub async fn vm_setup(
    net: &PodNetwork,
    pod_netns: &Path,
    opts: &VmOptions,
) -> Result<VmTunnel, PodNetError> {
    let plan = plan(net, pod_netns, opts)?;
    netns::run(vec![plan.opts.root_netns.clone(), pod_netns.to_owned()], move |set| {
        setup_in(set, plan)
    })
    .await
}

/// [`vm_setup`] for callers without a runtime.
pub fn vm_setup_blocking(
    net: &PodNetwork,
    pod_netns: &Path,
    opts: &VmOptions,
) -> Result<VmTunnel, PodNetError> {
    let plan = plan(net, pod_netns, opts)?;
    netns::run_blocking(vec![plan.opts.root_netns.clone(), pod_netns.to_owned()], move |set| {
        setup_in(set, plan)
    })
}

/// Removes the tunnel device (its address, routes and neighbours go with it) and the conntrack
/// bypass. Idempotent.
pub async fn vm_teardown(t: &VmTunnel) -> Result<(), PodNetError> {
    let t = t.clone();
    let paths = vec![t.root_netns.clone(), t.pod_netns.clone()];
    netns::run(paths, move |set| async move { teardown_in(&set, &t).await }).await
}

/// [`vm_teardown`] for callers without a runtime.
pub fn vm_teardown_blocking(t: &VmTunnel) -> Result<(), PodNetError> {
    let t = t.clone();
    let paths = vec![t.root_netns.clone(), t.pod_netns.clone()];
    netns::run_blocking(paths, move |set| async move { teardown_in(&set, &t).await })
}

fn plan(net: &PodNetwork, pod_netns: &Path, opts: &VmOptions) -> Result<Plan, PodNetError> {
    let bad = |field, value: &str| PodNetError::InvalidConfig { field, value: value.to_owned() };
    if net.external_net_via_pod_vm {
        return Err(PodNetError::NotSupported("external-net-via-pod-vm (§6.7)"));
    }
    if net.dedicated && opts.host_interface.is_none() {
        return Err(bad("dedicated without -host-interface", ""));
    }
    let pod_ip = net.pod_ip.parse::<Ipv4Cidr>().map_err(|_| bad("podip", &net.pod_ip))?;
    let mac =
        nl::parse_mac(&net.pod_hw_addr).ok_or_else(|| bad("pod-hw-addr", &net.pod_hw_addr))?;
    let worker = net
        .worker_node_ip
        .parse::<Ipv4Cidr>()
        .map_err(|_| bad("worker-node-ip", &net.worker_node_ip))?;
    if net.interface.is_empty() || net.interface.len() > 15 {
        return Err(bad("interface", &net.interface));
    }
    if net.vxlan_id == 0 || net.vxlan_id > crate::MAX_VNI || net.vxlan_port == 0 {
        return Err(bad("vxlan-id", &format!("{} port {}", net.vxlan_id, net.vxlan_port)));
    }
    let routes =
        net.routes.iter().map(|r| RouteSpec::parse(r, &net.interface)).collect::<Result<_, _>>()?;
    let neighbors = net
        .neighbors
        .iter()
        .map(|n| NeighborSpec::parse(n, &net.interface))
        .collect::<Result<_, _>>()?;
    let mtu = if net.mtu == 0 { VM_MTU_CAP } else { net.mtu.min(VM_MTU_CAP) };
    let tunnel = VmTunnel {
        pod_netns: pod_netns.to_owned(),
        root_netns: opts.root_netns.clone(),
        interface: net.interface.clone(),
        temp_interface: temp_name(net.vxlan_id),
        vni: net.vxlan_id,
        port: net.vxlan_port,
        remote: worker.addr(),
        local: Ipv4Addr::UNSPECIFIED,
        mtu,
        conntrack_table: nft::table_name(net.vxlan_id),
    };
    Ok(Plan { net: net.clone(), pod_ip, mac, routes, neighbors, tunnel, opts: opts.clone() })
}

async fn setup_in(set: NsSet, mut plan: Plan) -> Result<VmTunnel, PodNetError> {
    let root = set.get(0, &plan.opts.root_netns)?;
    let pod = set.get(1, &plan.tunnel.pod_netns)?;
    plan.tunnel.local = wait_for_local(root, &plan).await?;
    let t = &plan.tunnel;
    remove_links(root, Some(pod), t).await?;
    // Created from the root namespace (where its UDP socket stays) straight into the pod
    // namespace, no move. The kernel checks a new link's name in the requester's namespace,
    // where the pod interface's name (eth0) is usually taken, so it starts under the temporary
    // name and is renamed inside the pod namespace.
    let msg = LinkVxlan::new(&t.temp_interface, t.vni)
        .remote(t.remote)
        .local(t.local)
        .port(t.port)
        .setns_by_fd(pod.raw_fd());
    match root.handle().link().add(msg.build()).execute().await {
        Ok(()) => {}
        Err(e) if netlink_errno(&e) == Some(EEXIST) => {
            let netns = root.path().to_owned();
            return Err(PodNetError::VniInUse { vni: t.vni, port: t.port, netns });
        }
        Err(e) => return Err(netlink(format!("create VXLAN {}", t.temp_interface), e)),
    }
    match finish_setup(root, pod, &plan).await {
        Ok(()) => {
            let t = &plan.tunnel;
            tracing::info!(vni = t.vni, remote = %t.remote, local = %t.local, interface = %t.interface,
                mtu = t.mtu, "pod VM tunnel up");
            Ok(plan.tunnel)
        }
        Err(e) => {
            if let Err(cleanup) = teardown_in(&set, &plan.tunnel).await {
                tracing::warn!(error = %cleanup, "cleaning up after a failed VM tunnel setup failed");
            }
            Err(e)
        }
    }
}

/// Waits for the primary interface and its single IPv4 address (and, in dedicated mode, an
/// address on `-host-interface`); returns the tunnel's local address.
async fn wait_for_local(root: &Ns, plan: &Plan) -> Result<Ipv4Addr, PodNetError> {
    let (wait, poll) = (plan.opts.wait, plan.opts.poll);
    let primary = poll_until(wait, poll, "a primary interface (IPv4 default route)", || async {
        nl::primary_interface(root).await
    })
    .await?;
    let what = format!("an IPv4 address on {}", primary.1);
    let primary_ip = poll_until(wait, poll, &what, || async {
        let addrs = nl::ipv4_addrs(root.handle(), primary.0).await?;
        match addrs.len() {
            0 => Ok(None),
            1 => Ok(Some(addrs[0].addr())),
            n => Err(PodNetError::AddressCount {
                name: primary.1.clone(),
                count: n,
                expected: "the primary interface needs exactly one",
            }),
        }
    })
    .await?;
    let Some(dedicated_if) = plan.opts.host_interface.as_deref().filter(|_| plan.net.dedicated)
    else {
        return Ok(primary_ip);
    };
    if dedicated_if == primary.1 {
        let value = format!("{dedicated_if} is the primary interface");
        return Err(PodNetError::InvalidConfig { field: "-host-interface", value });
    }
    let what = format!("an IPv4 address on {dedicated_if}");
    poll_until(wait, poll, &what, || async {
        let Some(link) = link_by_name(root.handle(), dedicated_if).await? else { return Ok(None) };
        Ok(nl::ipv4_addrs(root.handle(), link.header.index).await?.first().map(|c| c.addr()))
    })
    .await
}

async fn poll_until<T, F, Fut>(
    wait: Duration,
    poll: Duration,
    what: &str,
    mut probe: F,
) -> Result<T, PodNetError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, PodNetError>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Err(PodNetError::Timeout { what: what.to_owned(), waited: wait });
        }
        tokio::time::sleep(poll).await;
    }
}

async fn finish_setup(root: &Ns, pod: &Ns, plan: &Plan) -> Result<(), PodNetError> {
    let t = &plan.tunnel;
    root.enter()?;
    nft::install(t.vni, t.remote, t.port)?;
    let h = pod.handle();
    let index = nl::require_link(pod, &t.temp_interface).await?.header.index;
    nl::rename_link(pod, index, &t.interface).await?;
    let set = LinkUnspec::new_with_index(index).address(plan.mac.clone()).mtu(t.mtu).build();
    h.link()
        .set(set)
        .execute()
        .await
        .map_err(|e| netlink(format!("set MAC and MTU of {}", t.interface), e))?;
    let (ip, prefix) = (plan.pod_ip.addr(), plan.pod_ip.prefix());
    match h.address().add(index, ip.into(), prefix).execute().await {
        Err(e) if netlink_errno(&e) != Some(EEXIST) => {
            return Err(netlink(format!("add {} to {}", plan.pod_ip, t.interface), e));
        }
        _ => {}
    }
    let up = LinkUnspec::new_with_index(index).up().build();
    h.link().set(up).execute().await.map_err(|e| netlink(format!("set {} up", t.interface), e))?;
    if prefix != 32 {
        // The CNI's routes are re-added exactly as they were, so drop the kernel's own.
        let net = plan.pod_ip.network();
        let subnet = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(net.addr(), net.prefix())
            .output_interface(index)
            .protocol(NlProtocol::Kernel)
            .scope(NlScope::Link)
            .build();
        match h.route().del(subnet).execute().await {
            Err(e) if !is_gone(&e) => return Err(netlink(format!("delete the {net} route"), e)),
            _ => {}
        }
    }
    for r in ordered(plan.routes.clone()) {
        let oif = nl::require_link(pod, &r.dev).await?.header.index;
        match h.route().add(r.message(oif)).execute().await {
            Err(e) if netlink_errno(&e) != Some(EEXIST) => {
                return Err(netlink(
                    format!("add route {} via {:?} dev {}", r.dst, r.gw, r.dev),
                    e,
                ));
            }
            _ => {}
        }
    }
    for n in &plan.neighbors {
        let dev = nl::require_link(pod, &n.dev).await?.header.index;
        h.neighbours()
            .add(dev, n.ip.into())
            .link_layer_address(&n.mac)
            .state(n.state)
            .replace()
            .execute()
            .await
            .map_err(|e| netlink(format!("add neighbour {} on {}", n.ip, n.dev), e))?;
    }
    Ok(())
}

async fn teardown_in(set: &NsSet, t: &VmTunnel) -> Result<(), PodNetError> {
    let root = set.get(0, &t.root_netns)?;
    let links = remove_links(root, set.try_get(1), t).await;
    let table = root.enter().and_then(|()| nft::remove(t.vni));
    links.and(table)
}

/// Deletes the tunnel device in the pod namespace and the temporary one in the root namespace,
/// each only if it is a VXLAN with our VNI and port.
async fn remove_links(root: &Ns, pod: Option<&Ns>, t: &VmTunnel) -> Result<(), PodNetError> {
    let places = [(pod, &t.interface), (pod, &t.temp_interface), (Some(root), &t.temp_interface)];
    for (ns, name) in places {
        let Some(ns) = ns else { continue };
        if let Some(link) = link_by_name(ns.handle(), name).await?
            && is_vxlan(&link, t.vni, t.port)
        {
            nl::delete_link(ns.handle(), link.header.index, name).await?;
        }
    }
    Ok(())
}
