//! A ttrpc server with canned answers for `hypervisor.Hypervisor` and `podvminfo.PodVMInfo`,
//! built only from this crate's generated stubs; it records every request it sees (with its
//! `timeout_nano`) so tests can check what arrived on the wire.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use caa_kata_protos::hypervisor::{
    CreateVMRequest, CreateVMResponse, Hypervisor, StartVMRequest, StartVMResponse, StopVMRequest,
    StopVMResponse, VersionRequest, VersionResponse, create_hypervisor,
};
use caa_kata_protos::podvminfo::{GetInfoRequest, GetInfoResponse, PodVmInfo, create_pod_vminfo};
use caa_kata_protos::ttrpc::r#async::{Server, TtrpcContext};
use caa_kata_protos::{Code, rpc_error, ttrpc};

/// Version string the canned server reports.
pub(crate) const VERSION: &str = "caa-kata-protos-test 1.2.3";
/// The only pod GetInfo knows (the Go probe's default pod name and namespace).
pub(crate) const POD: (&str, &str) = ("probe-pod", "default");
/// Instance id GetInfo returns for [`POD`].
pub(crate) const VMID: &str = "i-0123456789abcdef0";
/// StartVM of this sandbox id fails with a status (FAILED_PRECONDITION, [`FAIL_MESSAGE`]).
pub(crate) const FAIL_ID: &str = "sandbox-fail";
pub(crate) const FAIL_MESSAGE: &str = "sandbox-fail: instance quota exceeded";
/// StartVM of this sandbox id fails with a non-status error.
pub(crate) const CRASH_ID: &str = "sandbox-crash";

/// Agent socket path CreateVM returns for a sandbox.
pub(crate) fn agent_socket(id: &str) -> String {
    format!("/run/peerpod/pods/{id}/agent.ttrpc")
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seen {
    Version(VersionRequest),
    Create(CreateVMRequest),
    Start(StartVMRequest),
    Stop(StopVMRequest),
    Info(GetInfoRequest),
}

/// The service implementation; `seen` lists requests with their `timeout_nano`.
#[derive(Debug, Default)]
pub(crate) struct Canned {
    pub(crate) seen: Mutex<Vec<(Seen, i64)>>,
}

impl Canned {
    fn record(&self, ctx: &TtrpcContext, seen: Seen) {
        self.seen.lock().expect("seen lock").push((seen, ctx.timeout_nano));
    }

    pub(crate) fn seen(&self) -> Vec<(Seen, i64)> {
        self.seen.lock().expect("seen lock").clone()
    }
}

#[caa_kata_protos::async_trait]
impl Hypervisor for Canned {
    async fn create_vm(
        &self,
        ctx: &TtrpcContext,
        req: CreateVMRequest,
    ) -> ttrpc::Result<CreateVMResponse> {
        self.record(ctx, Seen::Create(req.clone()));
        if req.id.is_empty() {
            return Err(rpc_error(Code::INVALID_ARGUMENT, "sandbox id must not be empty"));
        }
        Ok(CreateVMResponse { agentSocketPath: agent_socket(&req.id), ..Default::default() })
    }

    async fn start_vm(
        &self,
        ctx: &TtrpcContext,
        req: StartVMRequest,
    ) -> ttrpc::Result<StartVMResponse> {
        self.record(ctx, Seen::Start(req.clone()));
        match req.id.as_str() {
            FAIL_ID => Err(rpc_error(Code::FAILED_PRECONDITION, FAIL_MESSAGE)),
            CRASH_ID => Err(ttrpc::Error::Others("plugin crashed".into())),
            _ => Ok(StartVMResponse::new()),
        }
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
impl PodVmInfo for Canned {
    async fn get_info(
        &self,
        ctx: &TtrpcContext,
        req: GetInfoRequest,
    ) -> ttrpc::Result<GetInfoResponse> {
        self.record(ctx, Seen::Info(req.clone()));
        if (req.PodName.as_str(), req.PodNamespace.as_str()) == POD {
            return Ok(GetInfoResponse { VMID: VMID.into(), ..Default::default() });
        }
        let message = format!("VM ID for {}:{} was not found", req.PodNamespace, req.PodName);
        Err(rpc_error(Code::NOT_FOUND, message))
    }
}

/// A started server on `<dir>/hypervisor.sock` serving both protocols; dropping it stops it.
pub(crate) struct Running {
    pub(crate) canned: Arc<Canned>,
    pub(crate) sock: PathBuf,
    _server: Server,
}

/// Starts the canned server in `dir` (both services registered on one socket, as the daemon does).
pub(crate) async fn start(dir: &Path) -> Running {
    let canned = Arc::new(Canned::default());
    let sock = dir.join("hypervisor.sock");
    let mut server = Server::new()
        .bind(&format!("unix://{}", sock.display()))
        .expect("binding the test socket")
        .register_service(create_hypervisor(canned.clone()))
        .register_service(create_pod_vminfo(canned.clone()));
    server.start().await.expect("starting the ttrpc server");
    Running { canned, sock, _server: server }
}
