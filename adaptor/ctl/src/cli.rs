//! The command line of `caa-ctl`: global connection options and one subcommand per ttrpc
//! method the Kata shim calls, with the shim's defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::annotations::parse_annotation;
use crate::duration::parse_duration;

/// Where the adaptor listens unless told otherwise (upstream's default).
pub const DEFAULT_SOCKET: &str = "/run/peerpod/hypervisor.sock";
/// StartVM deadline when `--timeout` is absent: the shim's usual 600 s.
pub const START_VM_TIMEOUT: Duration = Duration::from_secs(600);

/// Drive the cloud-api-adaptor's Kata ttrpc socket the way the Kata shim does.
#[derive(Debug, Parser)]
#[command(name = "caa-ctl", version)]
pub struct Cli {
    /// Path of the adaptor's hypervisor socket (a `unix://` prefix is accepted).
    #[arg(long, global = true, env = "REMOTE_HYPERVISOR_ENDPOINT", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Deadline of the call, Go style (600s, 1m30s); sent as timeout_nano. Default: none
    /// (as the shim sends CreateVM and StopVM), 600s for start-vm.
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Print the response as JSON instead of a short human line.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// One ttrpc call.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// hypervisor.Hypervisor/CreateVM with the nine annotations the shim sends; prints the
    /// agent socket path.
    CreateVm(CreateVm),
    /// hypervisor.Hypervisor/StartVM (default deadline 600s, like the shim).
    StartVm {
        /// Sandbox id given to create-vm.
        sandbox_id: String,
    },
    /// hypervisor.Hypervisor/StopVM.
    StopVm {
        /// Sandbox id given to create-vm.
        sandbox_id: String,
    },
    /// hypervisor.Hypervisor/Version; prints the server's version.
    Version,
    /// podvminfo.PodVMInfo/GetInfo; prints the pod VM's instance id.
    GetInfo {
        /// Pod name.
        #[arg(long)]
        pod: String,
        /// Pod namespace.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Wait until the pod's VM has an instance id (bounded by --timeout).
        #[arg(long)]
        wait: bool,
    },
}

/// Options of `create-vm`.
#[derive(Debug, Args)]
pub struct CreateVm {
    /// Sandbox id (the pod sandbox container id under Kata).
    pub sandbox_id: String,
    /// Pod name.
    #[arg(long)]
    pub pod: String,
    /// Pod namespace.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Extra or overriding annotation, repeatable; applied after the other options.
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    pub annotations: Vec<(String, String)>,
    /// Pod network namespace path (networkNamespacePath).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<String>,
    /// vCPUs (default_vcpus).
    #[arg(long, value_name = "N")]
    pub vcpus: Option<u32>,
    /// Memory in MiB (default_memory).
    #[arg(long, value_name = "MIB")]
    pub memory: Option<u64>,
    /// Instance type (machine_type).
    #[arg(long, value_name = "T")]
    pub instance_type: Option<String>,
    /// Pod VM image (image).
    #[arg(long, value_name = "I")]
    pub image: Option<String>,
    /// File whose plain TOML text goes into cc_init_data.
    #[arg(long, value_name = "FILE")]
    pub initdata_file: Option<PathBuf>,
}
