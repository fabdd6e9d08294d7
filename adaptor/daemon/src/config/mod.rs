//! The daemon's configuration as plain data: every common option of upstream (caa-facts §1.3,
//! same meanings and defaults) plus ours (state dir, plugin lookup, logging, socket group).
//! No clap types here; [`crate::cli`] fills [`RawOptions`] and [`Config::from_raw`] turns them
//! into a [`Config`], reporting every invalid value at once, each naming its flag and env var.
//!
//! - [`options`]: the option table (flag, env var, default) and [`RawOptions`];
//! - [`values`]: parsers for each value kind (Go durations, strict booleans, ports, CIDRs, …);
//! - [`resolve`]: [`Config::from_raw`] and [`ConfigError`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod options;
pub mod resolve;
pub mod values;

pub use options::{OPTIONS, OptionSpec, RawOptions, RawValue, Source};
pub use resolve::{ConfigError, Problem};

use crate::provider::PluginName;

/// Default values, shared by [`Config::defaults`] and the CLI's help text.
pub mod defaults {
    use std::time::Duration;

    /// Hypervisor ttrpc socket.
    pub const SOCKET: &str = "/run/peerpod/hypervisor.sock";
    /// Base dir of per-sandbox dirs.
    pub const PODS_DIR: &str = "/run/peerpod/pods";
    /// Durable sandbox records.
    pub const STATE_DIR: &str = "/run/peerpod/state";
    /// Plugin directory searched after the adaptor binary's own directory.
    pub const PLUGIN_DIR: &str = "/usr/libexec/cloud-api-adaptor";
    /// APF port in the pod VM.
    pub const FORWARDER_PORT: u16 = 15150;
    /// Max time to reach the APF (`5m`).
    pub const PROXY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    /// VXLAN UDP port.
    pub const VXLAN_PORT: u16 = 4789;
    /// Base VNI.
    pub const VXLAN_MIN_ID: u32 = 555_000;
    /// Advertised `kata.peerpods.io/vm` capacity.
    pub const PEERPODS_LIMIT_PER_NODE: u32 = 10;
    /// Startup probe and metrics port.
    pub const PROBE_PORT: u16 = 8000;
    /// RuntimeClass the startup probe looks for.
    pub const RUNTIMECLASS_NAME: &str = "kata-remote";
    /// Log filter (tracing `EnvFilter` syntax).
    pub const LOG_FILTER: &str = "info";
}

/// Everything the daemon needs to start, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The provider named on the command line.
    pub provider: PluginName,
    /// Unix socket of the hypervisor ttrpc service.
    pub socket: PathBuf,
    /// Group given to the socket (mode 0660 then; 0600 without).
    pub socket_group: Option<u32>,
    /// Base dir for `<pods-dir>/<sid>/`.
    pub pods_dir: PathBuf,
    /// Durable sandbox records.
    pub state_dir: PathBuf,
    /// Accepted for compatibility; unused (as upstream).
    pub pause_image: Option<String>,
    /// APF port in the pod VM.
    pub forwarder_port: u16,
    /// Max time to establish the proxy → APF connection.
    pub proxy_timeout: Duration,
    /// Proxy ↔ APF transport security.
    pub tls: TlsConfig,
    /// Pod networking.
    pub network: NetworkConfig,
    /// Default initdata (gzip+base64 TOML) for pods without the annotation; decoded by the
    /// userdata module at startup.
    pub initdata: Option<String>,
    /// Run the plugin's `verifyConfig` at start and exit non-zero when it fails.
    pub cloud_config_verify: bool,
    /// `kata.peerpods.io/vm` capacity; `None` = don't advertise (a negative value upstream).
    pub peerpods_limit_per_node: Option<u32>,
    /// Add the scratch-space marker file to userdata.
    pub enable_scratch_space: bool,
    /// Startup probe and metrics port on 127.0.0.1 (0 = any free port).
    pub probe_port: u16,
    /// Kubernetes facts from the environment.
    pub kubernetes: KubernetesConfig,
    /// Where the provider plugin comes from and what it may see.
    pub plugin: PluginConfig,
    /// Logging.
    pub log: LogConfig,
}

/// TLS between the agent proxy and the APF.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// Plain TCP (`-disable-tls`).
    pub disabled: bool,
    /// CA bundle verifying the APF (disables the built-in CA service).
    pub ca_cert_file: Option<PathBuf>,
    /// Client certificate for mTLS (auto-generated when unset).
    pub cert_file: Option<PathBuf>,
    /// Client key for mTLS.
    pub cert_key: Option<PathBuf>,
    /// Skip server verification (testing).
    pub skip_verify: bool,
    /// Minimum TLS version; `None` = not set (TLS 1.2).
    pub min_version: Option<TlsVersion>,
    /// IANA cipher suite names (TLS 1.2 only).
    pub cipher_suites: Vec<String>,
}

impl TlsConfig {
    /// Whether a TLS profile was set (upstream warns that it is baked into new VMs only).
    pub fn has_profile(&self) -> bool {
        self.min_version.is_some() || !self.cipher_suites.is_empty()
    }
}

/// Minimum TLS version names, as upstream spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// `VersionTLS12`.
    Tls12,
    /// `VersionTLS13`.
    Tls13,
}

/// Pod network tunnel settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Tunnel kind.
    pub tunnel_type: TunnelType,
    /// VXLAN UDP destination port.
    pub vxlan_port: u16,
    /// Base VNI.
    pub vxlan_min_id: u32,
    /// Worker interface for tunnel traffic (default: the default route's).
    pub host_interface: Option<String>,
    /// Experimental multi-NIC external networking (refused: not supported yet).
    pub ext_network_via_podvm: bool,
    /// `-disable-pod-network`: no tunnel; pod VMs get an empty `pod-network`.
    pub disabled: bool,
    /// Experimental: CIDRs routed via the pod interface.
    pub pod_subnet_cidrs: Vec<Cidr>,
}

impl Default for NetworkConfig {
    fn default() -> NetworkConfig {
        NetworkConfig {
            tunnel_type: TunnelType::Vxlan,
            vxlan_port: defaults::VXLAN_PORT,
            vxlan_min_id: defaults::VXLAN_MIN_ID,
            host_interface: None,
            ext_network_via_podvm: false,
            disabled: false,
            pod_subnet_cidrs: Vec::new(),
        }
    }
}

/// Tunnel kinds (upstream registers only VXLAN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelType {
    /// `vxlan`.
    Vxlan,
}

/// An address prefix such as `10.244.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// Facts about the Kubernetes environment (env only upstream; flags are ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    /// `NODE_NAME`: presence means "running in Kubernetes".
    pub node_name: Option<String>,
    /// `POD_UID`: this adaptor pod's UID (node owner annotation).
    pub pod_uid: Option<String>,
    /// `RUNTIMECLASS_NAME` for the startup probe.
    pub runtime_class_name: String,
}

/// Provider plugin lookup and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// Directories searched for `caa-provider-<provider>`, in order.
    pub dirs: Vec<PathBuf>,
    /// Explicit plugin executable (wins over the search).
    pub path: Option<PathBuf>,
    /// Pinned SHA-256 (lowercase hex) of the plugin executable.
    pub sha256: Option<String>,
    /// Host env vars passed to the plugin besides the allowlist and its schema's names.
    pub pass_env: Vec<String>,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// `EnvFilter` directives.
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
    /// Upstream's Go `log` lines (`YYYY/MM/DD HH:MM:SS [adaptor/cloud] message`, UTC), which
    /// upstream's e2e suite parses; structured fields follow the message as `k=v`.
    Upstream,
}

impl Config {
    /// The configuration with every option at its default, for `provider`; `plugin_dirs` is the
    /// default search list (the adaptor binary's directory, then [`defaults::PLUGIN_DIR`]).
    pub fn defaults(provider: PluginName, plugin_dirs: Vec<PathBuf>) -> Config {
        Config {
            provider,
            socket: defaults::SOCKET.into(),
            socket_group: None,
            pods_dir: defaults::PODS_DIR.into(),
            state_dir: defaults::STATE_DIR.into(),
            pause_image: None,
            forwarder_port: defaults::FORWARDER_PORT,
            proxy_timeout: defaults::PROXY_TIMEOUT,
            tls: TlsConfig::default(),
            network: NetworkConfig::default(),
            initdata: None,
            cloud_config_verify: false,
            peerpods_limit_per_node: Some(defaults::PEERPODS_LIMIT_PER_NODE),
            enable_scratch_space: false,
            probe_port: defaults::PROBE_PORT,
            kubernetes: KubernetesConfig {
                node_name: None,
                pod_uid: None,
                runtime_class_name: defaults::RUNTIMECLASS_NAME.to_owned(),
            },
            plugin: PluginConfig {
                dirs: plugin_dirs,
                path: None,
                sha256: None,
                pass_env: Vec::new(),
            },
            log: LogConfig { format: LogFormat::Text, filter: defaults::LOG_FILTER.to_owned() },
        }
    }
}

#[cfg(test)]
mod tests;
