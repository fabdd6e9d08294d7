//! Mixing with upstream's Go components: certificates in upstream's profiles (made here with
//! rcgen) must work with our client and server configurations.

use caa_tls::{CaService, ClientTls, PemIdentity, ServerRoots, TlsProfile, server_config};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::exchange;

const VM: &str = "podvm-busybox-0a1b2c3d";

fn upstream_params(org: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, org);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(730);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    params
}

/// Upstream's client: self-signed end entity with keyCertSign, clientAuth; the forwarder gets
/// this very certificate as `tls-client-ca`.
fn upstream_client() -> PemIdentity {
    let mut params = upstream_params("cloud-api-adaptor");
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    PemIdentity::new(cert.pem(), key.serialize_pem())
}

/// Upstream's CA (with serverAuth) and a server certificate for `name` that carries keyCertSign.
fn upstream_ca_and_server(name: &str) -> (String, PemIdentity) {
    let mut ca_params = upstream_params("agent-protocol-forwarder");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = upstream_params("agent-protocol-forwarder");
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![SanType::DnsName(name.try_into().unwrap())];
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), PemIdentity::new(cert.pem(), key.serialize_pem()))
}

#[tokio::test]
async fn our_server_accepts_an_upstream_self_signed_client() {
    let ca = CaService::ephemeral().unwrap();
    let upstream = upstream_client();
    let server = server_config(
        &ca.issue_server(VM).unwrap(),
        Some(&upstream.cert_pem),
        &TlsProfile::default(),
    )
    .unwrap();
    let client = ClientTls::new(ca.server_roots(), &upstream, &TlsProfile::default()).unwrap();
    let negotiated = exchange(client.connector(), VM, server).await.assert_ok();
    assert_eq!(negotiated.client_certs, 1);
}

#[tokio::test]
async fn our_server_with_an_upstream_client_ca_still_rejects_others() {
    let ca = CaService::ephemeral().unwrap();
    let upstream = upstream_client();
    let server = server_config(
        &ca.issue_server(VM).unwrap(),
        Some(&upstream.cert_pem),
        &TlsProfile::default(),
    )
    .unwrap();
    let other = upstream_client();
    let client = ClientTls::new(ca.server_roots(), &other, &TlsProfile::default()).unwrap();
    let outcome = exchange(client.connector(), VM, server).await;
    assert!(outcome.server.is_err());
}

#[tokio::test]
async fn our_client_accepts_an_upstream_server_certificate() {
    let ca = CaService::ephemeral().unwrap();
    let (upstream_ca, server_identity) = upstream_ca_and_server(VM);
    let server = server_config(
        &server_identity,
        Some(ca.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    let client =
        ClientTls::new(ServerRoots::Ca(upstream_ca), ca.client_identity(), &TlsProfile::default())
            .unwrap();
    exchange(client.connector(), VM, server).await.assert_ok();
}

#[tokio::test]
async fn upstream_profiles_on_both_ends() {
    // An upstream adaptor's material handed to our forwarder, over TLS 1.2 and 1.3.
    let (upstream_ca, server_identity) = upstream_ca_and_server(VM);
    let upstream = upstream_client();
    for min_version in [None, Some(caa_tls::TlsVersion::Tls13)] {
        let profile = TlsProfile { min_version, cipher_suites: vec![] };
        let server = server_config(&server_identity, Some(&upstream.cert_pem), &profile).unwrap();
        let client =
            ClientTls::new(ServerRoots::Ca(upstream_ca.clone()), &upstream, &profile).unwrap();
        exchange(client.connector(), VM, server).await.assert_ok();
    }
    let server =
        server_config(&server_identity, Some(&upstream.cert_pem), &TlsProfile::default()).unwrap();
    let tls12 =
        crate::raw_client(&upstream_ca, Some(&upstream), &[&caa_tls::rustls::version::TLS12]);
    let negotiated = exchange(tls12, VM, server).await.assert_ok();
    assert_eq!(negotiated.version, caa_tls::rustls::ProtocolVersion::TLSv1_2);
}
