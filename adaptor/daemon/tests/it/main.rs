//! Integration tests of the `caa-adaptor` crate: the state store on real directories, plugin
//! resolution with fake executables, and the `cloud-api-adaptor` binary's command line and
//! environment handling (run as a child process, so the environment is real), and the daemon
//! itself in-process over the real mock plugin: the sandbox lifecycle, restarts, metrics and
//! the upstream log format.

mod binary;
mod daemon;
mod lifecycle;
mod observability;
mod pod_network;
mod provider;
mod restart;
mod state;
