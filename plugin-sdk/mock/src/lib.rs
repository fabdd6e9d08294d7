//! `caa-provider-mock`, the reference provider plugin ("mock"): instances live in memory (and,
//! optionally, in a JSON state file), and failures are scripted through configuration, so that the
//! host, the CLI and the adaptor can be tested against a real plugin process without a cloud.
//!
//! Reading order: [`config`] (the option table and the typed [`MockConfig`]), [`faults`] (the
//! scriptable failures), [`store`] (the instance table and its state file), [`provider`] (the
//! [`caa_plugin_sdk::Provider`] implementation that ties them together).

// `RpcError` is the protocol's error value and every handler returns it; it is large (its
// `data`), but only on cold failure paths, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod faults;
pub mod provider;
pub mod store;

pub use config::MockConfig;
pub use faults::Faults;
pub use provider::MockProvider;
