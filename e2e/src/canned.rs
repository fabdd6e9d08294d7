//! A recording ttrpc server with canned answers for `hypervisor.Hypervisor` and
//! `podvminfo.PodVMInfo`, built only from the generated stubs of `caa-kata-protos`; tests of the
//! stubs and of `caa-ctl` start it and check what arrived on the wire (each request with its
//! `timeout_nano`).
//!
//! Its answers:
//! - `Version` reports [`VERSION`];
//! - `CreateVM` returns [`agent_socket`] of the sandbox id, or INVALID_ARGUMENT for an empty id;
//! - `StartVM` succeeds, except for [`FAIL_ID`] (FAILED_PRECONDITION, [`FAIL_MESSAGE`]),
//!   [`CRASH_ID`] (a non-status handler error) and [`HANG_ID`] (never answers);
//! - `StopVM` succeeds;
//! - `GetInfo` returns [`VMID`] for the known pod [`POD`] at once, and for any other pod only when
//!   the caller asks to wait (as if its VM were still starting); otherwise NOT_FOUND.

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
pub const VERSION: &str = "caa-canned-server 1.2.3";
/// The pod GetInfo knows without waiting (the Go probe's default pod name and namespace).
pub const POD: (&str, &str) = ("probe-pod", "default");
/// Instance id GetInfo returns.
pub const VMID: &str = "i-0123456789abcdef0";
/// StartVM of this sandbox id fails with a status (FAILED_PRECONDITION, [`FAIL_MESSAGE`]).
pub const FAIL_ID: &str = "sandbox-fail";
/// The message of [`FAIL_ID`]'s status.
pub const FAIL_MESSAGE: &str = "sandbox-fail: instance quota exceeded";
/// StartVM of this sandbox id fails with a non-status error (`plugin crashed`).
pub const CRASH_ID: &str = "sandbox-crash";
/// StartVM of this sandbox id never answers.
pub const HANG_ID: &str = "sandbox-hang";

/// Agent socket path CreateVM returns for a sandbox.
pub fn agent_socket(id: &str) -> String {
    format!("/run/peerpod/pods/{id}/agent.ttrpc")
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Version(VersionRequest),
    Create(CreateVMRequest),
    Start(StartVMRequest),
    Stop(StopVMRequest),
    Info(GetInfoRequest),
}

/// The service implementation; it records every request with its `timeout_nano`.
#[derive(Debug, Default)]
pub struct Canned {
    seen: Mutex<Vec<(Seen, i64)>>,
}

impl Canned {
    fn record(&self, ctx: &TtrpcContext, seen: Seen) {
        self.seen.lock().expect("seen lock").push((seen, ctx.timeout_nano));
    }

    /// The requests seen so far, in arrival order, each with its `timeout_nano`.
    pub fn seen(&self) -> Vec<(Seen, i64)> {
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
            HANG_ID => std::future::pending().await,
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
        if req.Wait || (req.PodName.as_str(), req.PodNamespace.as_str()) == POD {
            return Ok(GetInfoResponse { VMID: VMID.into(), ..Default::default() });
        }
        let message = format!("VM ID for {}:{} was not found", req.PodNamespace, req.PodName);
        Err(rpc_error(Code::NOT_FOUND, message))
    }
}

/// A started server on `<dir>/hypervisor.sock` serving both protocols; dropping it stops it.
pub struct Running {
    /// The recording service behind the socket.
    pub canned: Arc<Canned>,
    /// The unix socket the server listens on.
    pub sock: PathBuf,
    _server: Server,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("canned", &self.canned).field("sock", &self.sock).finish()
    }
}

/// Starts the canned server in `dir`, both services on one socket as the daemon serves them.
pub async fn start(dir: &Path) -> Running {
    let canned = Arc::new(Canned::default());
    let sock = dir.join("hypervisor.sock");
    let mut server = Server::new()
        .bind(&format!("unix://{}", sock.display()))
        .expect("binding the canned server's socket")
        .register_service(create_hypervisor(canned.clone()))
        .register_service(create_pod_vminfo(canned.clone()));
    server.start().await.expect("starting the canned ttrpc server");
    Running { canned, sock, _server: server }
}
