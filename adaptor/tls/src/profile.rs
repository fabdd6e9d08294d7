//! The TLS profile (minimum version, TLS 1.2 cipher suites) set by `TLS_MIN_VERSION` /
//! `TLS_CIPHER_SUITES` and baked into apf.json, and its translation into a rustls provider.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::{cipher_suite, default_provider};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use crate::TlsError;

/// A minimum protocol version, spelled upstream's way (`VersionTLS12`, `VersionTLS13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// The name upstream uses in flags, env vars and apf.json.
    pub fn as_upstream_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "VersionTLS12",
            TlsVersion::Tls13 => "VersionTLS13",
        }
    }
}

impl FromStr for TlsVersion {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "VersionTLS12" => Ok(TlsVersion::Tls12),
            "VersionTLS13" => Ok(TlsVersion::Tls13),
            _ => Err(TlsError::UnknownVersion { name: s.to_owned() }),
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_upstream_str())
    }
}

/// Minimum version and cipher suites, applied alike to the client and the server side.
///
/// `cipher_suites` holds IANA names. They restrict TLS 1.2 only: the TLS 1.3 suites are always
/// on (as in Go's crypto/tls), so TLS 1.3 names are accepted and change nothing. As upstream,
/// naming suites together with a TLS 1.3 minimum is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsProfile {
    pub min_version: Option<TlsVersion>,
    pub cipher_suites: Vec<String>,
}

impl TlsProfile {
    /// Checks the profile the way configuration building will, so start-up can fail early.
    pub fn validate(&self) -> Result<(), TlsError> {
        self.resolve().map(drop)
    }

    /// The ring provider restricted to this profile, and the protocol versions to enable.
    pub(crate) fn resolve(&self) -> Result<Resolved, TlsError> {
        let tls13_only = self.min_version == Some(TlsVersion::Tls13);
        if tls13_only && !self.cipher_suites.is_empty() {
            return Err(TlsError::CipherSuitesWithTls13);
        }
        let mut provider = default_provider();
        if !self.cipher_suites.is_empty() {
            let mut wanted = Vec::with_capacity(self.cipher_suites.len());
            for name in &self.cipher_suites {
                let suite = suite_by_name(name).ok_or_else(|| TlsError::UnknownCipherSuite {
                    name: name.clone(),
                    supported: supported_cipher_suites().join(", "),
                })?;
                wanted.push(suite.suite());
            }
            provider
                .cipher_suites
                .retain(|s| s.version() == &rustls::version::TLS13 || wanted.contains(&s.suite()));
        }
        let versions = if tls13_only { TLS13_ONLY } else { TLS12_AND_13 };
        Ok(Resolved { provider: Arc::new(provider), versions })
    }
}

/// A profile turned into what rustls config builders take.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) versions: &'static [&'static SupportedProtocolVersion],
}

static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
static TLS12_AND_13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// IANA name to suite, for every suite of the ring provider (TLS 1.3 first).
const SUITES: &[(&str, SupportedCipherSuite)] = &[
    ("TLS_AES_128_GCM_SHA256", cipher_suite::TLS13_AES_128_GCM_SHA256),
    ("TLS_AES_256_GCM_SHA384", cipher_suite::TLS13_AES_256_GCM_SHA384),
    ("TLS_CHACHA20_POLY1305_SHA256", cipher_suite::TLS13_CHACHA20_POLY1305_SHA256),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    SUITES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The IANA names accepted in [`TlsProfile::cipher_suites`].
pub fn supported_cipher_suites() -> Vec<&'static str> {
    SUITES.iter().map(|(n, _)| *n).collect()
}

/// The IANA name of a negotiated suite (e.g. for logs), if it is one of ours.
pub fn cipher_suite_name(suite: rustls::CipherSuite) -> Option<&'static str> {
    SUITES.iter().find(|(_, s)| s.suite() == suite).map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ring_suite_has_an_iana_name() {
        for suite in default_provider().cipher_suites {
            assert!(
                cipher_suite_name(suite.suite()).is_some(),
                "{:?} has no IANA name",
                suite.suite()
            );
        }
        assert_eq!(SUITES.len(), default_provider().cipher_suites.len());
    }

    #[test]
    fn versions_round_trip_and_old_ones_are_rejected() {
        for v in [TlsVersion::Tls12, TlsVersion::Tls13] {
            assert_eq!(v.as_upstream_str().parse::<TlsVersion>().unwrap(), v);
        }
        for bad in ["VersionTLS10", "VersionTLS11", "TLS1.3", ""] {
            let err = bad.parse::<TlsVersion>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn suites_restrict_tls12_only() {
        let profile = TlsProfile {
            min_version: None,
            cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into()],
        };
        let resolved = profile.resolve().unwrap();
        let names: Vec<_> = resolved
            .provider
            .cipher_suites
            .iter()
            .map(|s| cipher_suite_name(s.suite()).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "TLS_AES_256_GCM_SHA384",
                "TLS_AES_128_GCM_SHA256",
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            ]
        );
        assert_eq!(resolved.versions.len(), 2);
    }

    #[test]
    fn tls13_minimum_enables_only_tls13_and_refuses_suites() {
        let profile = TlsProfile { min_version: Some(TlsVersion::Tls13), cipher_suites: vec![] };
        let resolved = profile.resolve().unwrap();
        assert_eq!(resolved.versions, [&rustls::version::TLS13]);

        let profile = TlsProfile {
            min_version: Some(TlsVersion::Tls13),
            cipher_suites: vec!["TLS_AES_128_GCM_SHA256".into()],
        };
        assert!(matches!(profile.validate(), Err(TlsError::CipherSuitesWithTls13)));
    }
}
