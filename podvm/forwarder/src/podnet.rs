//! The pod network inside the VM (caa-facts §6.4), set up before the forwarder listens and torn
//! down when it stops. The VXLAN implementation belongs to the pod-networking work; until it is
//! wired in, [`without_pod_network`] logs what it would do.

use std::path::Path;

use caa_userdata::PodNetwork as PodNetworkConfig;

/// Sets up and tears down the VM side of the pod network.
pub trait PodNetwork: Send + Sync + std::fmt::Debug {
    /// Recreates the pod's interface in `netns` from apf.json's `pod-network`.
    fn setup(&self, config: &PodNetworkConfig, netns: &Path) -> Result<(), String>;
    /// Removes what `setup` made.
    fn teardown(&self);
}

/// No pod networking: logs the configuration it was given.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPodNetwork;

impl PodNetwork for NoPodNetwork {
    fn setup(&self, config: &PodNetworkConfig, netns: &Path) -> Result<(), String> {
        tracing::info!(
            pod_ip = %config.pod_ip,
            worker_node_ip = %config.worker_node_ip,
            netns = %netns.display(),
            "pod network setup is not built into this forwarder; skipping"
        );
        Ok(())
    }

    fn teardown(&self) {}
}

/// The forwarder's pod network until the tunnel is built in.
pub fn without_pod_network() -> Box<dyn PodNetwork> {
    Box::new(NoPodNetwork)
}
