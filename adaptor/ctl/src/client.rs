//! One ttrpc call per invocation on a fresh unix connection (as the Go shim dials per call),
//! with failures turned into errors that name the method, the status code and the server's
//! message.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caa_kata_protos::hypervisor::{
    CreateVMRequest, CreateVMResponse, HypervisorClient, StartVMRequest, StartVMResponse,
    StopVMRequest, StopVMResponse, VersionRequest, VersionResponse,
};
use caa_kata_protos::podvminfo::{GetInfoRequest, GetInfoResponse, PodVmInfoClient};
use caa_kata_protos::ttrpc::r#async::Client;
use caa_kata_protos::ttrpc::r#async::transport::Socket;
use caa_kata_protos::ttrpc::{self, context};

/// Why a call failed; displayed as `<method>: ...`.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The socket could not be dialled.
    #[error("{method}: cannot connect to {}: {source}", socket.display())]
    Connect { method: &'static str, socket: PathBuf, source: std::io::Error },
    /// The server answered with a non-OK status.
    #[error("{method}: {code}: {message}")]
    Status { method: &'static str, code: String, message: String },
    /// No answer before the deadline this side set.
    #[error("{method}: DEADLINE_EXCEEDED: no response within {timeout:?}")]
    Deadline { method: &'static str, timeout: Duration },
    /// The connection failed or the answer could not be read.
    #[error("{method}: {source}")]
    Transport { method: &'static str, source: ttrpc::Error },
}

/// A client for the adaptor's socket; each call dials anew. A zero `timeout` means no deadline.
#[derive(Debug, Clone)]
pub struct Ctl {
    socket: PathBuf,
}

impl Ctl {
    /// A client for `socket` (a leading `unix://` is dropped).
    pub fn new(socket: &Path) -> Self {
        let text = socket.to_string_lossy();
        let socket = text.strip_prefix("unix://").map_or_else(|| socket.to_path_buf(), Into::into);
        Self { socket }
    }

    /// The socket path this client dials.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn connect(&self, method: &'static str) -> Result<Client, CallError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| CallError::Connect { method, socket: self.socket.clone(), source })?;
        Ok(Client::new(Socket::from(stream)))
    }

    /// CreateVM.
    pub async fn create_vm(
        &self,
        req: &CreateVMRequest,
        timeout: Duration,
    ) -> Result<CreateVMResponse, CallError> {
        let hv = HypervisorClient::new(self.connect("CreateVM").await?);
        let start = Instant::now();
        outcome("CreateVM", timeout, start, hv.create_vm(ctx(timeout), req).await)
    }

    /// StartVM.
    pub async fn start_vm(
        &self,
        req: &StartVMRequest,
        timeout: Duration,
    ) -> Result<StartVMResponse, CallError> {
        let hv = HypervisorClient::new(self.connect("StartVM").await?);
        let start = Instant::now();
        outcome("StartVM", timeout, start, hv.start_vm(ctx(timeout), req).await)
    }

    /// StopVM.
    pub async fn stop_vm(
        &self,
        req: &StopVMRequest,
        timeout: Duration,
    ) -> Result<StopVMResponse, CallError> {
        let hv = HypervisorClient::new(self.connect("StopVM").await?);
        let start = Instant::now();
        outcome("StopVM", timeout, start, hv.stop_vm(ctx(timeout), req).await)
    }

    /// Version.
    pub async fn version(
        &self,
        req: &VersionRequest,
        timeout: Duration,
    ) -> Result<VersionResponse, CallError> {
        let hv = HypervisorClient::new(self.connect("Version").await?);
        let start = Instant::now();
        outcome("Version", timeout, start, hv.version(ctx(timeout), req).await)
    }

    /// GetInfo.
    pub async fn get_info(
        &self,
        req: &GetInfoRequest,
        timeout: Duration,
    ) -> Result<GetInfoResponse, CallError> {
        let info = PodVmInfoClient::new(self.connect("GetInfo").await?);
        let start = Instant::now();
        outcome("GetInfo", timeout, start, info.get_info(ctx(timeout), req).await)
    }
}

/// A call context whose timeout_nano is `timeout` (0: no deadline).
fn ctx(timeout: Duration) -> context::Context {
    context::with_timeout(i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX))
}

fn outcome<T>(
    method: &'static str,
    timeout: Duration,
    start: Instant,
    result: ttrpc::Result<T>,
) -> Result<T, CallError> {
    result.map_err(|error| match error {
        ttrpc::Error::RpcStatus(status) => {
            let code = match status.code.enum_value() {
                Ok(code) => format!("{code:?}"),
                Err(number) => format!("CODE_{number}"),
            };
            CallError::Status { method, code, message: status.message }
        }
        _ if !timeout.is_zero() && start.elapsed() >= timeout => {
            CallError::Deadline { method, timeout }
        }
        source => CallError::Transport { method, source },
    })
}
