//! A small ttrpc server implementing the generated Hypervisor and PodVMInfo traits with canned
//! answers; it records every request with its `timeout_nano` so tests see what `caa-ctl` sent.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use caa_kata_protos::hypervisor::{
    CreateVMRequest, CreateVMResponse, Hypervisor, StartVMRequest, StartVMResponse, StopVMRequest,
    StopVMResponse, VersionRequest, VersionResponse, create_hypervisor,
};
use caa_kata_protos::podvminfo::{GetInfoRequest, GetInfoResponse, PodVmInfo, create_pod_vminfo};
use caa_kata_protos::ttrpc::r#async::{Server, TtrpcContext};
use caa_kata_protos::{Code, rpc_error, ttrpc};

pub(crate) const VERSION: &str = "adaptor-under-test 9.9.9";
pub(crate) const VMID: &str = "i-0123456789abcdef0";
/// StartVM of this sandbox fails with FAILED_PRECONDITION and [`FAIL_MESSAGE`].
pub(crate) const FAIL_ID: &str = "sandbox-fail";
pub(crate) const FAIL_MESSAGE: &str = "instance quota exceeded";
/// StartVM of this sandbox never answers.
pub(crate) const HANG_ID: &str = "sandbox-hang";

pub(crate) fn agent_socket(id: &str) -> String {
    format!("/run/peerpod/pods/{id}/agent.ttrpc")
}

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seen {
    Version(VersionRequest),
    Create(CreateVMRequest),
    Start(StartVMRequest),
    Stop(StopVMRequest),
    Info(GetInfoRequest),
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    seen: Mutex<Vec<(Seen, i64)>>,
}

impl Recorder {
    fn record(&self, ctx: &TtrpcContext, seen: Seen) {
        self.seen.lock().expect("seen lock").push((seen, ctx.timeout_nano));
    }

    /// The requests seen so far, with their timeout_nano.
    pub(crate) fn seen(&self) -> Vec<(Seen, i64)> {
        self.seen.lock().expect("seen lock").clone()
    }
}

#[caa_kata_protos::async_trait]
impl Hypervisor for Recorder {
    async fn create_vm(
        &self,
        ctx: &TtrpcContext,
        req: CreateVMRequest,
    ) -> ttrpc::Result<CreateVMResponse> {
        self.record(ctx, Seen::Create(req.clone()));
        Ok(CreateVMResponse { agentSocketPath: agent_socket(&req.id), ..Default::default() })
    }

    async fn start_vm(
        &self,
        ctx: &TtrpcContext,
        req: StartVMRequest,
    ) -> ttrpc::Result<StartVMResponse> {
        self.record(ctx, Seen::Start(req.clone()));
        if req.id == FAIL_ID {
            return Err(rpc_error(Code::FAILED_PRECONDITION, FAIL_MESSAGE));
        }
        if req.id == HANG_ID {
            std::future::pending::<()>().await;
        }
        Ok(StartVMResponse::new())
    }

    async fn stop_vm(
        &self,
        ctx: &TtrpcContext,
        req: StopVMRequest,
    ) -> ttrpc::Result<StopVMResponse> {
        self.record(ctx, Seen::Stop(req));
        Ok(StopVMResponse::new())
    }

    async fn version(
        &self,
        ctx: &TtrpcContext,
        req: VersionRequest,
    ) -> ttrpc::Result<VersionResponse> {
        self.record(ctx, Seen::Version(req));
        Ok(VersionResponse { version: VERSION.into(), ..Default::default() })
    }
}

#[caa_kata_protos::async_trait]
impl PodVmInfo for Recorder {
    /// Knows the VM id only when asked to wait (as if the VM were still starting).
    async fn get_info(
        &self,
        ctx: &TtrpcContext,
        req: GetInfoRequest,
    ) -> ttrpc::Result<GetInfoResponse> {
        self.record(ctx, Seen::Info(req.clone()));
        if req.Wait {
            return Ok(GetInfoResponse { VMID: VMID.into(), ..Default::default() });
        }
        let message = format!("VM ID for {}:{} was not found", req.PodNamespace, req.PodName);
        Err(rpc_error(Code::NOT_FOUND, message))
    }
}

/// A started server on `<dir>/hypervisor.sock`; dropping it stops it.
pub(crate) struct Running {
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) sock: PathBuf,
    _server: Server,
}

pub(crate) async fn start(dir: &Path) -> Running {
    let recorder = Arc::new(Recorder::default());
    let sock = dir.join("hypervisor.sock");
    let mut server = Server::new()
        .bind(&format!("unix://{}", sock.display()))
        .expect("binding the test socket")
        .register_service(create_hypervisor(recorder.clone()))
        .register_service(create_pod_vminfo(recorder.clone()));
    server.start().await.expect("starting the ttrpc server");
    Running { recorder, sock, _server: server }
}
