//! Auto-mode mutual TLS between `ClientTls` and `server_config`, and the cases each side must
//! refuse.

use std::sync::Arc;

use caa_tls::rustls::pki_types::pem::PemObject;
use caa_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use caa_tls::rustls::server::{ClientHello, ResolvesServerCert};
use caa_tls::rustls::sign::CertifiedKey;
use caa_tls::rustls::{self, CertificateError, ProtocolVersion};
use caa_tls::{CaService, ClientTls, ServerRoots, TlsProfile, server_config};

use crate::{cert_error, client, exchange, raw_client, tls_error};

const VM: &str = "podvm-nginx-5f6c7d8e";

/// Every adaptor CA has the same subject, so a certificate from another one is matched to our
/// CA by name and then fails its signature check; a differently named one is an unknown issuer.
#[track_caller]
fn assert_foreign_issuer(err: &CertificateError) {
    assert!(
        matches!(err, CertificateError::BadSignature | CertificateError::UnknownIssuer),
        "{err:?}"
    );
}

#[tokio::test]
async fn auto_mode_mutual_tls_round_trip() {
    let ca = CaService::ephemeral().unwrap();
    let server = server_config(
        &ca.issue_server(VM).unwrap(),
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    let negotiated = exchange(client(&ca).connector(), VM, server).await.assert_ok();
    assert_eq!(negotiated.version, ProtocolVersion::TLSv1_3);
    assert_eq!(negotiated.client_certs, 1);
}

#[tokio::test]
async fn a_cloned_client_and_many_vms_share_one_ca() {
    let ca = CaService::ephemeral().unwrap();
    let tls = client(&ca);
    for vm in ["podvm-a", "podvm-b", &"x".repeat(63)] {
        let server = server_config(
            &ca.issue_server(vm).unwrap(),
            Some(ca.client_ca_pem_for_forwarder()),
            &TlsProfile::default(),
        )
        .unwrap();
        exchange(tls.clone().connector(), vm, server).await.assert_ok();
    }
}

#[tokio::test]
async fn server_without_client_ca_asks_for_no_certificate() {
    let ca = CaService::ephemeral().unwrap();
    let server =
        server_config(&ca.issue_server(VM).unwrap(), None, &TlsProfile::default()).unwrap();
    let anonymous = raw_client(ca.ca_pem(), None, rustls::DEFAULT_VERSIONS);
    let negotiated = exchange(anonymous, VM, server).await.assert_ok();
    assert_eq!(negotiated.client_certs, 0);
}

#[tokio::test]
async fn server_rejects_a_client_without_certificate() {
    let ca = CaService::ephemeral().unwrap();
    let server = server_config(
        &ca.issue_server(VM).unwrap(),
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    let anonymous = raw_client(ca.ca_pem(), None, rustls::DEFAULT_VERSIONS);
    let outcome = exchange(anonymous, VM, server).await;
    let err = outcome.server.expect_err("server must refuse");
    assert!(matches!(tls_error(&err), Some(rustls::Error::NoCertificatesPresented)), "{err:?}");
    assert!(outcome.client.is_err());
}

#[tokio::test]
async fn server_rejects_a_client_from_another_ca() {
    let ca = CaService::ephemeral().unwrap();
    let other = CaService::ephemeral().unwrap();
    let server = server_config(
        &ca.issue_server(VM).unwrap(),
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    // Trusts the right server, but presents the other adaptor's client certificate.
    let stranger =
        ClientTls::new(ca.server_roots(), other.client_identity(), &TlsProfile::default()).unwrap();
    let outcome = exchange(stranger.connector(), VM, server).await;
    assert_foreign_issuer(cert_error(&outcome.server));
    assert!(outcome.client.is_err());
}

#[tokio::test]
async fn server_certificate_cannot_act_as_client_certificate() {
    let ca = CaService::ephemeral().unwrap();
    let server = server_config(
        &ca.issue_server(VM).unwrap(),
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    // A pod VM's own server identity, from the same CA, lacks clientAuth.
    let vm_identity = ca.issue_server("podvm-other").unwrap();
    let impostor = ClientTls::new(ca.server_roots(), &vm_identity, &TlsProfile::default()).unwrap();
    let outcome = exchange(impostor.connector(), VM, server).await;
    assert!(
        matches!(
            cert_error(&outcome.server),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
        ),
        "{:?}",
        outcome.server
    );
}

#[tokio::test]
async fn client_rejects_a_certificate_for_another_instance() {
    let ca = CaService::ephemeral().unwrap();
    let server = server_config(
        &ca.issue_server("podvm-other").unwrap(),
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    let outcome = exchange(client(&ca).connector(), VM, server).await;
    assert!(
        matches!(
            cert_error(&outcome.client),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "{:?}",
        outcome.client
    );
    assert!(outcome.server.is_err());
}

#[tokio::test]
async fn client_rejects_a_server_from_another_ca() {
    let ca = CaService::ephemeral().unwrap();
    let other = CaService::ephemeral().unwrap();
    let server = server_config(
        &other.issue_server(VM).unwrap(),
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    let outcome = exchange(client(&ca).connector(), VM, server).await;
    assert_foreign_issuer(cert_error(&outcome.client));
}

#[tokio::test]
async fn skip_verify_accepts_an_unrelated_server_certificate() {
    let ca = CaService::ephemeral().unwrap();
    let unrelated = CaService::ephemeral().unwrap();
    let server = server_config(
        &unrelated.issue_server("whatever").unwrap(),
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    let insecure =
        ClientTls::new(ServerRoots::SkipVerify, ca.client_identity(), &TlsProfile::default())
            .unwrap();
    // Neither the issuer nor the name matches; the client certificate is still sent.
    let negotiated = exchange(insecure.connector(), VM, server).await.assert_ok();
    assert_eq!(negotiated.client_certs, 1);
}

/// Presents one certificate but signs the handshake with another key.
#[derive(Debug)]
struct WrongKey(Arc<CertifiedKey>);

impl ResolvesServerCert for WrongKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test]
async fn skip_verify_still_checks_handshake_signatures() {
    let ca = CaService::ephemeral().unwrap();
    let presented = ca.issue_server(VM).unwrap();
    let signer = ca.issue_server("podvm-thief").unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::from_pem_slice(signer.key_pem().as_bytes()).unwrap())
        .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(presented.cert_pem.as_bytes()).unwrap()];
    let resolver = Arc::new(WrongKey(Arc::new(CertifiedKey::new(chain, key))));
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
        let config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        let insecure =
            ClientTls::new(ServerRoots::SkipVerify, ca.client_identity(), &TlsProfile::default())
                .unwrap();
        let outcome = exchange(insecure.connector(), VM, Arc::new(config)).await;
        let err = outcome.client.expect_err("forged handshake signature must fail");
        assert!(
            matches!(
                tls_error(&err),
                Some(rustls::Error::InvalidCertificate(CertificateError::BadSignature))
            ),
            "{err:?}"
        );
    }
}
