//! What the forwarder starts from: apf.json plus the command line's TLS overrides (file flags
//! win over apf.json, as upstream). Errors name the file or flag at fault, never key material.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use caa_tls::{PemIdentity, TlsProfile, TlsVersion};
use caa_userdata::ForwarderConfig;

use crate::cli::Options;

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// apf.json could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// apf.json is not valid.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// TLS is on but there is no server certificate.
    #[error(
        "TLS is enabled but there is no server certificate: apf.json has no tls-server-cert/tls-server-key and -cert-file/-cert-key are not given (use -disable-tls for plain TCP)"
    )]
    NoServerIdentity,
    /// Certificates or TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] caa_tls::TlsError),
}

/// The forwarder's resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// apf.json as loaded.
    pub apf: ForwarderConfig,
    /// `None` = plain TCP.
    pub tls: Option<Arc<caa_tls::rustls::ServerConfig>>,
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })
}

/// Loads apf.json and builds the TLS server configuration.
pub fn load(options: &Options) -> Result<Settings, ConfigError> {
    let text = read(&options.config)?;
    let apf = ForwarderConfig::from_json(text.as_bytes())
        .map_err(|e| ConfigError::Parse { path: options.config.clone(), message: e.to_string() })?;
    if options.tls_disabled() {
        return Ok(Settings { apf, tls: None });
    }
    let identity = match (&options.cert_file, &options.cert_key) {
        (Some(cert), Some(key)) => caa_tls::load_identity(cert, key)?,
        _ if !apf.tls_server_cert.is_empty() && !apf.tls_server_key.is_empty() => {
            PemIdentity::new(apf.tls_server_cert.clone(), apf.tls_server_key.clone())
        }
        _ => return Err(ConfigError::NoServerIdentity),
    };
    let client_ca = match &options.ca_cert_file {
        Some(path) => Some(read(path)?),
        None => Some(apf.tls_client_ca.clone()).filter(|s| !s.is_empty()),
    };
    // -tls-skip-verify: accept clients without checking their certificates.
    let client_ca = if options.skip_verify() { None } else { client_ca };
    let profile = TlsProfile {
        min_version: match apf.tls_min_version.as_str() {
            "" => None,
            v => Some(v.parse::<TlsVersion>()?),
        },
        cipher_suites: apf.tls_cipher_suites.clone(),
    };
    let tls = caa_tls::server_config(&identity, client_ca.as_deref(), &profile)?;
    Ok(Settings { apf, tls: Some(tls) })
}
