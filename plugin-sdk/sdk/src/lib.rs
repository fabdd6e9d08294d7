//! The plugin side of the caa provider plugin protocol. A plugin implements [`Provider`] and its
//! `main` is one call:
//!
//! ```text
//! fn main() -> std::process::ExitCode {
//!     caa_plugin_sdk::run::<MyProvider>()
//! }
//! ```
//!
//! The SDK owns framing, dispatch, cancellation, deadlines, `createInstance` idempotency,
//! draining on EOF or SIGTERM, the stdout guard and logging. `docs/plugin-protocol.md` is the
//! normative protocol text.
//!
//! Reading order: [`provider`] (the trait), [`config`] (resolved options), [`ctx`] (per-call
//! context), `serve` (the read loop), `dispatch` (routing and supervision), `inflight` and
//! `replay` (running requests and create idempotency), `overrun` (answers given for a handler
//! that overran), `stdio` (process set-up), [`instance_type`] (helpers for choosing an instance
//! type).

// `RpcError` (about 200 bytes) is the protocol's error object and every provider call returns
// it; boxing it would burden the provider API for a cost paid once per request.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod ctx;
mod dispatch;
mod inflight;
pub mod instance_type;
mod logging;
pub mod naming;
mod outbox;
mod overrun;
mod parent;
pub mod provider;
mod replay;
mod serve;
mod stdio;

pub use caa_plugin_proto as proto;
pub use config::Config;
pub use ctx::Ctx;
pub use logging::LOG_LEVEL_ENV;
pub use naming::{instance_name, request_digest};
pub use provider::{Provider, method_not_found};
pub use serve::{
    EnvLookup, LogLevelHook, SdkError, ServeOptions, ServeOutcome, describe_filled, serve,
};
pub use stdio::run;
