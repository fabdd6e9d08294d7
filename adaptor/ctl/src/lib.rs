//! `caa-ctl`: drive the cloud-api-adaptor's Kata-facing ttrpc socket from a shell, sending
//! what the Kata shim sends (the nine CreateVM annotations, the 600 s StartVM deadline, one
//! connection per call), so the daemon can be operated and debugged without Kata.
//!
//! [`run`] performs the call a parsed [`Cli`] asks for and returns the line to print: a short
//! human answer (the agent socket path, the VM id, ...) or, with `--json`, the response as
//! JSON. The `caa-ctl` binary prints it, or `caa-ctl: <error>` with exit status 1.

pub mod annotations;
pub mod cli;
pub mod client;
pub mod duration;

use std::path::PathBuf;
use std::time::Duration;

use caa_kata_protos::hypervisor::{CreateVMRequest, StartVMRequest, StopVMRequest, VersionRequest};
use caa_kata_protos::podvminfo::GetInfoRequest;
use serde_json::json;

pub use annotations::VmSpec;
pub use cli::{Cli, Command, CreateVm};
pub use client::{CallError, Ctl};

/// Why `caa-ctl` failed; displayed after `caa-ctl: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ttrpc call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// `--initdata-file` could not be read.
    #[error("CreateVM: reading initdata file {}: {source}", path.display())]
    Initdata { path: PathBuf, source: std::io::Error },
}

/// Performs the call `cli` describes and returns the line to print on success.
pub async fn run(cli: &Cli) -> Result<String, Error> {
    let ctl = Ctl::new(&cli.socket);
    let timeout = cli.timeout.unwrap_or(Duration::ZERO);
    let (human, json) = match &cli.command {
        Command::CreateVm(args) => {
            let req = create_request(args)?;
            let resp = ctl.create_vm(&req, timeout).await?;
            (resp.agentSocketPath.clone(), json!({ "agentSocketPath": resp.agentSocketPath }))
        }
        Command::StartVm { sandbox_id } => {
            let req = StartVMRequest { id: sandbox_id.clone(), ..Default::default() };
            ctl.start_vm(&req, cli.timeout.unwrap_or(cli::START_VM_TIMEOUT)).await?;
            (format!("started {sandbox_id}"), json!({}))
        }
        Command::StopVm { sandbox_id } => {
            let req = StopVMRequest { id: sandbox_id.clone(), ..Default::default() };
            ctl.stop_vm(&req, timeout).await?;
            (format!("stopped {sandbox_id}"), json!({}))
        }
        Command::Version => {
            let req =
                VersionRequest { version: env!("CARGO_PKG_VERSION").into(), ..Default::default() };
            let resp = ctl.version(&req, timeout).await?;
            (resp.version.clone(), json!({ "version": resp.version }))
        }
        Command::GetInfo { pod, namespace, wait } => {
            let req = GetInfoRequest {
                PodName: pod.clone(),
                PodNamespace: namespace.clone(),
                Wait: *wait,
                ..Default::default()
            };
            let resp = ctl.get_info(&req, timeout).await?;
            (resp.VMID.clone(), json!({ "VMID": resp.VMID }))
        }
    };
    Ok(if cli.json { json.to_string() } else { human })
}

/// The CreateVM request `create-vm` sends: the shim's nine annotations from the options, then
/// the `--annotation` overrides, and the network namespace path.
pub fn create_request(args: &CreateVm) -> Result<CreateVMRequest, Error> {
    let initdata = match &args.initdata_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| Error::Initdata { path: path.clone(), source })?,
        ),
        None => None,
    };
    let spec = VmSpec {
        pod: args.pod.clone(),
        namespace: args.namespace.clone(),
        vcpus: args.vcpus,
        memory_mib: args.memory,
        instance_type: args.instance_type.clone(),
        image: args.image.clone(),
        initdata,
    };
    Ok(CreateVMRequest {
        id: args.sandbox_id.clone(),
        annotations: spec.annotations(&args.annotations),
        networkNamespacePath: args.netns.clone().unwrap_or_default(),
        ..Default::default()
    })
}
