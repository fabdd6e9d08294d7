//! The option table: each option's flag name and env var, in one list that error messages, the
//! CLI and tests share; and [`RawOptions`], the unparsed values the CLI found, with where each
//! came from (flag or environment; precedence is resolved by the CLI, caa-facts §1.2).

use std::collections::BTreeMap;

/// One option: its flag (without dashes; upstream accepts `-x` and `--x`) and env var.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// Flag name, e.g. `pods-dir`.
    pub flag: &'static str,
    /// Env var, e.g. `PODS_DIR` (`None` for upstream's flag-only options).
    pub env: Option<&'static str>,
    /// The value is never echoed in errors or logs.
    pub secret: bool,
}

const fn opt(flag: &'static str, env: &'static str) -> OptionSpec {
    OptionSpec { flag, env: Some(env), secret: false }
}

const fn flag_only(flag: &'static str) -> OptionSpec {
    OptionSpec { flag, env: None, secret: false }
}

/// Every option, upstream's first (caa-facts §1.3, §1.4), then ours.
pub const OPTIONS: &[OptionSpec] = &[
    opt("socket", "REMOTE_HYPERVISOR_ENDPOINT"),
    opt("pods-dir", "PODS_DIR"),
    opt("pause-image", "PAUSE_IMAGE"),
    opt("forwarder-port", "FORWARDER_PORT"),
    opt("ca-cert-file", "CACERT_FILE"),
    opt("cert-file", "CERT_FILE"),
    opt("cert-key", "CERT_KEY"),
    opt("tls-skip-verify", "TLS_SKIP_VERIFY"),
    opt("tls-min-version", "TLS_MIN_VERSION"),
    opt("tls-cipher-suites", "TLS_CIPHER_SUITES"),
    opt("proxy-timeout", "PROXY_TIMEOUT"),
    opt("tunnel-type", "TUNNEL_TYPE"),
    opt("vxlan-port", "VXLAN_PORT"),
    OptionSpec { flag: "initdata", env: Some("INITDATA"), secret: true },
    opt("cloud-config-verify", "CLOUD_CONFIG_VERIFY"),
    opt("peerpods-limit-per-node", "PEERPODS_LIMIT_PER_NODE"),
    opt("enable-scratch-space", "ENABLE_SCRATCH_SPACE"),
    opt("ext-network-via-podvm", "EXTERNAL_NETWORK_VIA_PODVM"),
    opt("pod-subnet-cidrs", "POD_SUBNET_CIDRS"),
    flag_only("disable-tls"),
    flag_only("host-interface"),
    flag_only("vxlan-min-id"),
    // Env-only upstream; the flags are ours.
    opt("probe-port", "PROBE_PORT"),
    opt("node-name", "NODE_NAME"),
    opt("pod-uid", "POD_UID"),
    opt("runtimeclass-name", "RUNTIMECLASS_NAME"),
    opt("enable-cloud-provider-external-plugin", "ENABLE_CLOUD_PROVIDER_EXTERNAL_PLUGIN"),
    opt("plugin-path", "CLOUD_PROVIDER_EXTERNAL_PLUGIN_PATH"),
    opt("plugin-sha256", "CLOUD_PROVIDER_EXTERNAL_PLUGIN_HASH"),
    // Ours.
    opt("state-dir", "CAA_STATE_DIR"),
    opt("disable-pod-network", "CAA_DISABLE_POD_NETWORK"),
    opt("socket-group", "CAA_SOCKET_GROUP"),
    opt("plugin-dir", "CAA_PLUGIN_DIR"),
    opt("plugin-pass-env", "CAA_PLUGIN_PASS_ENV"),
    opt("log-format", "CAA_LOG_FORMAT"),
    opt("log-level", "CAA_LOG"),
];

/// The spec of `flag`; every flag the config reads is in [`OPTIONS`].
pub fn spec(flag: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.flag == flag)
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// The option's env var.
    Env,
}

/// One unparsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawValue {
    /// The text.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// The values given for options (absent = default), keyed by flag name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawOptions {
    values: BTreeMap<&'static str, RawValue>,
}

impl RawOptions {
    /// No values: every option at its default.
    pub fn new() -> RawOptions {
        RawOptions::default()
    }

    /// Records a value for `flag`; unknown flags are refused (a programming error in the
    /// caller, reported rather than ignored).
    pub fn set(
        &mut self,
        flag: &str,
        value: impl Into<String>,
        source: Source,
    ) -> Result<(), UnknownOption> {
        let spec = spec(flag).ok_or_else(|| UnknownOption(flag.to_owned()))?;
        self.values.insert(spec.flag, RawValue { value: value.into(), source });
        Ok(())
    }

    /// The value for `flag`, if given.
    pub fn get(&self, flag: &str) -> Option<&RawValue> {
        self.values.get(flag)
    }
}

/// A flag name not in [`OPTIONS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown option {0}")]
pub struct UnknownOption(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_env_vars_are_unique() {
        let mut flags: Vec<_> = OPTIONS.iter().map(|o| o.flag).collect();
        let mut envs: Vec<_> = OPTIONS.iter().filter_map(|o| o.env).collect();
        let (nf, ne) = (flags.len(), envs.len());
        flags.sort_unstable();
        flags.dedup();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!((flags.len(), envs.len()), (nf, ne));
    }

    #[test]
    fn unknown_flags_are_refused() {
        assert!(RawOptions::new().set("no-such-flag", "x", Source::Flag).is_err());
    }
}
