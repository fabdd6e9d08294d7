//! The sandbox core: what CreateVM, StartVM, StopVM and GetInfo mean, independent of ttrpc.
//! [`SandboxManager`] owns the live sandboxes (one lock per sandbox, so operations on one sandbox
//! are serialized and different sandboxes run concurrently), the durable records and the plugin.
//! Error texts keep upstream's wording where Kata users and upstream's e2e suite match on it.

mod agent;
mod manager;
mod network;
mod reconcile;
mod request;
mod start;

pub use agent::{AgentConnector, AgentTarget, ConnectFuture};
pub use manager::{ManagerSettings, SandboxManager};
pub use reconcile::ReconcileReport;
pub use request::{CreateVm, VmRequestSpec};

use crate::naming::PodRefError;
use crate::sandbox_id::SandboxIdError;
use crate::state::StateError;

/// Why a sandbox operation failed. `Display` texts start with upstream's wording.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// CreateVM without an id.
    #[error("empty sandbox id")]
    EmptyId,
    /// An id that is not path-safe.
    #[error("invalid sandbox id: {0}")]
    InvalidId(#[from] SandboxIdError),
    /// Pod name or namespace missing.
    #[error(transparent)]
    Pod(#[from] PodRefError),
    /// CreateVM for an id that is already live.
    #[error("adding sandbox: sandbox {0} already exists")]
    AlreadyExists(String),
    /// StartVM/GetInfo for an id we do not know.
    #[error("getting sandbox: sandbox {0} does not exist")]
    Unknown(String),
    /// StopVM for an id we do not know.
    #[error("stopping VM: sandbox {0} does not exist")]
    UnknownOnStop(String),
    /// StartVM on a sandbox that was already started.
    #[error("sandbox {0} was already started")]
    AlreadyStarted(String),
    /// The pods directory or the debug apf.json could not be written.
    #[error("preparing {path}: {source}")]
    Files {
        /// What was being written.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The pod's network namespace could not be read (upstream's wording).
    #[error("failed to inspect netns {netns}: {message}")]
    Inspect {
        /// The namespace path from Kata.
        netns: String,
        /// Why, with its causes.
        message: String,
    },
    /// The worker side of the pod network tunnel could not be built (upstream's wording).
    #[error("setting up pod network tunnel on netns {netns}: {message}")]
    Tunnel {
        /// The namespace path from Kata.
        netns: String,
        /// Why, with its causes.
        message: String,
    },
    /// Rendering the userdata failed.
    #[error("rendering the pod VM userdata: {0}")]
    UserData(#[from] caa_userdata::UserDataError),
    /// The VM's TLS certificate could not be issued.
    #[error("issuing the pod VM's TLS certificate: {0}")]
    Tls(String),
    /// The plugin could not create the instance.
    #[error("creating an instance : {0}")]
    Create(Box<caa_plugin_host::CallError>),
    /// The instance has no address.
    #[error("instance IP is not available")]
    NoIp,
    /// The agent-protocol-forwarder in the VM did not become reachable.
    #[error("waiting for the agent-protocol-forwarder at {endpoint}: {message}")]
    Agent {
        /// `ip:port`.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The caller's deadline passed.
    #[error("StartVM deadline exceeded after {0:?}")]
    Deadline(std::time::Duration),
    /// Durable state could not be written.
    #[error("recording sandbox state: {0}")]
    State(#[from] StateError),
    /// The adaptor is shutting down.
    #[error("the adaptor is shutting down")]
    ShuttingDown,
}

/// Why GetInfo found nothing.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    /// No sandbox of that pod has an instance id.
    #[error("VM ID for {namespace}:{name} was not found")]
    NotFound {
        /// Pod namespace.
        namespace: String,
        /// Pod name.
        name: String,
    },
    /// The caller's deadline passed while waiting.
    #[error("waiting for the VM ID of {namespace}:{name}: deadline exceeded")]
    Deadline {
        /// Pod namespace.
        namespace: String,
        /// Pod name.
        name: String,
    },
}
