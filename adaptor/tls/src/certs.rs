//! Certificate material: the PEM identity type, PEM parsing, the certificate profiles we
//! generate (CA, per-VM server, adaptor client) and server-name checks.

use std::fmt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use time::{Duration, OffsetDateTime};

use crate::TlsError;

/// The server name the adaptor verifies when the forwarder's certificate comes from a
/// user-supplied CA (`CACERT_FILE`) instead of the adaptor's own CA.
pub const CUSTOM_CA_SERVER_NAME: &str = "podvm-server";

/// Organization of the CA and of the per-VM server certificates.
pub(crate) const FORWARDER_ORG: &str = "agent-protocol-forwarder";
/// Organization and common name of the adaptor's client certificate.
pub(crate) const ADAPTOR_NAME: &str = "cloud-api-adaptor";

/// How far back `NotBefore` is set, to tolerate clock skew between node and VM.
const BACKDATE: Duration = Duration::minutes(5);
/// Validity of every certificate we generate (issued ones are clipped to the CA's).
const VALIDITY: Duration = Duration::days(730);

/// A certificate chain and its private key, both PEM. The key is PKCS#8 (`PRIVATE KEY`) when
/// we generated it; loaded keys may be any form rustls reads (PKCS#8, SEC1, PKCS#1).
///
/// `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct PemIdentity {
    pub cert_pem: String,
    key_pem: String,
}

impl PemIdentity {
    /// Wraps PEM text as is; it is parsed when a TLS configuration is built from it.
    pub fn new(cert_pem: String, key_pem: String) -> PemIdentity {
        PemIdentity { cert_pem, key_pem }
    }

    /// The private key PEM (secret: never log it).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The chain and key as rustls wants them, checked to belong together.
    pub(crate) fn to_der(
        &self,
        origin: &str,
        provider: &CryptoProvider,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain = parse_certs(&self.cert_pem, origin)?;
        let key = parse_key(&self.key_pem, origin)?;
        CertifiedKey::from_der(chain.clone(), key.clone_key(), provider)
            .map_err(|source| TlsError::KeyMismatch { origin: origin.to_owned(), source })?;
        Ok((chain, key))
    }
}

impl fmt::Debug for PemIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemIdentity")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Every `CERTIFICATE` block of `pem`; at least one.
pub(crate) fn parse_certs(
    pem: &str,
    origin: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::CertificatePem { origin: origin.to_owned() })?;
    if certs.is_empty() {
        return Err(TlsError::CertificatePem { origin: origin.to_owned() });
    }
    Ok(certs)
}

/// The first private key of `pem` (PKCS#8, SEC1 or PKCS#1).
pub(crate) fn parse_key(pem: &str, origin: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| TlsError::KeyPem { origin: origin.to_owned() })
}

/// Reads a certificate chain and key from files (`CERT_FILE` / `CERT_KEY`, or the forwarder's
/// `-cert-file` / `-cert-key`), checking that both parse and belong together.
pub fn load_identity(cert_file: &Path, key_file: &Path) -> Result<PemIdentity, TlsError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|source| TlsError::Read { path: path.to_owned(), source })
    };
    let cert_pem = read(cert_file)?;
    let key_pem = read(key_file)?;
    parse_certs(&cert_pem, &cert_file.display().to_string())?;
    parse_key(&key_pem, &key_file.display().to_string())?;
    let identity = PemIdentity::new(cert_pem, key_pem);
    let origin = format!("{} and {}", cert_file.display(), key_file.display());
    identity.to_der(&origin, &rustls::crypto::ring::default_provider())?;
    Ok(identity)
}

/// Checks that `name` is a DNS name usable as TLS server name and certificate SAN: dot-separated
/// labels of ASCII letters, digits and `-` (not at a label's ends), each 1 to 63 long, at most
/// 253 in all, the last one not all digits (so no IP addresses).
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    check_dns_name(name)?;
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::InvalidServerName {
        name: name.to_owned(),
        reason: "not a DNS name",
    })
}

fn check_dns_name(name: &str) -> Result<(), TlsError> {
    let invalid = |reason| TlsError::InvalidServerName { name: name.to_owned(), reason };
    if name.is_empty() || name.len() > 253 {
        return Err(invalid("must be 1 to 253 characters long"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid("each dot-separated label must be 1 to 63 characters long"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid("only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label cannot start or end with '-'"));
        }
    }
    if name.rsplit('.').next().is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit())) {
        return Err(invalid("the last label cannot be all digits (IP addresses are not accepted)"));
    }
    Ok(())
}

/// A certificate and its freshly generated P-256 key, in PEM.
pub(crate) struct Generated {
    pub(crate) params: CertificateParams,
    pub(crate) cert_pem: String,
    pub(crate) key: KeyPair,
}

impl Generated {
    pub(crate) fn identity(&self) -> PemIdentity {
        PemIdentity::new(self.cert_pem.clone(), self.key.serialize_pem())
    }
}

/// A new self-signed CA: O=agent-protocol-forwarder, CA (path length 0), keyCertSign and
/// digitalSignature, no extended key usage.
pub(crate) fn generate_ca(now: OffsetDateTime) -> Result<Generated, TlsError> {
    let what = "CA certificate";
    let mut params = base_params(what, now, None)?;
    params.distinguished_name = dn(FORWARDER_ORG, None);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let key = new_key(what)?;
    let cert = params.self_signed(&key).map_err(gen_err(what))?;
    Ok(Generated { cert_pem: cert.pem(), params, key })
}

/// A per-VM server certificate: O=agent-protocol-forwarder, CN and DNS SAN = `instance_name`,
/// not a CA, digitalSignature, serverAuth.
pub(crate) fn generate_server(
    instance_name: &str,
    issuer: &Issuer<'_, KeyPair>,
    ca_not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Generated, TlsError> {
    check_dns_name(instance_name)?;
    let what = "server certificate";
    let mut params = base_params(what, now, Some(ca_not_after))?;
    params.distinguished_name = dn(FORWARDER_ORG, Some(instance_name));
    let san = instance_name.try_into().map_err(gen_err(what))?;
    params.subject_alt_names = vec![SanType::DnsName(san)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    sign(params, what, Some(issuer))
}

/// The adaptor's client certificate: O and CN cloud-api-adaptor, not a CA, digitalSignature,
/// clientAuth; signed by `issuer`, or self-signed without one.
pub(crate) fn generate_client(
    issuer: Option<(&Issuer<'_, KeyPair>, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Result<Generated, TlsError> {
    let what = "client certificate";
    let mut params = base_params(what, now, issuer.map(|(_, not_after)| not_after))?;
    params.distinguished_name = dn(ADAPTOR_NAME, Some(ADAPTOR_NAME));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = issuer.is_some();
    sign(params, what, issuer.map(|(issuer, _)| issuer))
}

/// A self-signed client identity, for custom-CA mode without `CERT_FILE` (as upstream, which
/// generates one when none is configured).
pub fn self_signed_client() -> Result<PemIdentity, TlsError> {
    Ok(generate_client(None, OffsetDateTime::now_utc())?.identity())
}

fn sign(
    params: CertificateParams,
    what: &'static str,
    issuer: Option<&Issuer<'_, KeyPair>>,
) -> Result<Generated, TlsError> {
    let key = new_key(what)?;
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer),
        None => params.self_signed(&key),
    }
    .map_err(gen_err(what))?;
    Ok(Generated { cert_pem: cert.pem(), params, key })
}

/// Validity and a random positive 128-bit serial; `not_after` is clipped to `cap`.
fn base_params(
    what: &'static str,
    now: OffsetDateTime,
    cap: Option<OffsetDateTime>,
) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    params.not_before = now - BACKDATE;
    let not_after = now + VALIDITY;
    params.not_after = cap.map_or(not_after, |cap| cap.min(not_after));
    let mut serial = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| TlsError::Random { what })?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

fn dn(org: &str, common_name: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    if let Some(cn) = common_name {
        dn.push(DnType::CommonName, cn);
    }
    dn
}

fn new_key(what: &'static str) -> Result<KeyPair, TlsError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err(what))
}

pub(crate) fn gen_err(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |source| TlsError::Generate { what, source }
}
