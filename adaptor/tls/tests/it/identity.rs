//! PEM identities: loading from files (`CERT_FILE` / `CERT_KEY`), errors, redaction, and the
//! self-signed client of custom-CA mode.

use std::fs;

use caa_tls::{
    CUSTOM_CA_SERVER_NAME, CaService, ClientTls, PemIdentity, ServerRoots, TlsError, TlsProfile,
    load_identity, self_signed_client, server_config,
};

use crate::exchange;

/// The base64 body of a PEM block (what must never leak).
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn debug_does_not_print_the_key() {
    let id = CaService::ephemeral().unwrap().issue_server("podvm-x").unwrap();
    for debug in [format!("{id:?}"), format!("{id:#?}")] {
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        for line in id.key_pem().lines().filter(|l| !l.starts_with("-----")) {
            assert!(!debug.contains(line), "key material in {debug}");
        }
    }
}

#[test]
fn load_identity_reads_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    let id = self_signed_client().unwrap();
    let (cert, key) = (tmp.path().join("tls.crt"), tmp.path().join("tls.key"));
    fs::write(&cert, &id.cert_pem).unwrap();
    fs::write(&key, id.key_pem()).unwrap();
    assert_eq!(load_identity(&cert, &key).unwrap(), id);
}

#[test]
fn load_identity_errors_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let id = self_signed_client().unwrap();
    let cert = tmp.path().join("client.crt");
    let key = tmp.path().join("client.key");
    fs::write(&cert, &id.cert_pem).unwrap();

    let missing = load_identity(&cert, &key).unwrap_err();
    assert!(matches!(&missing, TlsError::Read { path, .. } if path == &key));
    assert!(missing.to_string().contains("client.key"), "{missing}");

    fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot base64 !!\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let bad_key = load_identity(&cert, &key).unwrap_err();
    assert!(matches!(bad_key, TlsError::KeyPem { .. }), "{bad_key:?}");
    assert!(bad_key.to_string().contains("client.key"), "{bad_key}");

    fs::write(&key, id.key_pem()).unwrap();
    fs::write(&cert, "hello").unwrap();
    let bad_cert = load_identity(&cert, &key).unwrap_err();
    assert!(matches!(bad_cert, TlsError::CertificatePem { .. }), "{bad_cert:?}");
    assert!(bad_cert.to_string().contains("client.crt"), "{bad_cert}");

    // A valid key of another identity: named mismatch, without key text.
    let other = self_signed_client().unwrap();
    fs::write(&cert, &id.cert_pem).unwrap();
    fs::write(&key, other.key_pem()).unwrap();
    let mismatch = load_identity(&cert, &key).unwrap_err();
    assert!(matches!(mismatch, TlsError::KeyMismatch { .. }), "{mismatch:?}");
    let text = format!("{mismatch} {mismatch:?}");
    assert!(text.contains("client.crt") && text.contains("client.key"), "{text}");
    assert!(!text.contains(&pem_body(other.key_pem())[..40]), "{text}");
}

#[test]
fn mismatched_in_memory_identity_is_refused() {
    let ca = CaService::ephemeral().unwrap();
    let a = ca.issue_server("podvm-a").unwrap();
    let b = ca.issue_server("podvm-b").unwrap();
    let crossed = PemIdentity::new(a.cert_pem.clone(), b.key_pem().to_owned());
    assert!(matches!(
        server_config(&crossed, None, &TlsProfile::default()),
        Err(TlsError::KeyMismatch { .. })
    ));
    assert!(matches!(
        ClientTls::new(ca.server_roots(), &crossed, &TlsProfile::default()),
        Err(TlsError::KeyMismatch { .. })
    ));
    assert!(matches!(
        ClientTls::new(
            ServerRoots::Ca("junk".into()),
            ca.client_identity(),
            &TlsProfile::default()
        ),
        Err(TlsError::CertificatePem { .. })
    ));
}

/// Custom-CA mode: the forwarder's certificate (baked into the image) is for `podvm-server`,
/// and the adaptor has a self-signed client certificate the image trusts.
#[tokio::test]
async fn custom_ca_mode_with_a_self_signed_client() {
    let image_ca = CaService::ephemeral().unwrap();
    let baked = image_ca.issue_server(CUSTOM_CA_SERVER_NAME).unwrap();
    let client_id = self_signed_client().unwrap();
    let server = server_config(&baked, Some(&client_id.cert_pem), &TlsProfile::default()).unwrap();
    let client = ClientTls::new(
        ServerRoots::Ca(image_ca.ca_pem().to_owned()),
        &client_id,
        &TlsProfile::default(),
    )
    .unwrap();
    exchange(client.connector(), CUSTOM_CA_SERVER_NAME, server).await.assert_ok();
}
