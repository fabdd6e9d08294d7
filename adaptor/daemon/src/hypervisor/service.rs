//! The ttrpc handlers: each turns the request into domain data, calls the sandbox core and maps
//! the error through `status.rs`. No logic lives here.

use std::time::Duration;

use caa_kata_protos::hypervisor::{
    CreateVMRequest, CreateVMResponse, Hypervisor, StartVMRequest, StartVMResponse, StopVMRequest,
    StopVMResponse, VersionRequest, VersionResponse,
};
use caa_kata_protos::podvminfo::{GetInfoRequest, GetInfoResponse, PodVmInfo};
use caa_kata_protos::ttrpc::{self, r#async::TtrpcContext};
use tokio::time::Instant;

use super::status::{info_to_ttrpc, to_ttrpc};
use crate::sandbox::{CreateVm, SandboxManager};

/// Serves both services over one [`SandboxManager`].
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) manager: SandboxManager,
}

/// The caller's deadline, if it sent one (`timeout_nano` > 0), brought forward by a small
/// margin: the ttrpc server drops a handler at exactly that deadline and answers a bare
/// "timeout", so ours must answer first, with what really happened.
fn deadline(ctx: &TtrpcContext) -> Option<Instant> {
    let budget = Duration::from_nanos(u64::try_from(ctx.timeout_nano).ok().filter(|n| *n > 0)?);
    let margin = (budget / 20).min(Duration::from_millis(500));
    Some(Instant::now() + budget - margin)
}

#[caa_kata_protos::async_trait]
impl Hypervisor for Service {
    async fn create_vm(
        &self,
        _ctx: &TtrpcContext,
        req: CreateVMRequest,
    ) -> ttrpc::Result<CreateVMResponse> {
        let request =
            CreateVm { id: req.id, annotations: req.annotations, netns: req.networkNamespacePath };
        let path = self.manager.create_vm(request).await.map_err(|e| to_ttrpc(&e))?;
        Ok(CreateVMResponse { agentSocketPath: path.display().to_string(), ..Default::default() })
    }

    async fn start_vm(
        &self,
        ctx: &TtrpcContext,
        req: StartVMRequest,
    ) -> ttrpc::Result<StartVMResponse> {
        self.manager.start_vm(&req.id, deadline(ctx)).await.map_err(|e| to_ttrpc(&e))?;
        Ok(StartVMResponse::new())
    }

    async fn stop_vm(
        &self,
        _ctx: &TtrpcContext,
        req: StopVMRequest,
    ) -> ttrpc::Result<StopVMResponse> {
        self.manager.stop_vm(&req.id).await.map_err(|e| to_ttrpc(&e))?;
        Ok(StopVMResponse::new())
    }

    async fn version(
        &self,
        _ctx: &TtrpcContext,
        _req: VersionRequest,
    ) -> ttrpc::Result<VersionResponse> {
        Ok(VersionResponse { version: env!("CARGO_PKG_VERSION").to_owned(), ..Default::default() })
    }
}

#[caa_kata_protos::async_trait]
impl PodVmInfo for Service {
    async fn get_info(
        &self,
        ctx: &TtrpcContext,
        req: GetInfoRequest,
    ) -> ttrpc::Result<GetInfoResponse> {
        let id = self
            .manager
            .get_info(&req.PodName, &req.PodNamespace, req.Wait, deadline(ctx))
            .await
            .map_err(|e| info_to_ttrpc(&e))?;
        Ok(GetInfoResponse { VMID: id, ..Default::default() })
    }
}
