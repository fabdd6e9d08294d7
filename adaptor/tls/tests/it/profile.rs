//! TLS profiles (`TLS_MIN_VERSION`, `TLS_CIPHER_SUITES`) as seen on the wire.

use caa_tls::rustls::{self, CipherSuite, ProtocolVersion};
use caa_tls::{
    CaService, ClientTls, TlsError, TlsProfile, TlsVersion, cipher_suite_name, server_config,
    supported_cipher_suites,
};

use crate::{exchange, raw_client, raw_tls12_server};

const VM: &str = "podvm-profile";

fn profile(min_version: Option<TlsVersion>, suites: &[&str]) -> TlsProfile {
    TlsProfile { min_version, cipher_suites: suites.iter().map(|s| (*s).to_owned()).collect() }
}

fn server(ca: &CaService, profile: &TlsProfile) -> std::sync::Arc<rustls::ServerConfig> {
    server_config(&ca.issue_server(VM).unwrap(), Some(ca.client_ca_pem_for_forwarder()), profile)
        .unwrap()
}

#[tokio::test]
async fn minimum_tls13_negotiates_tls13_and_refuses_tls12_peers() {
    let ca = CaService::ephemeral().unwrap();
    let tls13 = profile(Some(TlsVersion::Tls13), &[]);
    let client = ClientTls::new(ca.server_roots(), ca.client_identity(), &tls13).unwrap();

    let negotiated =
        exchange(client.connector(), VM, server(&ca, &TlsProfile::default())).await.assert_ok();
    assert_eq!(negotiated.version, ProtocolVersion::TLSv1_3);

    // A TLS 1.3-only server and a TLS 1.2-only client find no common version.
    let tls12_client =
        raw_client(ca.ca_pem(), Some(ca.client_identity()), &[&rustls::version::TLS12]);
    let outcome = exchange(tls12_client, VM, server(&ca, &tls13)).await;
    assert!(outcome.server.is_err() && outcome.client.is_err());

    // And the other way round.
    let tls12_server = raw_tls12_server(&ca.issue_server(VM).unwrap(), &[]);
    let outcome = exchange(client.connector(), VM, tls12_server).await;
    assert!(outcome.client.is_err());
}

#[tokio::test]
async fn default_profile_allows_tls12_peers() {
    let ca = CaService::ephemeral().unwrap();
    let tls12_client =
        raw_client(ca.ca_pem(), Some(ca.client_identity()), &[&rustls::version::TLS12]);
    let negotiated =
        exchange(tls12_client, VM, server(&ca, &TlsProfile::default())).await.assert_ok();
    assert_eq!(negotiated.version, ProtocolVersion::TLSv1_2);
}

#[tokio::test]
async fn server_cipher_suites_restrict_tls12() {
    let ca = CaService::ephemeral().unwrap();
    let chacha = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
    let restricted = profile(Some(TlsVersion::Tls12), &[chacha]);
    // The TLS 1.2 client offers every suite, AES-GCM first.
    let tls12_client =
        raw_client(ca.ca_pem(), Some(ca.client_identity()), &[&rustls::version::TLS12]);
    let negotiated = exchange(tls12_client, VM, server(&ca, &restricted)).await.assert_ok();
    assert_eq!(negotiated.version, ProtocolVersion::TLSv1_2);
    assert_eq!(negotiated.suite, CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256);
    assert_eq!(cipher_suite_name(negotiated.suite), Some(chacha));

    // TLS 1.3 suites stay available.
    let client =
        ClientTls::new(ca.server_roots(), ca.client_identity(), &TlsProfile::default()).unwrap();
    let negotiated = exchange(client.connector(), VM, server(&ca, &restricted)).await.assert_ok();
    assert_eq!(negotiated.version, ProtocolVersion::TLSv1_3);
}

#[tokio::test]
async fn client_cipher_suites_restrict_tls12() {
    let ca = CaService::ephemeral().unwrap();
    let aes256 = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
    let client =
        ClientTls::new(ca.server_roots(), ca.client_identity(), &profile(None, &[aes256])).unwrap();
    let identity = ca.issue_server(VM).unwrap();

    // A TLS 1.2 server offering every suite picks the client's only one.
    let negotiated =
        exchange(client.connector(), VM, raw_tls12_server(&identity, &[])).await.assert_ok();
    assert_eq!(negotiated.suite, CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384);

    // Disjoint TLS 1.2 suites: no handshake.
    let aes128_server = raw_tls12_server(&identity, &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
    let outcome = exchange(client.connector(), VM, aes128_server).await;
    assert!(outcome.client.is_err() && outcome.server.is_err());

    // TLS 1.3 is unaffected by the list.
    let negotiated =
        exchange(client.connector(), VM, server(&ca, &TlsProfile::default())).await.assert_ok();
    assert_eq!(negotiated.version, ProtocolVersion::TLSv1_3);
}

#[test]
fn unknown_cipher_suite_is_named_with_the_supported_list() {
    let bad = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA";
    let p = profile(None, &["TLS_AES_128_GCM_SHA256", bad]);
    let err = p.validate().unwrap_err();
    assert!(matches!(&err, TlsError::UnknownCipherSuite { name, .. } if name == bad));
    let msg = err.to_string();
    assert!(msg.contains(bad), "{msg}");
    for name in supported_cipher_suites() {
        assert!(msg.contains(name), "{msg} lacks {name}");
    }
    // Building configs fails the same way.
    let ca = CaService::ephemeral().unwrap();
    assert!(matches!(
        ClientTls::new(ca.server_roots(), ca.client_identity(), &p),
        Err(TlsError::UnknownCipherSuite { .. })
    ));
    assert!(matches!(
        server_config(&ca.issue_server(VM).unwrap(), None, &p),
        Err(TlsError::UnknownCipherSuite { .. })
    ));
}

#[test]
fn accepted_profiles_validate() {
    assert!(TlsProfile::default().validate().is_ok());
    let all: Vec<&str> = supported_cipher_suites();
    assert!(all.contains(&"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"));
    assert!(all.contains(&"TLS_AES_128_GCM_SHA256"));
    assert!(profile(Some(TlsVersion::Tls12), &all).validate().is_ok());
    assert!(matches!(
        profile(Some(TlsVersion::Tls13), &["TLS_AES_128_GCM_SHA256"]).validate(),
        Err(TlsError::CipherSuitesWithTls13)
    ));
    assert_eq!(TlsVersion::Tls13.as_upstream_str(), "VersionTLS13");
    assert_eq!("VersionTLS12".parse::<TlsVersion>().unwrap(), TlsVersion::Tls12);
    assert!(matches!("VersionTLS11".parse::<TlsVersion>(), Err(TlsError::UnknownVersion { .. })));
}
