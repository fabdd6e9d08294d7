//! The CA service on disk: persistence across restarts, permissions, replacement of bad or
//! expiring material, and the profile of what it issues.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use caa_tls::{CaService, ClientTls, TlsError, TlsProfile, server_config};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::exchange;

const FILES: [&str; 4] = ["ca.crt", "ca.key", "client.crt", "client.key"];

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A VM made by `before` (server cert and client CA from it) serves the adaptor `after`.
async fn vm_of(before: &CaService, after: &CaService) -> crate::Outcome {
    let name = "podvm-survivor";
    let server = server_config(
        &before.issue_server(name).unwrap(),
        Some(before.client_ca_pem_for_forwarder()),
        &TlsProfile::default(),
    )
    .unwrap();
    let client =
        ClientTls::new(after.server_roots(), after.client_identity(), &TlsProfile::default())
            .unwrap();
    exchange(client.connector(), name, server).await
}

#[tokio::test]
async fn persists_and_reloads_the_same_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tls");
    let first = CaService::load_or_create(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    for file in FILES {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(fs::read_to_string(dir.join("ca.crt")).unwrap(), first.ca_pem());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), FILES.len(), "no stray tmp files");

    let second = CaService::load_or_create(&dir).unwrap();
    assert_eq!(second.ca_pem(), first.ca_pem());
    assert_eq!(second.client_identity(), first.client_identity());
    assert_eq!(second.client_ca_pem_for_forwarder(), first.ca_pem());
    vm_of(&first, &second).await.assert_ok();
}

#[tokio::test]
async fn existing_directory_is_made_private() {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    CaService::load_or_create(tmp.path()).unwrap();
    assert_eq!(mode(tmp.path()), 0o700);
}

#[tokio::test]
async fn corrupt_ca_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let first = CaService::load_or_create(tmp.path()).unwrap();
    fs::write(tmp.path().join("ca.crt"), "not a certificate").unwrap();

    let second = CaService::load_or_create(tmp.path()).unwrap();
    assert_ne!(second.ca_pem(), first.ca_pem());
    assert_ne!(second.client_identity(), first.client_identity());
    assert_eq!(mode(&tmp.path().join("ca.crt")), 0o600);
    // The old VM no longer trusts the new adaptor, nor the adaptor it.
    assert!(vm_of(&first, &second).await.client.is_err());

    let third = CaService::load_or_create(tmp.path()).unwrap();
    assert_eq!(third.ca_pem(), second.ca_pem());
    vm_of(&second, &third).await.assert_ok();
}

#[tokio::test]
async fn ca_key_not_matching_the_certificate_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let first = CaService::load_or_create(tmp.path()).unwrap();
    let other = tempfile::tempdir().unwrap();
    CaService::load_or_create(other.path()).unwrap();
    fs::copy(other.path().join("ca.key"), tmp.path().join("ca.key")).unwrap();

    let second = CaService::load_or_create(tmp.path()).unwrap();
    assert_ne!(second.ca_pem(), first.ca_pem());
    vm_of(&second, &second).await.assert_ok();
}

#[tokio::test]
async fn corrupt_client_key_is_reissued_under_the_kept_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let first = CaService::load_or_create(tmp.path()).unwrap();
    fs::write(tmp.path().join("client.key"), "garbage").unwrap();

    let second = CaService::load_or_create(tmp.path()).unwrap();
    assert_eq!(second.ca_pem(), first.ca_pem());
    assert_ne!(second.client_identity(), first.client_identity());
    // VMs made before still accept the new client certificate.
    vm_of(&first, &second).await.assert_ok();
}

#[tokio::test]
async fn missing_client_files_are_reissued() {
    let tmp = tempfile::tempdir().unwrap();
    let first = CaService::load_or_create(tmp.path()).unwrap();
    fs::remove_file(tmp.path().join("client.crt")).unwrap();
    let second = CaService::load_or_create(tmp.path()).unwrap();
    assert_eq!(second.ca_pem(), first.ca_pem());
    vm_of(&first, &second).await.assert_ok();
}

#[test]
fn ca_expiring_within_30_days_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages =
        vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(700);
    params.not_after = now + Duration::days(10);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    fs::write(tmp.path().join("ca.crt"), cert.pem()).unwrap();
    fs::write(tmp.path().join("ca.key"), key.serialize_pem()).unwrap();

    let service = CaService::load_or_create(tmp.path()).unwrap();
    assert_ne!(service.ca_pem(), cert.pem());
    let der = x509_der(service.ca_pem());
    let (_, ca) = X509Certificate::from_der(&der).unwrap();
    assert!(ca.validity().not_after.to_datetime() > now + Duration::days(700));
}

#[test]
fn unwritable_directory_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    fs::write(&file, "").unwrap();
    let err = CaService::load_or_create(&file.join("tls")).unwrap_err();
    assert!(matches!(err, TlsError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("plain-file"), "{err}");
}

fn x509_der(pem: &str) -> Vec<u8> {
    use caa_tls::rustls::pki_types::CertificateDer;
    use caa_tls::rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

fn org_and_cn(cert: &X509Certificate<'_>) -> (String, Option<String>) {
    let subject = cert.subject();
    let org = subject.iter_organization().next().unwrap().as_str().unwrap();
    let cn = subject.iter_common_name().next().map(|cn| cn.as_str().unwrap().to_owned());
    (org.to_owned(), cn)
}

#[test]
fn issued_certificates_follow_the_profile() {
    let ca = CaService::ephemeral().unwrap();
    let now = OffsetDateTime::now_utc();
    let name = "podvm-abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijklmnopqrs";
    assert_eq!(name.len(), 63);
    let server = ca.issue_server(name).unwrap();
    assert!(server.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(ca.client_identity().key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));

    let ca_der = x509_der(ca.ca_pem());
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    assert_eq!(org_and_cn(&ca_cert).0, "agent-protocol-forwarder");
    assert!(ca_cert.is_ca());
    let ku = ca_cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.digital_signature());
    assert!(ca_cert.extended_key_usage().unwrap().is_none());
    let ca_not_after = ca_cert.validity().not_after.to_datetime();
    let not_before = ca_cert.validity().not_before.to_datetime();
    assert!(not_before <= now - Duration::minutes(4) && not_before >= now - Duration::minutes(6));
    assert!(ca_not_after >= now + Duration::days(729) && ca_not_after <= now + Duration::days(731));

    let server_der = x509_der(&server.cert_pem);
    let (_, cert) = X509Certificate::from_der(&server_der).unwrap();
    assert_eq!(org_and_cn(&cert), ("agent-protocol-forwarder".to_owned(), Some(name.to_owned())));
    assert!(!cert.is_ca());
    assert_eq!(cert.issuer(), ca_cert.subject());
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let sans: Vec<_> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect();
    assert_eq!(sans, [name]);
    assert!(cert.validity().not_after.to_datetime() <= ca_not_after);
    assert!(cert.raw_serial().len() >= 15 && cert.raw_serial().len() <= 17);
    assert!(
        cert.extensions()
            .iter()
            .any(|e| matches!(e.parsed_extension(), ParsedExtension::AuthorityKeyIdentifier(_)))
    );

    let client_der = x509_der(&ca.client_identity().cert_pem);
    let (_, cert) = X509Certificate::from_der(&client_der).unwrap();
    assert_eq!(
        org_and_cn(&cert),
        ("cloud-api-adaptor".to_owned(), Some("cloud-api-adaptor".to_owned()))
    );
    assert!(!cert.is_ca());
    assert_eq!(cert.issuer(), ca_cert.subject());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
}

#[test]
fn instance_names_must_be_dns_names() {
    let ca = CaService::ephemeral().unwrap();
    for bad in ["", "podvm_x", "-podvm", "podvm-", "10.0.0.1", "a..b", "pod vm", &"a".repeat(64)] {
        let err = ca.issue_server(bad).unwrap_err();
        assert!(
            matches!(&err, TlsError::InvalidServerName { name, .. } if name == bad),
            "{bad:?}: {err:?}"
        );
        assert!(caa_tls::server_name(bad).is_err(), "{bad:?}");
    }
    for good in ["podvm-x", "PodVM-1", "vm.example.com", &"a".repeat(63)] {
        ca.issue_server(good).unwrap();
        caa_tls::server_name(good).unwrap();
    }
    caa_tls::server_name(caa_tls::CUSTOM_CA_SERVER_NAME).unwrap();
}

#[test]
fn ca_service_is_shareable_and_does_not_debug_keys() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CaService>();
    assert_send_sync::<ClientTls>();
    let ca = CaService::ephemeral().unwrap();
    let debug = format!("{ca:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}

#[test]
fn replacements_are_logged_as_warnings_without_key_material() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = caa_test_support::LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let first = CaService::load_or_create(tmp.path()).unwrap();
        assert!(capture.text().contains("INFO"), "{}", capture.text());
        assert!(!capture.text().contains("WARN"), "{}", capture.text());

        // Reuse is silent.
        let before = capture.text().len();
        CaService::load_or_create(tmp.path()).unwrap();
        assert_eq!(capture.text().len(), before, "{}", capture.text());

        let key = fs::read_to_string(tmp.path().join("ca.key")).unwrap();
        fs::write(tmp.path().join("ca.crt"), "garbage").unwrap();
        CaService::load_or_create(tmp.path()).unwrap();
        fs::write(tmp.path().join("client.key"), "garbage").unwrap();
        CaService::load_or_create(tmp.path()).unwrap();

        let text = capture.text();
        let warnings: Vec<_> = text.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 2, "{text}");
        assert!(warnings[0].contains("CA") && warnings[0].contains("ca.crt"), "{text}");
        assert!(warnings[1].contains("client identity"), "{text}");
        for secret in [&key, first.client_identity().key_pem()] {
            for line in secret.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!text.contains(line), "key material logged: {text}");
            }
        }
    });
}
