//! The one trait a plugin implements. The SDK owns everything protocol-shaped (framing,
//! dispatch, cancellation, deadlines, idempotency, shutdown); a provider only maps typed calls
//! onto its cloud.

use std::future::Future;

use caa_plugin_proto::{
    CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams, DeleteInstanceResult,
    Describe, ErrorCode, ListInstancesParams, ListInstancesResult, RpcError, VerifyConfigResult,
};

use crate::config::Config;
use crate::ctx::Ctx;

/// A cloud provider behind the plugin protocol. Calls arrive concurrently; the provider must be
/// safe across different sandboxes and stateless between calls.
///
/// Handlers should watch [`Ctx::cancelled`] and [`Ctx::deadline`], announce an instance id with
/// [`Ctx::progress`] as soon as the cloud assigns one, and return errors carrying
/// `data.instanceId` when something may remain. Error messages must never contain secrets or
/// `userData`.
///
/// [`crate::run`] drives the plugin on a single-threaded runtime, so handlers must never block:
/// a synchronous cloud library (libvirt) runs its calls through `tokio::task::spawn_blocking`.
pub trait Provider: Send + Sync + Sized + 'static {
    /// Identity, capabilities and config schema; static, no I/O. `protocol_versions` may be left
    /// empty (the SDK fills [`caa_plugin_proto::PROTOCOL_VERSIONS`]).
    fn describe() -> Describe;

    /// Builds the provider from the resolved config during `initialize`. Must not call the cloud.
    fn init(config: Config) -> impl Future<Output = Result<Self, RpcError>> + Send;

    /// Deep check of the configuration; may call the cloud.
    fn verify_config(
        &self,
        ctx: Ctx,
    ) -> impl Future<Output = Result<VerifyConfigResult, RpcError>> + Send;

    /// Creates and starts one pod VM. The SDK already replays repeated operation ids.
    fn create_instance(
        &self,
        ctx: Ctx,
        params: CreateInstanceParams,
    ) -> impl Future<Output = Result<CreateInstanceResult, RpcError>> + Send;

    /// Deletes one pod VM; an instance that is already gone is a success.
    fn delete_instance(
        &self,
        ctx: Ctx,
        params: DeleteInstanceParams,
    ) -> impl Future<Output = Result<DeleteInstanceResult, RpcError>> + Send;

    /// Optional: default answers methodNotFound. A provider that implements it lists
    /// `"listInstances"` in `capabilities.optional_methods`.
    fn list_instances(
        &self,
        ctx: Ctx,
        params: ListInstancesParams,
    ) -> impl Future<Output = Result<ListInstancesResult, RpcError>> + Send {
        let _ = (ctx, params);
        async { Err(method_not_found("listInstances")) }
    }

    /// Releases clients and connections. Must not delete VMs.
    fn teardown(&self) -> impl Future<Output = Result<(), RpcError>> + Send {
        async { Ok(()) }
    }
}

/// The -32601 answer for a method this plugin does not implement.
pub fn method_not_found(method: &str) -> RpcError {
    RpcError::new(ErrorCode::MethodNotFound, format!("method not found: {method}"))
}
