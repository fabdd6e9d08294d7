//! The contract between the cloud-api-adaptor and its provider plugins: serde types for every
//! JSON-RPC 2.0 message of protocol version 1, the closed set of error codes, and the method
//! table. No I/O and no async runtime live here; `docs/plugin-protocol.md` is the normative text.
//!
//! Reading order: [`envelope`] (JSON-RPC framing types), [`method`] (one marker type per method),
//! [`handshake`] (`initialize`, capabilities, config schema), [`instance`] (the instance methods),
//! [`error`] (error codes and data), [`schema`] (JSON Schema export).

pub mod envelope;
pub mod error;
pub mod handshake;
pub mod instance;
pub mod method;
pub mod schema;

pub use envelope::{Incoming, OutgoingError, RequestId};
pub use error::{ErrorCode, ErrorData, Problem, RpcError, error_chain};
pub use handshake::{
    Capabilities, ConfigOption, ConfigSchema, Describe, HostCapabilities, InitializeParams,
    InitializeResult, InstanceCapabilities, Limits, LogLevel, OptionKind, PeerInfo,
};
pub use instance::{
    CancelParams, Check, CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams,
    DeleteInstanceResult, Empty, InstanceInfo, InstanceSpec, ListInstancesParams,
    ListInstancesResult, ProgressParams, SetLogLevelParams, Stage, VerifyConfigParams,
    VerifyConfigResult, Volume,
};
pub use method::{Method, Notification};

/// The protocol versions this build speaks, lowest first.
pub const PROTOCOL_VERSIONS: &[u32] = &[1];

/// The highest protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default maximum size of one NDJSON line (bytes, excluding the newline).
pub const DEFAULT_MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Tag keys the host puts on every instance it creates.
pub mod tags {
    /// The Kata sandbox id.
    pub const SANDBOX_ID: &str = "caa/sandbox-id";
    /// The operation id of the createInstance call.
    pub const OPERATION_ID: &str = "caa/operation-id";
    /// `<namespace>/<pod>`.
    pub const POD: &str = "caa/pod";
    /// The worker node that owns the instance.
    pub const NODE: &str = "caa/node";
}
