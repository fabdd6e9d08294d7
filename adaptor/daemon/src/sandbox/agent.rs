//! How StartVM reaches the pod VM's agent: the [`AgentConnector`] sets up the sandbox's agent
//! socket and its connection to the forwarder ([`crate::agent_proxy::AgentProxies`] in the
//! daemon), and supplies the TLS material that goes into each VM's apf.json.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;

use tokio::time::Instant;

use crate::agent_proxy::VmTls;

/// The future [`AgentConnector::connect`] returns.
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One sandbox's agent path.
#[derive(Debug, Clone, Copy)]
pub struct AgentTarget<'a> {
    /// The sandbox.
    pub sandbox_id: &'a str,
    /// Where the shim connects (`<pods-dir>/<sid>/agent.ttrpc`).
    pub socket: &'a Path,
    /// The forwarder in the VM.
    pub endpoint: SocketAddr,
    /// The instance name (the name in the VM's TLS certificate).
    pub instance_name: &'a str,
}

/// Connects sandboxes to their pod VMs' forwarders.
pub trait AgentConnector: Send + Sync + std::fmt::Debug + 'static {
    /// The TLS part of a new VM's apf.json.
    fn vm_tls(&self, instance_name: &str) -> Result<VmTls, String>;

    /// Listens on the sandbox's agent socket and resolves once the forwarder is connected, or
    /// fails by `deadline` (and then stops listening).
    fn connect<'a>(&'a self, target: AgentTarget<'a>, deadline: Instant) -> ConnectFuture<'a>;

    /// Tears down what `connect` set up for the sandbox.
    fn disconnect(&self, sandbox_id: &str);
}
