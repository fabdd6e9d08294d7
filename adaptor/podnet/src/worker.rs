//! Worker side, StartVM and StopVM (caa-facts §6.2–6.3): the VXLAN device is created from the
//! host namespace straight into the pod namespace (its UDP socket stays in the host namespace,
//! the namespace of the request; no move, which costs the kernel an unregister and re-register)
//! under a temporary per-VNI name, since the kernel checks a new link's name in the requester's
//! namespace, then renamed `vxlan1` there; tc redirects join it to the pod interface both ways;
//! the tunnel's UDP flow bypasses conntrack.
//! [`WorkerTunnel`] records all of it so teardown removes exactly that, also after a restart.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use caa_userdata::PodNetwork;
use rtnetlink::LinkVxlan;
use serde::{Deserialize, Serialize};

use crate::error::{netlink, netlink_errno};
use crate::netns::{self, Ns, NsSet};
use crate::nl::{self, EEXIST, is_vxlan, link_by_name};
use crate::{Ipv4Cidr, PodNetError, nft, tc};

/// Name of the tunnel device inside the pod namespace.
pub const WORKER_VXLAN_NAME: &str = "vxlan1";

/// Everything worker-side setup creates, serializable so the adaptor can persist it with the
/// sandbox and tear the tunnel down after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTunnel {
    /// The pod's network namespace (from Kata).
    pub pod_netns: PathBuf,
    /// The namespace holding the tunnel's UDP socket and conntrack bypass.
    pub host_netns: PathBuf,
    /// The pod interface the CNI made (`interface`, usually `eth0`).
    pub pod_interface: String,
    /// The tunnel device in the pod namespace ([`WORKER_VXLAN_NAME`]).
    pub vxlan_interface: String,
    /// The device's name between creation and the rename (unique per VNI, so it is free in
    /// the host namespace); teardown removes a device of that name in either namespace.
    pub temp_interface: String,
    /// VNI.
    pub vni: u32,
    /// UDP destination port.
    pub port: u16,
    /// The VM's tunnel address.
    pub remote: Ipv4Addr,
    /// The worker's tunnel address (`worker-node-ip`).
    pub local: Ipv4Addr,
    /// The nftables table of the conntrack bypass.
    pub conntrack_table: String,
    /// Setup added the pod interface's ingress qdisc (so teardown deletes it); false in a
    /// planned record, where teardown deletes only our filter.
    pub pod_ingress_created: bool,
}

impl WorkerTunnel {
    /// The record of the tunnel `setup` will make, without touching anything: persist it first
    /// and a crash in the middle of setup can still be torn down. The remote is the VM's first
    /// address, or its second when the pod network is `dedicated` (§6.6).
    pub fn plan(
        pod_netns: &Path,
        host_netns: &Path,
        net: &PodNetwork,
        vm_ips: &[IpAddr],
    ) -> Result<Self, PodNetError> {
        let remote = match (net.dedicated, vm_ips) {
            (false, [first, ..]) => *first,
            (true, [_, second, ..]) => *second,
            _ => return Err(PodNetError::MissingVmAddress { count: vm_ips.len() }),
        };
        let IpAddr::V4(remote) = remote else {
            return Err(PodNetError::InvalidConfig {
                field: "VM address",
                value: remote.to_string(),
            });
        };
        let local =
            net.worker_node_ip.parse::<Ipv4Cidr>().map_err(|_| PodNetError::InvalidConfig {
                field: "worker-node-ip",
                value: net.worker_node_ip.clone(),
            })?;
        if net.interface.is_empty() {
            return Err(PodNetError::InvalidConfig { field: "interface", value: String::new() });
        }
        if net.vxlan_id == 0 || net.vxlan_id > crate::MAX_VNI || net.vxlan_port == 0 {
            let value = format!("vxlan-id {} vxlan-port {}", net.vxlan_id, net.vxlan_port);
            return Err(PodNetError::InvalidConfig { field: "vxlan-id", value });
        }
        Ok(WorkerTunnel {
            pod_netns: pod_netns.to_owned(),
            host_netns: host_netns.to_owned(),
            pod_interface: net.interface.clone(),
            vxlan_interface: WORKER_VXLAN_NAME.to_owned(),
            temp_interface: temp_name(net.vxlan_id),
            vni: net.vxlan_id,
            port: net.vxlan_port,
            remote,
            local: local.addr(),
            conntrack_table: nft::table_name(net.vxlan_id),
            pod_ingress_created: false,
        })
    }
}

/// The host-side name of a tunnel device before it moves (`caavx<vni>`, at most 13 bytes).
pub(crate) fn temp_name(vni: u32) -> String {
    format!("caavx{vni}")
}

/// Builds the planned tunnel (§6.2) and returns the completed record. On failure whatever was
/// made is removed again, and the error is returned.
pub async fn setup(plan: &WorkerTunnel) -> Result<WorkerTunnel, PodNetError> {
    let plan = plan.clone();
    netns::run(paths(&plan), move |set| setup_in(set, plan)).await
}

/// [`setup`] for callers without a runtime.
pub fn setup_blocking(plan: &WorkerTunnel) -> Result<WorkerTunnel, PodNetError> {
    let plan = plan.clone();
    netns::run_blocking(paths(&plan), move |set| setup_in(set, plan))
}

/// Removes what the record describes (§6.3): our tc filters (and the pod ingress qdisc when
/// setup created it), the tunnel device, the conntrack bypass. Idempotent; a pod namespace that
/// no longer exists is skipped. Every step is tried; the first failure is returned.
pub async fn teardown(tunnel: &WorkerTunnel) -> Result<(), PodNetError> {
    let t = tunnel.clone();
    netns::run(paths(&t), move |set| async move { teardown_in(&set, &t).await }).await
}

/// [`teardown`] for callers without a runtime.
pub fn teardown_blocking(tunnel: &WorkerTunnel) -> Result<(), PodNetError> {
    let t = tunnel.clone();
    netns::run_blocking(paths(&t), move |set| async move { teardown_in(&set, &t).await })
}

fn paths(t: &WorkerTunnel) -> Vec<PathBuf> {
    vec![t.host_netns.clone(), t.pod_netns.clone()]
}

async fn setup_in(set: NsSet, plan: WorkerTunnel) -> Result<WorkerTunnel, PodNetError> {
    let host = set.get(0, &plan.host_netns)?;
    let pod = set.get(1, &plan.pod_netns)?;
    let mut done = plan.clone();
    // A device of ours from an interrupted attempt would hold the VNI: remove it first.
    remove_tunnel_links(host, Some(pod), &plan).await?;
    let index = create_vxlan(host, pod, &plan).await?;
    match finish_setup(host, pod, index, &mut done).await {
        Ok(()) => {
            tracing::info!(vni = done.vni, remote = %done.remote, pod_netns = %done.pod_netns.display(),
                "worker tunnel up");
            Ok(done)
        }
        Err(e) => {
            if let Err(cleanup) = teardown_in(&set, &done).await {
                tracing::warn!(error = %cleanup, "cleaning up after a failed tunnel setup failed");
            }
            Err(e)
        }
    }
}

/// Creates the device in the pod namespace through the host namespace's socket; returns its
/// index there.
async fn create_vxlan(host: &Ns, pod: &Ns, t: &WorkerTunnel) -> Result<u32, PodNetError> {
    let msg = LinkVxlan::new(&t.temp_interface, t.vni)
        .remote(t.remote)
        .local(t.local)
        .port(t.port)
        .setns_by_fd(pod.raw_fd())
        .build();
    match host.handle().link().add(msg).execute().await {
        Ok(()) => {}
        Err(e) if netlink_errno(&e) == Some(EEXIST) => {
            return Err(PodNetError::VniInUse {
                vni: t.vni,
                port: t.port,
                netns: host.path().to_owned(),
            });
        }
        Err(e) => return Err(netlink(format!("create VXLAN {}", t.temp_interface), e)),
    }
    let index = nl::require_link(pod, &t.temp_interface).await?.header.index;
    nl::rename_link(pod, index, &t.vxlan_interface).await?;
    Ok(index)
}

async fn finish_setup(
    host: &Ns,
    pod: &Ns,
    index: u32,
    t: &mut WorkerTunnel,
) -> Result<(), PodNetError> {
    host.enter()?;
    nft::install(t.vni, t.remote, t.port)?;
    let h = pod.handle();
    let vx = index;
    let pod_if = nl::require_link(pod, &t.pod_interface).await?.header.index;
    let up = rtnetlink::LinkUnspec::new_with_index(vx).up().build();
    h.link()
        .set(up)
        .execute()
        .await
        .map_err(|e| netlink(format!("set {} up", t.vxlan_interface), e))?;
    t.pod_ingress_created = tc::add_ingress(h, pod_if, &t.pod_interface).await?;
    tc::add_ingress(h, vx, &t.vxlan_interface).await?;
    tc::del_redirect(h, pod_if, &t.pod_interface).await?;
    tc::add_redirect(h, pod_if, vx, (&t.pod_interface, &t.vxlan_interface)).await?;
    tc::add_redirect(h, vx, pod_if, (&t.vxlan_interface, &t.pod_interface)).await?;
    Ok(())
}

async fn teardown_in(set: &NsSet, t: &WorkerTunnel) -> Result<(), PodNetError> {
    let mut first_err = None;
    let mut note = |r: Result<(), PodNetError>| {
        if let Err(e) = r {
            tracing::warn!(error = %e, vni = t.vni, "tunnel teardown step failed");
            first_err.get_or_insert(e);
        }
    };
    let host = set.get(0, &t.host_netns)?;
    let pod = set.try_get(1);
    if let Some(pod) = pod {
        note(remove_pod_filters(pod, t).await);
    }
    note(remove_tunnel_links(host, pod, t).await);
    note(host.enter().and_then(|()| nft::remove(t.vni)));
    if first_err.is_none() {
        tracing::info!(vni = t.vni, pod_gone = pod.is_none(), "worker tunnel removed");
    }
    first_err.map_or(Ok(()), Err)
}

async fn remove_pod_filters(pod: &Ns, t: &WorkerTunnel) -> Result<(), PodNetError> {
    let Some(link) = link_by_name(pod.handle(), &t.pod_interface).await? else { return Ok(()) };
    let index = link.header.index;
    tc::del_redirect(pod.handle(), index, &t.pod_interface).await?;
    if t.pod_ingress_created {
        tc::del_ingress(pod.handle(), index, &t.pod_interface).await?;
    }
    Ok(())
}

/// Deletes the tunnel device in the pod namespace and the temporary one in the host namespace,
/// each only if it is a VXLAN with our VNI and port.
async fn remove_tunnel_links(
    host: &Ns,
    pod: Option<&Ns>,
    t: &WorkerTunnel,
) -> Result<(), PodNetError> {
    let places =
        [(pod, &t.vxlan_interface), (pod, &t.temp_interface), (Some(host), &t.temp_interface)];
    for (ns, name) in places {
        let Some(ns) = ns else { continue };
        if let Some(link) = link_by_name(ns.handle(), name).await? {
            if is_vxlan(&link, t.vni, t.port) {
                nl::delete_link(ns.handle(), link.header.index, name).await?;
            } else {
                tracing::warn!(interface = %name, netns = %ns.path().display(), vni = t.vni,
                    "not deleting an interface that is not this tunnel");
            }
        }
    }
    Ok(())
}
