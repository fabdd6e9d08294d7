//! The adaptor's TLS setup for the agent path (caa-facts §4.3), built once at start-up from
//! [`TlsConfig`]: auto mode (our CA issues each VM a server certificate named after the instance
//! and the forwarder trusts our client certificate), a custom CA from files, or plain TCP.

use std::path::Path;

use caa_tls::{CaService, ClientTls, PemIdentity, ServerRoots, TlsProfile, TlsVersion};

use crate::config::{self, TlsConfig};

/// What a pod VM's apf.json gets for TLS.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct VmTls {
    /// `tls-server-cert`.
    pub server_cert: String,
    /// `tls-server-key` (secret).
    pub server_key: String,
    /// `tls-client-ca`.
    pub client_ca: String,
    /// `tls-min-version`.
    pub min_version: String,
    /// `tls-cipher-suites`.
    pub cipher_suites: Vec<String>,
}

impl std::fmt::Debug for VmTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmTls")
            .field("has_server_key", &!self.server_key.is_empty())
            .field("min_version", &self.min_version)
            .finish_non_exhaustive()
    }
}

/// How the proxy secures its connection to each forwarder.
#[derive(Debug, Clone)]
pub enum AgentTls {
    /// Plain TCP (`-disable-tls`).
    Disabled,
    /// TLS; `ca` is set in auto mode (it issues VM certificates).
    Enabled {
        /// The client side configuration.
        client: ClientTls,
        /// The CA service (auto mode only).
        ca: Option<std::sync::Arc<CaService>>,
        /// Server name every VM presents in custom-CA mode; `None` = the instance name.
        fixed_server_name: Option<String>,
        /// The profile baked into new VMs.
        profile: TlsProfile,
    },
}

impl AgentTls {
    /// From the daemon's options; the CA is kept under `<state-dir>/tls` so VMs made before a
    /// restart still trust the adaptor after it.
    pub fn from_config(cfg: &TlsConfig, state_dir: &Path) -> Result<AgentTls, caa_tls::TlsError> {
        if cfg.disabled {
            return Ok(AgentTls::Disabled);
        }
        let profile = TlsProfile {
            min_version: cfg.min_version.map(|v| match v {
                config::TlsVersion::Tls12 => TlsVersion::Tls12,
                config::TlsVersion::Tls13 => TlsVersion::Tls13,
            }),
            cipher_suites: cfg.cipher_suites.clone(),
        };
        profile.validate()?;
        let client_identity =
            |fallback: Option<&PemIdentity>| -> Result<PemIdentity, caa_tls::TlsError> {
                match (&cfg.cert_file, &cfg.cert_key, fallback) {
                    (Some(cert), Some(key), _) => caa_tls::load_identity(cert, key),
                    (_, _, Some(id)) => Ok(id.clone()),
                    _ => caa_tls::self_signed_client(),
                }
            };
        if let Some(ca_file) = &cfg.ca_cert_file {
            let pem = std::fs::read_to_string(ca_file)
                .map_err(|source| caa_tls::TlsError::Read { path: ca_file.clone(), source })?;
            let roots =
                if cfg.skip_verify { ServerRoots::SkipVerify } else { ServerRoots::Ca(pem) };
            let client = ClientTls::new(roots, &client_identity(None)?, &profile)?;
            return Ok(AgentTls::Enabled {
                client,
                ca: None,
                fixed_server_name: Some(caa_tls::CUSTOM_CA_SERVER_NAME.to_owned()),
                profile,
            });
        }
        let ca = CaService::load_or_create(&state_dir.join("tls"))?;
        let identity = client_identity(Some(ca.client_identity()))?;
        let roots = if cfg.skip_verify { ServerRoots::SkipVerify } else { ca.server_roots() };
        let client = ClientTls::new(roots, &identity, &profile)?;
        Ok(AgentTls::Enabled {
            client,
            ca: Some(std::sync::Arc::new(ca)),
            fixed_server_name: None,
            profile,
        })
    }

    /// The TLS part of a new VM's apf.json.
    pub fn vm_tls(&self, instance_name: &str) -> Result<VmTls, caa_tls::TlsError> {
        let AgentTls::Enabled { ca, profile, .. } = self else { return Ok(VmTls::default()) };
        let mut vm = VmTls {
            min_version: profile
                .min_version
                .map(|v| v.as_upstream_str().to_owned())
                .unwrap_or_default(),
            cipher_suites: profile.cipher_suites.clone(),
            ..VmTls::default()
        };
        if let Some(ca) = ca {
            let server = ca.issue_server(instance_name)?;
            vm.server_cert = server.cert_pem.clone();
            vm.server_key = server.key_pem().to_owned();
            vm.client_ca = ca.client_ca_pem_for_forwarder().to_owned();
        }
        Ok(vm)
    }
}
