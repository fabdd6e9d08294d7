//! The agent-protocol-forwarder, the pod VM's end of the agent path: it loads
//! `/run/peerpod/apf.json`, sets up the pod network, listens on `:15150` with mutual TLS (the
//! VM's certificate from apf.json, client certificates checked against `tls-client-ca`) and
//! relays each connection frame by frame to the kata-agent's unix socket with
//! [`caa_agent_relay`], reconnecting to the agent socket whenever it drops.
//!
//! - [`cli`]: upstream's flags; [`config`]: apf.json and the TLS material;
//! - [`intercept`]: CreateContainer / CreateSandbox changes; [`podnet`]: the VM side of the pod network tunnel;
//! - [`server`]: listening, TLS handshakes, the relay; [`notify`]: systemd readiness.

pub mod cli;
pub mod config;
pub mod intercept;
pub mod notify;
pub mod podnet;
pub mod server;

pub use server::{Forwarder, run};
