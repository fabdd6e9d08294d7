//! The host side of the caa provider plugin protocol: everything the adaptor daemon and the
//! `caa-plugin` CLI need to start a provider plugin, talk to it, and keep it running.
//!
//! Reading order:
//! - [`integrity`]: plugin file checks and SHA-256 pinning through a sealed memfd;
//! - [`process`]: [`PluginCommand`], the single spawn helper (environment allowlist, own process
//!   group, `--describe`);
//! - [`stderr`]: the stderr drain that re-emits plugin logs and keeps a tail for crash reports;
//! - [`client`]: the JSON-RPC [`Client`] over any reader/writer pair, with [`CallError`];
//! - [`timeouts`]: the budgets table and each method's default call options;
//! - [`plugin`]: one initialized [`Plugin`] process, its health checks and shutdown sequence;
//! - [`supervisor`]: restarts, the circuit breaker, and orphan cleanup after failed creates.

// `CallError::Rpc` carries the plugin's whole error object (about 200 bytes). Errors are the cold
// path of a call that crossed a process boundary; boxing them would only make matching clumsier.
#![allow(clippy::result_large_err)]

mod call_error;
pub mod client;
mod error;
pub mod integrity;
pub mod plugin;
pub mod process;
pub mod stderr;
pub mod supervisor;
pub mod timeouts;

pub(crate) use caa_plugin_proto::error_chain;

pub use client::{CallError, CallOptions, Client, ClientOptions};
pub use error::HostError;
pub use integrity::{IntegrityError, sha256_file};
pub use plugin::{Plugin, PluginSpec, redact_config};
pub use process::{PluginCommand, SpawnedPlugin, signal_group};
pub use stderr::StderrTail;
pub use supervisor::{Orphan, RestartPolicy, Supervisor, SupervisorStatus};
pub use timeouts::{CallPolicy, Timeouts};
