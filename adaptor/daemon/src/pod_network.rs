//! The worker side of pod networking as the sandbox flows use it: [`PodNetworking`] owns the
//! durable VNI allocator and the tunnel settings from the configuration, and turns caa-podnet's
//! inspect / setup / teardown into the steps of CreateVM, StartVM and StopVM.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use caa_podnet::{
    InspectOptions, Ipv4Cidr, PodNetError, PodNetwork, SELF_NETNS, VniAllocator, WorkerTunnel,
};

use crate::config::NetworkConfig;

/// The VNI allocations file, under the state directory (a subdirectory, so the sandbox record
/// store never sees it).
pub const VNI_FILE: &str = "podnet/vni.json";

/// Pod networking for this node's sandboxes. One per adaptor.
#[derive(Debug)]
pub struct PodNetworking {
    vnis: VniAllocator,
    host_netns: PathBuf,
    host_interface: Option<String>,
    pod_subnet_cidrs: Vec<Ipv4Cidr>,
    vxlan_port: u16,
}

impl PodNetworking {
    /// Opens the VNI allocations in `state_dir` and takes the tunnel settings from `config`.
    /// `host_netns` is the namespace that holds the tunnels' UDP sockets (the adaptor's own,
    /// [`SELF_NETNS`], except in tests).
    pub fn open(
        state_dir: &Path,
        config: &NetworkConfig,
        host_netns: Option<PathBuf>,
    ) -> Result<PodNetworking, PodNetError> {
        let path = state_dir.join(VNI_FILE);
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| PodNetError::VniState { path: dir.to_owned(), source })?;
        }
        let vnis = VniAllocator::open(path, config.vxlan_min_id)?;
        let pod_subnet_cidrs = config
            .pod_subnet_cidrs
            .iter()
            .filter_map(|c| match c.addr {
                IpAddr::V4(a) => Ipv4Cidr::new(a, c.prefix),
                IpAddr::V6(_) => None,
            })
            .collect();
        Ok(PodNetworking {
            vnis,
            host_netns: host_netns.unwrap_or_else(|| PathBuf::from(SELF_NETNS)),
            host_interface: config.host_interface.clone(),
            pod_subnet_cidrs,
            vxlan_port: config.vxlan_port,
        })
    }

    /// CreateVM: allocates the sandbox's VNI (or finds the one it holds) and reads the pod
    /// network of `netns` for apf.json. On failure the VNI is released again.
    pub async fn inspect(&self, sandbox_id: &str, netns: &Path) -> Result<PodNetwork, PodNetError> {
        let vni = self.vnis.allocate(sandbox_id)?;
        let opts = InspectOptions {
            host_netns: self.host_netns.clone(),
            host_interface: self.host_interface.clone(),
            pod_subnet_cidrs: self.pod_subnet_cidrs.clone(),
            vxlan_port: self.vxlan_port,
            vni,
            external_net_via_pod_vm: false,
        };
        let inspected = caa_podnet::inspect(netns, &opts).await;
        if inspected.is_err() {
            self.release(sandbox_id);
        }
        inspected
    }

    /// StartVM: the record of the tunnel to the VM at `vm_ips`, before anything is built.
    pub fn plan(
        &self,
        netns: &Path,
        network: &PodNetwork,
        vm_ips: &[IpAddr],
    ) -> Result<WorkerTunnel, PodNetError> {
        WorkerTunnel::plan(netns, &self.host_netns, network, vm_ips)
    }

    /// StartVM: builds the planned tunnel; returns the completed record.
    pub async fn setup(&self, plan: &WorkerTunnel) -> Result<WorkerTunnel, PodNetError> {
        caa_podnet::setup(plan).await
    }

    /// StopVM, a failed start or reconciliation: removes the tunnel the record describes.
    pub async fn teardown(&self, tunnel: &WorkerTunnel) -> Result<(), PodNetError> {
        caa_podnet::teardown(tunnel).await
    }

    /// The sandbox is gone and its tunnel removed: its VNI may be given out again.
    pub fn release(&self, sandbox_id: &str) {
        match self.vnis.release_owner(sandbox_id) {
            Ok(Some(vni)) => tracing::debug!(sandbox_id, vni, "released the VNI"),
            Ok(None) => {}
            Err(e) => tracing::warn!(sandbox_id, error = %e, "could not release the VNI"),
        }
    }

    /// Start-up: releases the VNIs of sandboxes that no longer exist (`keep` says which do).
    pub fn retain(&self, keep: impl FnMut(&str) -> bool) {
        match self.vnis.retain(keep) {
            Ok(released) if !released.is_empty() => {
                tracing::info!(?released, "released the VNIs of sandboxes that are gone");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune the VNI allocations"),
        }
    }
}
