//! The `cloud-api-adaptor` daemon as a library: what the Kata shim's remote hypervisor talks to,
//! built on provider plugins run through `caa-plugin-host`. The binary (`src/main.rs`) only
//! parses the command line, sets up logging and calls in here.
//!
//! Reading order:
//! - [`cli`]: the command line (`cloud-api-adaptor <provider> [options]`, `version`, `help`),
//!   the only module that knows clap;
//! - [`config`]: [`Config`], every option as plain data, validated all at once;
//! - [`provider`]: [`PluginName`] and finding the provider plugin executable;
//! - [`version`]: the version block printed by `version` and at startup;
//! - [`logging`]: tracing to stderr as text, JSON or upstream's Go `log` lines;
//! - [`sandbox_id`]: [`SandboxId`], the path-safe Kata sandbox id;
//! - [`annotations`]: the annotation keys the shim sends;
//! - [`naming`]: pod name/namespace from annotations and the `podvm-<pod>-<sid[:8]>` name;
//! - [`state`]: durable per-sandbox records ([`StateStore`]);
//! - [`agent_proxy`]: the per-sandbox agent socket relayed to the pod VM's forwarder over TLS;
//! - [`pod_network`]: the VXLAN tunnel between the pod's network namespace and its VM;
//! - [`sandbox`]: the core — CreateVM, StartVM, StopVM, GetInfo and start-up reconciliation;
//! - [`hypervisor`]: the ttrpc adapters and the socket Kata's shim connects to;
//! - [`metrics`]: the Prometheus registry (plugin calls, reconciliation) and its text format;
//! - [`probe`]: the HTTP endpoint serving `/startup` and `/metrics`;
//! - [`daemon`]: the daemon's life from start to signal.

pub mod agent_proxy;
pub mod annotations;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod hypervisor;
pub mod logging;
pub mod metrics;
pub mod naming;
pub mod pod_network;
pub mod probe;
pub mod provider;
pub mod sandbox;
pub mod sandbox_id;
pub mod state;
pub mod version;

pub use config::Config;
pub use provider::{PluginName, ResolvedPlugin};
pub use sandbox_id::SandboxId;
pub use state::{SandboxRecord, StateStore};
