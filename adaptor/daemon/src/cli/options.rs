//! The clap definition of the adaptor's options (upstream's flag names and env vars), and its
//! translation into [`RawOptions`]. Values stay text here: [`crate::config`] parses them so that
//! every bad value is reported at once. Booleans take Go's forms: `-flag`, `-flag=true|false`.
//! No clap defaults: an absent option takes the default from [`crate::config::defaults`].

use clap::{ArgMatches, Parser};

use crate::cli::source_of;
use crate::config::{RawOptions, Source};

/// The adaptor's own options (provider options go to the plugin through its env vars).
#[derive(Debug, Parser)]
#[command(
    name = "cloud-api-adaptor",
    about = "Kata remote hypervisor service for peer pods, with out-of-process provider plugins",
    override_usage = "cloud-api-adaptor <provider> [options]",
    disable_version_flag = true,
    after_help = "Single-dash forms (-pods-dir x, -tls-skip-verify=false) work as upstream.\n\
                  A flag wins over its environment variable; an empty variable counts as unset.\n\
                  Provider options are read by the plugin from their environment variables."
)]
pub(crate) struct Options {
    /// Unix socket of the remote hypervisor ttrpc service [default: /run/peerpod/hypervisor.sock]
    #[arg(id = "socket", long = "socket", env = "REMOTE_HYPERVISOR_ENDPOINT", value_name = "PATH")]
    socket: Option<String>,
    /// Base directory for per-sandbox directories [default: /run/peerpod/pods]
    #[arg(id = "pods-dir", long = "pods-dir", env = "PODS_DIR", value_name = "DIR")]
    pods_dir: Option<String>,
    /// Accepted for compatibility; not used
    #[arg(id = "pause-image", long = "pause-image", env = "PAUSE_IMAGE", value_name = "IMAGE")]
    pause_image: Option<String>,
    /// TCP port of agent-protocol-forwarder in the pod VM [default: 15150]
    #[arg(
        id = "forwarder-port",
        long = "forwarder-port",
        env = "FORWARDER_PORT",
        value_name = "PORT"
    )]
    forwarder_port: Option<String>,
    /// CA bundle verifying the pod VM's certificate (disables the built-in CA)
    #[arg(id = "ca-cert-file", long = "ca-cert-file", env = "CACERT_FILE", value_name = "FILE")]
    ca_cert_file: Option<String>,
    /// Client certificate for mTLS (auto-generated when unset)
    #[arg(id = "cert-file", long = "cert-file", env = "CERT_FILE", value_name = "FILE")]
    cert_file: Option<String>,
    /// Client key for mTLS
    #[arg(id = "cert-key", long = "cert-key", env = "CERT_KEY", value_name = "FILE")]
    cert_key: Option<String>,
    /// Skip verification of the pod VM's certificate (testing only)
    #[arg(id = "tls-skip-verify", long = "tls-skip-verify", env = "TLS_SKIP_VERIFY", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    tls_skip_verify: Option<String>,
    /// Minimum TLS version: VersionTLS12 or VersionTLS13 [default: VersionTLS12]
    #[arg(
        id = "tls-min-version",
        long = "tls-min-version",
        env = "TLS_MIN_VERSION",
        value_name = "VERSION"
    )]
    tls_min_version: Option<String>,
    /// Comma-separated IANA cipher suite names (TLS 1.2 only)
    #[arg(
        id = "tls-cipher-suites",
        long = "tls-cipher-suites",
        env = "TLS_CIPHER_SUITES",
        value_name = "LIST"
    )]
    tls_cipher_suites: Option<String>,
    /// Longest wait for the connection to the pod VM, a Go duration such as 5m [default: 5m]
    #[arg(
        id = "proxy-timeout",
        long = "proxy-timeout",
        env = "PROXY_TIMEOUT",
        value_name = "DURATION"
    )]
    proxy_timeout: Option<String>,
    /// Pod network tunnel type [default: vxlan]
    #[arg(id = "tunnel-type", long = "tunnel-type", env = "TUNNEL_TYPE", value_name = "TYPE")]
    tunnel_type: Option<String>,
    /// VXLAN UDP port [default: 4789]
    #[arg(id = "vxlan-port", long = "vxlan-port", env = "VXLAN_PORT", value_name = "PORT")]
    vxlan_port: Option<String>,
    /// Default initdata (gzip+base64 TOML) for pods without the annotation
    #[arg(
        id = "initdata",
        long = "initdata",
        env = "INITDATA",
        value_name = "DATA",
        hide_env_values = true
    )]
    initdata: Option<String>,
    /// Run the provider's configuration check at startup and exit if it fails
    #[arg(id = "cloud-config-verify", long = "cloud-config-verify", env = "CLOUD_CONFIG_VERIFY", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    cloud_config_verify: Option<String>,
    /// Peer pods per node advertised as kata.peerpods.io/vm; negative = don't advertise [default: 10]
    #[arg(
        id = "peerpods-limit-per-node",
        long = "peerpods-limit-per-node",
        env = "PEERPODS_LIMIT_PER_NODE",
        value_name = "N",
        allow_hyphen_values = true
    )]
    peerpods_limit_per_node: Option<String>,
    /// Add the scratch-space marker to the pod VM's userdata
    #[arg(id = "enable-scratch-space", long = "enable-scratch-space", env = "ENABLE_SCRATCH_SPACE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    enable_scratch_space: Option<String>,
    /// Experimental: external networking through the pod VM
    #[arg(id = "ext-network-via-podvm", long = "ext-network-via-podvm", env = "EXTERNAL_NETWORK_VIA_PODVM", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    ext_network_via_podvm: Option<String>,
    /// Experimental: comma-separated CIDRs routed via the pod interface
    #[arg(
        id = "pod-subnet-cidrs",
        long = "pod-subnet-cidrs",
        env = "POD_SUBNET_CIDRS",
        value_name = "LIST"
    )]
    pod_subnet_cidrs: Option<String>,
    /// Plain TCP between the adaptor and the pod VMs
    #[arg(id = "disable-tls", long = "disable-tls", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    disable_tls: Option<String>,
    /// Worker interface for tunnel traffic [default: the default route's]
    #[arg(id = "host-interface", long = "host-interface", value_name = "NAME")]
    host_interface: Option<String>,
    /// Base VXLAN id [default: 555000]
    #[arg(id = "vxlan-min-id", long = "vxlan-min-id", value_name = "VNI")]
    vxlan_min_id: Option<String>,
    /// Startup probe and metrics port on 127.0.0.1; 0 = any free port [default: 8000]
    #[arg(id = "probe-port", long = "probe-port", env = "PROBE_PORT", value_name = "PORT")]
    probe_port: Option<String>,
    /// This node's name (set by the DaemonSet; presence means running in Kubernetes)
    #[arg(id = "node-name", long = "node-name", env = "NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,
    /// This adaptor pod's UID (set by the DaemonSet)
    #[arg(id = "pod-uid", long = "pod-uid", env = "POD_UID", value_name = "UID")]
    pod_uid: Option<String>,
    /// RuntimeClass of peer pods, for the startup probe [default: kata-remote]
    #[arg(
        id = "runtimeclass-name",
        long = "runtimeclass-name",
        env = "RUNTIMECLASS_NAME",
        value_name = "NAME"
    )]
    runtimeclass_name: Option<String>,
    /// Accepted for compatibility (a plugin path is honoured without it)
    #[arg(id = "enable-cloud-provider-external-plugin", long = "enable-cloud-provider-external-plugin", env = "ENABLE_CLOUD_PROVIDER_EXTERNAL_PLUGIN", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", hide = true)]
    enable_external_plugin: Option<String>,
    /// Provider plugin executable (wins over the plugin directory search)
    #[arg(
        id = "plugin-path",
        long = "plugin-path",
        env = "CLOUD_PROVIDER_EXTERNAL_PLUGIN_PATH",
        value_name = "FILE"
    )]
    plugin_path: Option<String>,
    /// Pinned SHA-256 of the provider plugin executable
    #[arg(
        id = "plugin-sha256",
        long = "plugin-sha256",
        env = "CLOUD_PROVIDER_EXTERNAL_PLUGIN_HASH",
        value_name = "HEX"
    )]
    plugin_sha256: Option<String>,
    /// Durable sandbox records; point it at persistent storage to survive reboots [default: /run/peerpod/state]
    #[arg(id = "state-dir", long = "state-dir", env = "CAA_STATE_DIR", value_name = "DIR")]
    state_dir: Option<String>,
    /// No VXLAN tunnel to the pod VMs (for setups without a pod network namespace)
    #[arg(id = "disable-pod-network", long = "disable-pod-network", env = "CAA_DISABLE_POD_NETWORK", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    disable_pod_network: Option<String>,
    /// Group (name or gid) allowed to use the hypervisor socket (mode 0660; else 0600)
    #[arg(
        id = "socket-group",
        long = "socket-group",
        env = "CAA_SOCKET_GROUP",
        value_name = "GROUP"
    )]
    socket_group: Option<String>,
    /// Colon-separated directories searched for caa-provider-<provider> [default: this binary's directory:/usr/libexec/cloud-api-adaptor]
    #[arg(id = "plugin-dir", long = "plugin-dir", env = "CAA_PLUGIN_DIR", value_name = "DIRS")]
    plugin_dir: Option<String>,
    /// Comma-separated extra environment variables passed to the plugin
    #[arg(
        id = "plugin-pass-env",
        long = "plugin-pass-env",
        env = "CAA_PLUGIN_PASS_ENV",
        value_name = "NAMES"
    )]
    plugin_pass_env: Option<String>,
    /// Log format: text, json or upstream (Go log lines as upstream writes them) [default: text]
    #[arg(id = "log-format", long = "log-format", env = "CAA_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Log filter, e.g. info or caa_adaptor=debug,caa_plugin_host=trace [default: info]
    #[arg(id = "log-level", long = "log-level", env = "CAA_LOG", value_name = "FILTER")]
    log_level: Option<String>,
}

impl Options {
    /// The given values with their sources, keyed by flag name.
    pub(crate) fn into_raw(self, matches: &ArgMatches) -> RawOptions {
        let fields = [
            ("socket", self.socket),
            ("pods-dir", self.pods_dir),
            ("pause-image", self.pause_image),
            ("forwarder-port", self.forwarder_port),
            ("ca-cert-file", self.ca_cert_file),
            ("cert-file", self.cert_file),
            ("cert-key", self.cert_key),
            ("tls-skip-verify", self.tls_skip_verify),
            ("tls-min-version", self.tls_min_version),
            ("tls-cipher-suites", self.tls_cipher_suites),
            ("proxy-timeout", self.proxy_timeout),
            ("tunnel-type", self.tunnel_type),
            ("vxlan-port", self.vxlan_port),
            ("initdata", self.initdata),
            ("cloud-config-verify", self.cloud_config_verify),
            ("peerpods-limit-per-node", self.peerpods_limit_per_node),
            ("enable-scratch-space", self.enable_scratch_space),
            ("ext-network-via-podvm", self.ext_network_via_podvm),
            ("pod-subnet-cidrs", self.pod_subnet_cidrs),
            ("disable-tls", self.disable_tls),
            ("host-interface", self.host_interface),
            ("vxlan-min-id", self.vxlan_min_id),
            ("probe-port", self.probe_port),
            ("node-name", self.node_name),
            ("pod-uid", self.pod_uid),
            ("runtimeclass-name", self.runtimeclass_name),
            ("enable-cloud-provider-external-plugin", self.enable_external_plugin),
            ("plugin-path", self.plugin_path),
            ("plugin-sha256", self.plugin_sha256),
            ("state-dir", self.state_dir),
            ("disable-pod-network", self.disable_pod_network),
            ("socket-group", self.socket_group),
            ("plugin-dir", self.plugin_dir),
            ("plugin-pass-env", self.plugin_pass_env),
            ("log-format", self.log_format),
            ("log-level", self.log_level),
        ];
        let mut raw = RawOptions::new();
        for (flag, value) in fields {
            let Some(value) = value else { continue };
            let source = source_of(matches, flag);
            // Upstream reads an env var only when it is set and non-empty (caa-facts §1.2).
            if source == Source::Env && value.is_empty() {
                continue;
            }
            // Every flag above is in the option table (unit test `clap_matches_the_table`).
            let _ = raw.set(flag, value, source);
        }
        raw
    }
}
