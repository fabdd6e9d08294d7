//! TLS between the adaptor's agent proxy (client) and the agent-protocol-forwarder in the pod VM
//! (server): the adaptor's CA service, the certificate profiles, and rustls configurations for
//! both ends.
//!
//! Everything uses rustls' ring provider explicitly; the process-wide default provider is never
//! consulted or installed. Generated certificates follow a profile that both rustls and Go's
//! crypto/tls accept (ECDSA P-256, PKCS#8 keys):
//!
//! - CA: O=agent-protocol-forwarder, CA with keyCertSign + digitalSignature, no extended usage.
//! - Server (one per VM): O=agent-protocol-forwarder, CN and DNS SAN = instance name,
//!   digitalSignature, serverAuth, signed by the CA.
//! - Client: O and CN cloud-api-adaptor, digitalSignature, clientAuth, signed by the same CA,
//!   which is what the forwarder gets as `tls-client-ca`.
//!
//! The server side also accepts upstream's client profile (a self-signed end-entity certificate
//! used as its own trust anchor) and the client side upstream's server profile (keyCertSign on
//! an end-entity certificate, a CA with serverAuth), so Rust and Go ends can be mixed.

mod ca;
mod certs;
mod client;
mod error;
mod profile;
mod server;

pub use ca::CaService;
pub use certs::{
    CUSTOM_CA_SERVER_NAME, PemIdentity, load_identity, self_signed_client, server_name,
};
pub use client::{ClientTls, ServerRoots};
pub use error::TlsError;
pub use profile::{TlsProfile, TlsVersion, cipher_suite_name, supported_cipher_suites};
pub use server::server_config;

/// Re-exported so callers name the same rustls and tokio-rustls versions as this crate.
pub use {rustls, tokio_rustls};
