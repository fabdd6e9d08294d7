//! Test harness for the end-to-end tests in `tests/`: the real `cloud-api-adaptor` binary with
//! the real `caa-provider-mock` plugin as a child process ([`DaemonProcess`]), readers for the
//! mock's state file and the daemon's sandbox records ([`state`]), a Rust ttrpc client that
//! speaks to the daemon as the Kata shim does ([`kata`]), the Go ttrpc probe ([`go_probe`]) and a
//! recording ttrpc server with canned answers ([`canned`]), the last two shared with other crates'
//! tests through this crate. [`libvirt`] and [`cni`] set up this host for real pod VMs, which
//! the README's quick start ([`quickstart`], binary `caa-quickstart`) uses too.
//!
//! Everything here panics with a descriptive message on failure: it is test support.

pub mod binaries;
pub mod canned;
pub mod cni;
pub mod daemon;
pub mod go_probe;
pub mod kata;
pub mod libvirt;
pub mod quickstart;
pub mod state;

mod procfs;

pub use daemon::{DaemonBuilder, DaemonProcess, PluginFate};
pub use state::{MockInstance, SandboxRecordView};
