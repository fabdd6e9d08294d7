//! The adaptor's process-wide CA and client identity (auto TLS mode), kept on disk so that pod
//! VMs created before an adaptor restart still trust the restarted adaptor and are trusted by it.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use rcgen::{Issuer, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::UnixTime;
use rustls::server::WebPkiClientVerifier;
use time::{Duration, OffsetDateTime};

use crate::certs::{self, PemIdentity};
use crate::{ServerRoots, TlsError};

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const CLIENT_CERT: &str = "client.crt";
const CLIENT_KEY: &str = "client.key";

/// Stored material expiring sooner than this is replaced at start-up.
const RENEW_BEFORE: Duration = Duration::days(30);

/// Issues one server certificate per pod VM and holds the adaptor's client identity, both
/// under one CA. The forwarder in each VM trusts that CA for client certificates
/// ([`CaService::client_ca_pem_for_forwarder`]); the adaptor trusts it for server certificates
/// ([`CaService::server_roots`]).
pub struct CaService {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_not_after: OffsetDateTime,
    client: PemIdentity,
}

impl CaService {
    /// Loads the CA and client identity from `dir`, or creates them there.
    ///
    /// `dir` is created (and kept) mode 0700; `ca.crt`, `ca.key`, `client.crt` and `client.key`
    /// are written mode 0600, each atomically. A CA that is missing, unreadable as a CA with its
    /// key, or expiring within 30 days is replaced (and the client identity with it); a client
    /// identity that is missing, not signed by the CA, or expiring is reissued under the kept CA.
    pub fn load_or_create(dir: &Path) -> Result<CaService, TlsError> {
        ensure_private_dir(dir)?;
        let now = OffsetDateTime::now_utc();
        let (ca, stored_client) = match load_ca(dir, now)? {
            Ok(ca) => {
                let client = load_client(dir, &ca, now)?;
                (ca, client)
            }
            Err(stale) => {
                stale.log(
                    dir,
                    "CA and client identity",
                    "pod VMs created before no longer accept this adaptor",
                );
                let ca = certs::generate_ca(now)?;
                write_private(&dir.join(CA_KEY), &ca.key.serialize_pem())?;
                write_private(&dir.join(CA_CERT), &ca.cert_pem)?;
                let ca = LoadedCa {
                    ca_not_after: ca.params.not_after,
                    issuer: Issuer::new(ca.params, ca.key),
                    ca_pem: ca.cert_pem,
                };
                (ca, Err(Stale::Replaced))
            }
        };
        let client = match stored_client {
            Ok(client) => client,
            Err(stale) => {
                stale.log(
                    dir,
                    "client identity",
                    "the CA is kept, so pod VMs created before still accept it",
                );
                let client =
                    certs::generate_client(Some((&ca.issuer, ca.ca_not_after)), now)?.identity();
                write_private(&dir.join(CLIENT_KEY), client.key_pem())?;
                write_private(&dir.join(CLIENT_CERT), &client.cert_pem)?;
                client
            }
        };
        Ok(CaService {
            issuer: ca.issuer,
            ca_pem: ca.ca_pem,
            ca_not_after: ca.ca_not_after,
            client,
        })
    }

    /// A CA and client identity that live only in memory (tests, throw-away setups).
    pub fn ephemeral() -> Result<CaService, TlsError> {
        let now = OffsetDateTime::now_utc();
        let ca = certs::generate_ca(now)?;
        let ca_not_after = ca.params.not_after;
        let issuer = Issuer::new(ca.params, ca.key);
        let client = certs::generate_client(Some((&issuer, ca_not_after)), now)?.identity();
        Ok(CaService { issuer, ca_pem: ca.cert_pem, ca_not_after, client })
    }

    /// A server identity for the forwarder of one pod VM, valid for `instance_name` (the name
    /// the adaptor then verifies); rejected unless it is a DNS name (see [`crate::server_name`]).
    pub fn issue_server(&self, instance_name: &str) -> Result<PemIdentity, TlsError> {
        let now = OffsetDateTime::now_utc();
        Ok(certs::generate_server(instance_name, &self.issuer, self.ca_not_after, now)?.identity())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The roots the adaptor verifies forwarder certificates with.
    pub fn server_roots(&self) -> ServerRoots {
        ServerRoots::Ca(self.ca_pem.clone())
    }

    /// The adaptor's client certificate and key.
    pub fn client_identity(&self) -> &PemIdentity {
        &self.client
    }

    /// What goes into apf.json `tls-client-ca`: the CA, so the forwarder accepts exactly the
    /// client certificates this CA issued with clientAuth (server certificates lack it).
    pub fn client_ca_pem_for_forwarder(&self) -> &str {
        &self.ca_pem
    }
}

impl fmt::Debug for CaService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaService")
            .field("ca_not_after", &self.ca_not_after)
            .finish_non_exhaustive()
    }
}

struct LoadedCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_not_after: OffsetDateTime,
}

/// Why stored material is not reused.
enum Stale {
    /// None of its files exist (first start).
    Missing,
    Unusable(String),
    /// Issued by a CA that was just replaced (already logged).
    Replaced,
}

impl Stale {
    /// One of the pair is absent: `Missing` if both are.
    fn absent(dir: &Path, cert: &str, key: &str) -> Stale {
        if dir.join(cert).exists() || dir.join(key).exists() {
            Stale::Unusable(format!("{cert} or {key} is missing"))
        } else {
            Stale::Missing
        }
    }

    fn log(&self, dir: &Path, what: &str, consequence: &str) {
        match self {
            Stale::Missing => {
                tracing::info!(dir = %dir.display(), "creating the adaptor TLS {what}");
            }
            Stale::Unusable(reason) => tracing::warn!(
                dir = %dir.display(),
                %reason,
                "replacing the adaptor TLS {what}; {consequence}"
            ),
            Stale::Replaced => {}
        }
    }
}

type Loaded<T> = Result<Result<T, Stale>, TlsError>;

fn load_ca(dir: &Path, now: OffsetDateTime) -> Loaded<LoadedCa> {
    let (Some(ca_pem), Some(key_pem)) = (read_opt(dir, CA_CERT)?, read_opt(dir, CA_KEY)?) else {
        return Ok(Err(Stale::absent(dir, CA_CERT, CA_KEY)));
    };
    let unusable = |reason: &str| Ok(Err(Stale::Unusable(reason.to_owned())));
    let Ok(der) = certs::parse_certs(&ca_pem, CA_CERT).map(|mut c| c.swap_remove(0)) else {
        return unusable("ca.crt holds no certificate");
    };
    let Ok(key) = KeyPair::from_pem(&key_pem) else {
        return unusable("ca.key holds no PKCS#8 private key");
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return unusable("ca.crt is not a valid X.509 certificate");
    };
    if !cert.tbs_certificate.is_ca() {
        return unusable("ca.crt is not a CA certificate");
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return unusable("ca.key does not belong to ca.crt");
    }
    let ca_not_after = cert.validity().not_after.to_datetime();
    if ca_not_after < now + RENEW_BEFORE {
        return Ok(Err(Stale::Unusable(format!("ca.crt expires at {ca_not_after}"))));
    }
    let Ok(issuer) = Issuer::from_ca_cert_der(&der, key) else {
        return unusable("ca.crt cannot be used to issue certificates");
    };
    Ok(Ok(LoadedCa { issuer, ca_pem, ca_not_after }))
}

fn load_client(dir: &Path, ca: &LoadedCa, now: OffsetDateTime) -> Loaded<PemIdentity> {
    let (Some(cert_pem), Some(key_pem)) = (read_opt(dir, CLIENT_CERT)?, read_opt(dir, CLIENT_KEY)?)
    else {
        return Ok(Err(Stale::absent(dir, CLIENT_CERT, CLIENT_KEY)));
    };
    let identity = PemIdentity::new(cert_pem, key_pem);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok((chain, _)) = identity.to_der(CLIENT_CERT, &provider) else {
        return Ok(Err(Stale::Unusable(
            "client.crt and client.key do not form a valid identity".to_owned(),
        )));
    };
    // The forwarder's view: chained to the CA, clientAuth, and still valid in 30 days.
    let mut roots = RootCertStore::empty();
    let ca_der = certs::parse_certs(&ca.ca_pem, CA_CERT)?;
    roots.add(ca_der[0].clone()).map_err(|source| TlsError::Certificate {
        origin: dir.join(CA_CERT).display().to_string(),
        source,
    })?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|source| TlsError::ClientVerifier { source })?;
    let then = (now + RENEW_BEFORE).unix_timestamp().max(0).unsigned_abs();
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(then));
    if let Err(err) = verifier.verify_client_cert(&chain[0], &chain[1..], at) {
        return Ok(Err(Stale::Unusable(format!(
            "client.crt is not accepted under ca.crt for the next 30 days: {err}"
        ))));
    }
    Ok(Ok(identity))
}

/// The file's text, or `None` when it does not exist.
fn read_opt(dir: &Path, name: &str) -> Result<Option<String>, TlsError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read { path, source }),
    }
}

fn ensure_private_dir(dir: &Path) -> Result<(), TlsError> {
    let err = |source| TlsError::CreateDir { path: dir.to_owned(), source };
    fs::create_dir_all(dir).map_err(err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Writes `contents` to `path` mode 0600 through a temporary file and a rename, then syncs the
/// directory, so a crash leaves either the old or the new file.
fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    caa_durable::write_private(path, contents.as_bytes())
        .map_err(|source| TlsError::Write { path: path.to_owned(), source })
}
