//! The pod network steps of the sandbox flows (caa-facts §2.4–2.6, §6): inspect the pod's
//! namespace at CreateVM, build the tunnel at StartVM (recorded before it is built), remove it at
//! StopVM, after a failed start and at reconciliation. A VNI is released only once no record
//! names a tunnel with it, so a late teardown can never hit a newer sandbox's tunnel.

use std::net::IpAddr;
use std::path::Path;

use caa_plugin_proto::error_chain;
use caa_podnet::{PodNetwork, WorkerTunnel};

use super::SandboxError;
use super::manager::{Sandbox, SandboxManager};
use crate::sandbox_id::SandboxId;
use crate::state::SandboxRecord;

impl SandboxManager {
    /// CreateVM: the pod network for apf.json, or `None` when pod networking is disabled or Kata
    /// gave no namespace. Allocates the sandbox's VNI.
    pub(super) async fn inspect_network(
        &self,
        id: &SandboxId,
        netns: &str,
    ) -> Result<Option<PodNetwork>, SandboxError> {
        let Some(networking) = &self.inner.settings.pod_network else { return Ok(None) };
        if netns.is_empty() {
            tracing::info!(sandbox_id = %id, "no network namespace given; the sandbox has no pod network");
            return Ok(None);
        }
        match networking.inspect(id.as_str(), Path::new(netns)).await {
            Ok(network) => Ok(Some(network)),
            Err(e) => {
                Err(SandboxError::Inspect { netns: netns.to_owned(), message: error_chain(&e) })
            }
        }
    }

    /// StartVM: records the planned tunnel, builds it, records the result. Runs inside the
    /// StartVM task, never under a timeout, so a built tunnel is always recorded.
    pub(super) async fn setup_tunnel(
        &self,
        sandbox: &mut Sandbox,
        record: &mut SandboxRecord,
        vm_ips: &[IpAddr],
    ) -> Result<(), SandboxError> {
        let (Some(networking), Some(network)) =
            (&self.inner.settings.pod_network, &sandbox.network)
        else {
            return Ok(());
        };
        let failed = |e: caa_podnet::PodNetError| SandboxError::Tunnel {
            netns: sandbox.netns.clone(),
            message: error_chain(&e),
        };
        let plan = networking.plan(Path::new(&sandbox.netns), network, vm_ips).map_err(failed)?;
        record.vni = Some(plan.vni);
        record.tunnel = Some(plan.clone());
        self.inner.store.put(record)?;
        sandbox.tunnel = Some(plan.clone());
        let built = networking.setup(&plan).await.map_err(failed)?;
        record.tunnel = Some(built.clone());
        self.inner.store.put(record)?;
        sandbox.tunnel = Some(built);
        Ok(())
    }

    /// Removes a tunnel. True when there is none left (none was given, or it is removed).
    pub(super) async fn remove_tunnel(
        &self,
        id: &SandboxId,
        tunnel: Option<&WorkerTunnel>,
    ) -> bool {
        let (Some(networking), Some(tunnel)) = (&self.inner.settings.pod_network, tunnel) else {
            return true;
        };
        match networking.teardown(tunnel).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(sandbox_id = %id, vni = tunnel.vni, error = %error_chain(&e), "could not remove the pod network tunnel; it stays recorded");
                false
            }
        }
    }

    /// After the tunnel is gone: the record (if it is kept) stops naming it, then the VNI is
    /// released.
    pub(super) fn forget_tunnel(&self, id: &SandboxId) {
        let Some(networking) = &self.inner.settings.pod_network else { return };
        if let Ok(Some(mut record)) = self.inner.store.get(id)
            && record.tunnel.is_some()
        {
            record.tunnel = None;
            if let Err(e) = self.inner.store.put(&record) {
                tracing::warn!(sandbox_id = %id, error = %e, "could not update the sandbox record; keeping the VNI");
                return;
            }
        }
        networking.release(id.as_str());
    }

    /// Start-up: VNIs whose sandbox has no record any more are free again.
    pub(super) fn prune_vnis(&self) {
        let Some(networking) = &self.inner.settings.pod_network else { return };
        let store = &self.inner.store;
        networking.retain(|owner| {
            SandboxId::new(owner.to_owned())
                .ok()
                .is_some_and(|id| !matches!(store.get(&id), Ok(None)))
        });
    }
}
