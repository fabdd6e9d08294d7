//! The one error type of the crate: every failure names the file or the material involved, and
//! never carries key contents.

use std::io;
use std::path::PathBuf;

/// What went wrong while loading, generating or configuring TLS material.
///
/// `origin` fields name where PEM text came from: a file path, or a label such as
/// `"server identity"` for material passed in memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A minimum TLS version other than `VersionTLS12` / `VersionTLS13`.
    #[error("unsupported TLS version {name:?}: expected VersionTLS12 or VersionTLS13")]
    UnknownVersion { name: String },

    /// A cipher suite name this implementation does not offer.
    #[error("unsupported cipher suite {name:?}; supported: {supported}")]
    UnknownCipherSuite { name: String, supported: String },

    /// Cipher suites only apply to TLS 1.2, so naming them with a TLS 1.3 minimum is a mistake.
    #[error("cipher suites cannot be set when the minimum TLS version is VersionTLS13")]
    CipherSuitesWithTls13,

    /// A name that cannot be used as a TLS server name / certificate DNS name.
    #[error("invalid server name {name:?}: {reason}")]
    InvalidServerName { name: String, reason: &'static str },

    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The certificate PEM is malformed or holds no `CERTIFICATE` block.
    #[error("no valid certificate PEM in {origin}")]
    CertificatePem { origin: String },

    /// The private key PEM is malformed or holds no key (the parser's detail is dropped on
    /// purpose: it could quote key text).
    #[error("no valid private key PEM in {origin}")]
    KeyPem { origin: String },

    /// A certificate that parses as PEM but is not usable (bad DER, not trusted as a root, ...).
    #[error("unusable certificate in {origin}")]
    Certificate {
        origin: String,
        #[source]
        source: rustls::Error,
    },

    /// The private key does not belong to the certificate, or the key type is unsupported.
    #[error("private key does not fit the certificate in {origin}")]
    KeyMismatch {
        origin: String,
        #[source]
        source: rustls::Error,
    },

    #[error("cannot generate the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },

    /// The system random source failed.
    #[error("no randomness available for the {what}")]
    Random { what: &'static str },

    #[error("cannot build the TLS {what} configuration")]
    Config {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },

    #[error("cannot build the client certificate verifier")]
    ClientVerifier {
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}
