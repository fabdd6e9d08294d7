//! The adaptor's side (agent proxy dialing the forwarder): client configuration with its client
//! certificate, the server roots, and the `TLS_SKIP_VERIFY` verifier.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::certs::{self, PemIdentity};
use crate::{TlsError, TlsProfile};

/// What the adaptor verifies the forwarder's certificate against.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerRoots {
    /// One or more CA certificates, PEM (the adaptor's CA, or `CACERT_FILE`).
    Ca(String),
    /// `TLS_SKIP_VERIFY`: any certificate chain is accepted, but the handshake signatures are
    /// still checked against the presented certificate's key.
    SkipVerify,
}

impl fmt::Debug for ServerRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerRoots::Ca(pem) => write!(f, "Ca({} bytes of PEM)", pem.len()),
            ServerRoots::SkipVerify => f.write_str("SkipVerify"),
        }
    }
}

/// The client TLS configuration, built once and shared (cloning is cheap).
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    skip_verify: bool,
}

impl ClientTls {
    /// A configuration presenting `identity` and verifying the server per `roots`, with the
    /// versions and suites of `profile`.
    pub fn new(
        roots: ServerRoots,
        identity: &PemIdentity,
        profile: &TlsProfile,
    ) -> Result<ClientTls, TlsError> {
        let resolved = profile.resolve()?;
        let (chain, key) = identity.to_der("client identity", &resolved.provider)?;
        let builder = ClientConfig::builder_with_provider(resolved.provider.clone())
            .with_protocol_versions(resolved.versions)
            .map_err(config_err)?;
        let skip_verify = roots == ServerRoots::SkipVerify;
        let builder = match roots {
            ServerRoots::Ca(pem) => {
                let mut store = RootCertStore::empty();
                for cert in certs::parse_certs(&pem, "server CA")? {
                    store.add(cert).map_err(|source| TlsError::Certificate {
                        origin: "server CA".to_owned(),
                        source,
                    })?;
                }
                builder.with_root_certificates(store)
            }
            ServerRoots::SkipVerify => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert::new(&resolved.provider))),
        };
        let config = builder.with_client_auth_cert(chain, key).map_err(|source| {
            TlsError::KeyMismatch { origin: "client identity".to_owned(), source }
        })?;
        Ok(ClientTls { config: Arc::new(config), skip_verify })
    }

    /// A connector for `tokio_rustls`; connect with [`crate::server_name`] of the instance
    /// name (auto mode) or [`crate::CUSTOM_CA_SERVER_NAME`] (custom CA mode).
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.config.clone())
    }

    /// The underlying rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").field("skip_verify", &self.skip_verify).finish_non_exhaustive()
    }
}

fn config_err(source: rustls::Error) -> TlsError {
    TlsError::Config { what: "client", source }
}

/// Accepts any server certificate chain; verifies handshake signatures with the provider's
/// algorithms, so the peer must still hold the key of the certificate it presents.
#[derive(Debug)]
struct AnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyServerCert {
    fn new(provider: &CryptoProvider) -> AnyServerCert {
        AnyServerCert { algorithms: provider.signature_verification_algorithms }
    }
}

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
