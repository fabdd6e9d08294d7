//! The forwarder's side (pod VM): server configuration with the VM's server identity, requiring
//! and verifying client certificates when a client CA is given.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::certs::{self, PemIdentity};
use crate::{TlsError, TlsProfile};

/// A server configuration presenting `identity`.
///
/// With `client_ca_pem` (apf.json `tls-client-ca` or `-ca-cert-file`), every client must
/// present a certificate chaining to one of its certificates, with clientAuth usage if it names
/// usages at all. This also accepts upstream's client profile, a self-signed end-entity
/// certificate that is its own trust anchor. Without it, no client certificate is asked for.
pub fn server_config(
    identity: &PemIdentity,
    client_ca_pem: Option<&str>,
    profile: &TlsProfile,
) -> Result<Arc<ServerConfig>, TlsError> {
    let resolved = profile.resolve()?;
    let (chain, key) = identity.to_der("server identity", &resolved.provider)?;
    let builder = ServerConfig::builder_with_provider(resolved.provider.clone())
        .with_protocol_versions(resolved.versions)
        .map_err(|source| TlsError::Config { what: "server", source })?;
    let builder = match client_ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in certs::parse_certs(pem, "client CA")? {
                roots.add(cert).map_err(|source| TlsError::Certificate {
                    origin: "client CA".to_owned(),
                    source,
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), resolved.provider)
                    .build()
                    .map_err(|source| TlsError::ClientVerifier { source })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::KeyMismatch { origin: "server identity".to_owned(), source })?;
    Ok(Arc::new(config))
}
