//! The pod network inside the VM (caa-facts §6.4): built from apf.json's `pod-network` before
//! the forwarder listens, removed when it stops. A config without a pod IP (the adaptor runs with
//! `-disable-pod-network`, or Kata gave no namespace) means no tunnel.

use std::path::Path;

use caa_podnet::{PodNetError, VmOptions, VmTunnel};
use caa_userdata::PodNetwork as PodNetworkConfig;

/// How the forwarder treats the pod network.
#[derive(Debug, Clone)]
pub enum PodNetworking {
    /// Never build a tunnel (tests and benchmarks that run the forwarder on loopback).
    Disabled,
    /// Build the VM side of the tunnel with these options.
    Tunnel(VmOptions),
}

impl PodNetworking {
    /// The VM's own namespaces; `host_interface` is the forwarder's `-host-interface`.
    pub fn in_this_vm(host_interface: &str) -> PodNetworking {
        let host_interface = (!host_interface.is_empty()).then(|| host_interface.to_owned());
        PodNetworking::Tunnel(VmOptions { host_interface, ..VmOptions::default() })
    }

    /// Recreates the pod's interface in `netns`; `None` when there is nothing to build.
    pub async fn setup(
        &self,
        config: &PodNetworkConfig,
        netns: &Path,
    ) -> Result<Option<VmTunnel>, PodNetError> {
        let PodNetworking::Tunnel(opts) = self else {
            tracing::info!("pod networking is disabled in this forwarder");
            return Ok(None);
        };
        if config.pod_ip.is_empty() {
            tracing::info!("apf.json has no pod network; no tunnel to the worker node");
            return Ok(None);
        }
        let tunnel = caa_podnet::vm_setup(config, netns, opts).await?;
        tracing::info!(pod_ip = %config.pod_ip, worker = %config.worker_node_ip, vni = tunnel.vni,
            netns = %netns.display(), "pod network is up");
        Ok(Some(tunnel))
    }

    /// Removes what [`PodNetworking::setup`] made; failures are logged.
    pub async fn teardown(tunnel: &VmTunnel) {
        match caa_podnet::vm_teardown(tunnel).await {
            Ok(()) => tracing::info!(vni = tunnel.vni, "pod network removed"),
            Err(e) => {
                tracing::warn!(vni = tunnel.vni, error = %e, "removing the pod network failed");
            }
        }
    }
}
