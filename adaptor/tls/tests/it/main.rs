//! Integration tests of caa-tls: real TLS handshakes between the client and server
//! configurations over in-memory pipes, and the CA service on a real directory.

mod ca_service;
mod handshake;
mod identity;
mod interop;
mod profile;

use std::io;
use std::sync::Arc;

use caa_tls::rustls::pki_types::CertificateDer;
use caa_tls::rustls::pki_types::pem::PemObject;
use caa_tls::rustls::{self, CertificateError, CipherSuite, ProtocolVersion, ServerConfig};
use caa_tls::tokio_rustls::{TlsAcceptor, TlsConnector};
use caa_tls::{ClientTls, PemIdentity, TlsProfile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server saw of a successful handshake.
#[derive(Debug)]
struct Negotiated {
    version: ProtocolVersion,
    suite: CipherSuite,
    /// Number of client certificates presented.
    client_certs: usize,
}

/// Results of both ends of one connection.
#[derive(Debug)]
struct Outcome {
    client: io::Result<()>,
    server: io::Result<Negotiated>,
}

impl Outcome {
    #[track_caller]
    fn assert_ok(self) -> Negotiated {
        self.client.expect("client side failed");
        self.server.expect("server side failed")
    }
}

/// One connection over an in-memory pipe: handshake, then "ping" from the client and "pong"
/// back. Either side failing closes its end, so the other side fails too (or finishes).
async fn exchange(connector: TlsConnector, name: &str, server: Arc<ServerConfig>) -> Outcome {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server_name = caa_tls::server_name(name).expect("valid server name");
    let acceptor = TlsAcceptor::from(server);
    let server = async move {
        let mut tls = acceptor.accept(server_io).await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        tls.write_all(b"pong").await?;
        tls.flush().await?;
        let (_, conn) = tls.get_ref();
        Ok(Negotiated {
            version: conn.protocol_version().expect("version negotiated"),
            suite: conn.negotiated_cipher_suite().expect("suite").suite(),
            client_certs: conn.peer_certificates().map_or(0, <[_]>::len),
        })
    };
    let client = async move {
        let mut tls = connector.connect(server_name, client_io).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"pong");
        Ok(())
    };
    let (client, server) = tokio::join!(client, server);
    Outcome { client, server }
}

/// The rustls error inside an I/O error from tokio-rustls, if any.
fn tls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The certificate error a side reported locally (not an alert from the peer).
#[track_caller]
fn cert_error<T: std::fmt::Debug>(result: &io::Result<T>) -> &CertificateError {
    let err = result.as_ref().expect_err("expected a failure");
    match tls_error(err) {
        Some(rustls::Error::InvalidCertificate(e)) => e,
        other => panic!("expected a certificate error, got {other:?} ({err})"),
    }
}

fn client(ca: &caa_tls::CaService) -> ClientTls {
    ClientTls::new(ca.server_roots(), ca.client_identity(), &TlsProfile::default()).unwrap()
}

/// A rustls client config built in the test, bypassing `ClientTls` (for peers that don't follow
/// our rules: no client certificate, TLS 1.2 only, ...).
fn raw_client(
    roots_pem: &str,
    identity: Option<&PemIdentity>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key_pem().as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// A TLS 1.2-only server config built in the test, optionally limited to the named suites.
fn raw_tls12_server(identity: &PemIdentity, suites: &[&str]) -> Arc<ServerConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            caa_tls::cipher_suite_name(s.suite()).is_some_and(|name| suites.contains(&name))
        });
    }
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap()],
            rustls::pki_types::PrivateKeyDer::from_pem_slice(identity.key_pem().as_bytes())
                .unwrap(),
        )
        .unwrap();
    Arc::new(config)
}
