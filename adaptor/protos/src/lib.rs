//! The ttrpc protocols the adaptor speaks with Kata: `hypervisor.Hypervisor` (the Kata shim's
//! remote hypervisor: CreateVM, StartVM, StopVM, Version) and `podvminfo.PodVMInfo` (GetInfo),
//! as protobuf messages plus async server/client stubs generated at build time from our own
//! `.proto` files in `proto/` (see `build.rs`; pure-Rust codegen, no `protoc`).
//!
//! Each protocol module holds its messages, the async service trait to implement, the
//! `create_*` function that turns an implementation into services for
//! [`Server::register_service`](ttrpc::asynchronous::Server::register_service), and the
//! generated client. Several protocols are served on one socket by registering each map on
//! the same server. Wire service names are exactly the .proto ones ([`HYPERVISOR_SERVICE`],
//! [`PODVMINFO_SERVICE`]); `build.rs` undoes the code generator's camel-casing of them.
//!
//! Handlers report failures with [`rpc_error`]: the generated dispatch code sends an
//! [`ttrpc::Error::RpcStatus`] to the peer with its code and message unchanged (Go clients see
//! it through `status.FromError`), while any other error variant reaches the peer as
//! `UNKNOWN` with a debug-formatted message.
//!
//! `ttrpc`, `protobuf` and the `async_trait` attribute (needed to implement the service traits)
//! are re-exported so users need no version-matched dependencies.

pub use async_trait::async_trait;
pub use protobuf;
pub use ttrpc;
pub use ttrpc::Code;

/// Every generated file, as sibling modules (generated code refers to `super::<file>::T`).
#[allow(
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    unused_qualifications,
    clippy::pedantic,
    clippy::nursery
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

// One line per protocol: its messages and its ttrpc stubs, flattened.

/// `hypervisor.Hypervisor`: messages, [`hypervisor::Hypervisor`] service trait,
/// [`hypervisor::create_hypervisor`] and [`hypervisor::HypervisorClient`].
pub mod hypervisor {
    pub use crate::generated::{hypervisor::*, hypervisor_ttrpc::*};
}

/// `podvminfo.PodVMInfo`: messages, [`podvminfo::PodVmInfo`] service trait,
/// [`podvminfo::create_pod_vm_info`] and [`podvminfo::PodVmInfoClient`].
pub mod podvminfo {
    /// Same as [`create_pod_vm_info`] (the generator's spelling).
    pub use crate::generated::podvminfo_ttrpc::create_pod_vm_info as create_pod_vminfo;
    pub use crate::generated::{podvminfo::*, podvminfo_ttrpc::*};
}

/// The part of the Kata agent API (package `grpc`) that the agent proxy, the forwarder and the
/// test agent decode. Messages only: the proxy relays frames and registers no agent service.
/// Fields not modelled are kept as unknown fields and written back on re-encoding.
pub mod agent {
    pub use crate::generated::agent::*;
}

/// ttrpc service name of the Kata agent's main service.
pub const AGENT_SERVICE: &str = "grpc.AgentService";
/// ttrpc service name of the Kata agent's health service.
pub const HEALTH_SERVICE: &str = "grpc.Health";

/// ttrpc service name of [`hypervisor::Hypervisor`] as it appears on the wire.
pub const HYPERVISOR_SERVICE: &str = "hypervisor.Hypervisor";
/// ttrpc service name of [`podvminfo::PodVmInfo`] as it appears on the wire.
pub const PODVMINFO_SERVICE: &str = "podvminfo.PodVMInfo";

/// An RPC failure with a status `code` and `message` that reach the peer intact when returned
/// from a generated service method.
pub fn rpc_error(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}
