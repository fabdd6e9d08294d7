//! Test harness for the end-to-end tests in `tests/`: the real `cloud-api-adaptor` binary with
//! the real `caa-provider-mock` plugin as a child process ([`DaemonProcess`]), readers for the
//! mock's state file and the daemon's sandbox records ([`state`]), a Rust ttrpc client that
//! speaks to the daemon as the Kata shim does ([`kata`]), and the Go ttrpc probe ([`go_probe`]),
//! which other crates' tests share through this crate.
//!
//! Everything here panics with a descriptive message on failure: it is test support.

pub mod binaries;
pub mod daemon;
pub mod go_probe;
pub mod kata;
pub mod state;

mod procfs;

pub use daemon::{DaemonBuilder, DaemonProcess, PluginFate};
pub use state::{MockInstance, SandboxRecordView};
