//! [`Config::from_raw`]: parses every given value, checks the combinations, and collects every
//! problem before failing, so an operator fixes a bad ConfigMap in one round trip. Each problem
//! names the flag and the env var, and says which of the two the bad value came from.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::options::{OptionSpec, RawOptions, Source, spec};
use crate::config::{Config, LogFormat, TlsVersion, TunnelType, values};
use crate::provider::PluginName;

/// One invalid value or combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The option at fault.
    pub option: OptionSpec,
    /// The value (redacted for secret options) and where it came from, when one was given.
    pub given: Option<(String, Source)>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-{}", self.option.flag)?;
        if let Some(env) = self.option.env {
            write!(f, " / {env}")?;
        }
        match &self.given {
            Some((value, Source::Flag)) => write!(f, ": invalid value {value} (command line)")?,
            Some((value, Source::Env)) => write!(
                f,
                ": invalid value {value} (environment variable {})",
                self.option.env.unwrap_or("?")
            )?,
            None => {}
        }
        write!(f, ": {}", self.reason)
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in option-table order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Reads values out of [`RawOptions`], recording problems instead of stopping at the first.
struct Reader<'a> {
    raw: &'a RawOptions,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn spec(flag: &str) -> OptionSpec {
        // Every flag read below is in the table (checked by a unit test).
        spec(flag).copied().unwrap_or(OptionSpec { flag: "?", env: None, secret: false })
    }

    /// The non-empty text given for `flag`.
    fn text(&self, flag: &str) -> Option<&str> {
        self.raw.get(flag).map(|v| v.value.as_str()).filter(|v| !v.is_empty())
    }

    fn problem(&mut self, flag: &str, reason: impl Into<String>) {
        let option = Self::spec(flag);
        let given = self.raw.get(flag).map(|v| {
            let shown =
                if option.secret { "(redacted)".to_owned() } else { format!("{:?}", v.value) };
            (shown, v.source)
        });
        self.problems.push(Problem { option, given, reason: reason.into() });
    }

    /// Parses `flag` with `parse`; `default` when absent or invalid (the problem is recorded).
    fn parse<T>(
        &mut self,
        flag: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(text) = self.raw.get(flag).map(|v| v.value.clone()) else { return default };
        match parse(&text) {
            Ok(v) => v,
            Err(reason) => {
                self.problem(flag, reason);
                default
            }
        }
    }

    fn boolean(&mut self, flag: &str) -> bool {
        self.parse(flag, false, values::boolean)
    }

    fn optional_path(&mut self, flag: &str) -> Option<PathBuf> {
        self.text(flag).map(PathBuf::from)
    }

    fn existing_file(&mut self, flag: &str) -> Option<PathBuf> {
        let path = self.optional_path(flag)?;
        if !path.is_file() {
            self.problem(flag, "no such file");
        }
        Some(path)
    }

    fn required_path(&mut self, flag: &str, default: &str) -> PathBuf {
        self.parse(flag, default.into(), |s| {
            if s.is_empty() { Err("must not be empty".to_owned()) } else { Ok(s.into()) }
        })
    }
}

impl Config {
    /// Builds the configuration for `provider` from the values given on the command line or in
    /// the environment (absent values take their defaults). `default_plugin_dirs` is used when
    /// no plugin dir is given.
    pub fn from_raw(
        provider: PluginName,
        raw: &RawOptions,
        default_plugin_dirs: Vec<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let mut r = Reader { raw, problems: Vec::new() };
        let mut c = Config::defaults(provider, default_plugin_dirs);

        c.socket = r.parse("socket", c.socket, |s| match s {
            "" => Err("must not be empty".to_owned()),
            s => values::socket_path(s),
        });
        c.pods_dir = r.required_path("pods-dir", crate::config::defaults::PODS_DIR);
        // `<pods-dir>/<64-char sid>/agent.ttrpc` must fit a unix socket path.
        let agent_socket_len = c.pods_dir.as_os_str().len() + 1 + 64 + "/agent.ttrpc".len();
        if agent_socket_len > values::MAX_SOCKET_PATH {
            let most = values::MAX_SOCKET_PATH + c.pods_dir.as_os_str().len() - agent_socket_len;
            r.problem("pods-dir", format!("too long: at most {most} bytes, so that <pods-dir>/<sandbox id>/agent.ttrpc fits a unix socket path"));
        }
        c.pause_image = r.text("pause-image").map(str::to_owned);
        c.forwarder_port = r.parse("forwarder-port", c.forwarder_port, |s| values::port(s, false));
        c.proxy_timeout = r.parse("proxy-timeout", c.proxy_timeout, values::duration);

        c.tls.disabled = r.boolean("disable-tls");
        c.tls.ca_cert_file = r.existing_file("ca-cert-file");
        c.tls.cert_file = r.existing_file("cert-file");
        c.tls.cert_key = r.existing_file("cert-key");
        match (&c.tls.cert_file, &c.tls.cert_key) {
            (Some(_), None) => r.problem("cert-file", "needs -cert-key / CERT_KEY as well"),
            (None, Some(_)) => r.problem("cert-key", "needs -cert-file / CERT_FILE as well"),
            _ => {}
        }
        c.tls.skip_verify = r.boolean("tls-skip-verify");
        c.tls.min_version = r.parse("tls-min-version", None, |s| match s {
            "" => Ok(None),
            "VersionTLS12" => Ok(Some(TlsVersion::Tls12)),
            "VersionTLS13" => Ok(Some(TlsVersion::Tls13)),
            "VersionTLS10" | "VersionTLS11" => Err("TLS 1.0 and 1.1 are not allowed".to_owned()),
            _ => Err("expected VersionTLS12 or VersionTLS13".to_owned()),
        });
        c.tls.cipher_suites = r.parse("tls-cipher-suites", Vec::new(), |s| {
            let names = values::list(s);
            let supported = caa_tls::supported_cipher_suites();
            match names.iter().find(|n| !supported.contains(n)) {
                Some(bad) => {
                    Err(format!("unknown cipher suite {bad:?}; supported: {}", supported.join(",")))
                }
                None => Ok(names.into_iter().map(str::to_owned).collect()),
            }
        });
        if c.tls.min_version == Some(TlsVersion::Tls13) && !c.tls.cipher_suites.is_empty() {
            r.problem("tls-cipher-suites", "cipher suites cannot be chosen with TLS 1.3");
        }

        c.network.tunnel_type = r.parse("tunnel-type", TunnelType::Vxlan, |s| match s {
            "vxlan" => Ok(TunnelType::Vxlan),
            _ => Err("the only tunnel type is vxlan".to_owned()),
        });
        c.network.vxlan_port =
            r.parse("vxlan-port", c.network.vxlan_port, |s| values::port(s, false));
        c.network.vxlan_min_id =
            r.parse("vxlan-min-id", c.network.vxlan_min_id, |s| match values::integer(s)? {
                n @ 1..=0xff_ffff => Ok(u32::try_from(n).unwrap_or_default()),
                _ => Err("a VXLAN id is from 1 to 16777215".to_owned()),
            });
        c.network.host_interface = r.parse("host-interface", None, |s| match s {
            "" => Ok(None),
            s => values::interface_name(s).map(Some),
        });
        c.network.ext_network_via_podvm = r.boolean("ext-network-via-podvm");
        if c.network.ext_network_via_podvm {
            r.problem(
                "ext-network-via-podvm",
                "external networking through the pod VM is not supported by this adaptor yet",
            );
        }
        c.network.pod_subnet_cidrs = r.parse("pod-subnet-cidrs", Vec::new(), |s| {
            let cidrs = values::cidrs(s)?;
            match cidrs.iter().find(|c| c.addr.is_ipv6()) {
                Some(v6) => {
                    Err(format!("{}/{} is IPv6; the pod tunnel is IPv4 only", v6.addr, v6.prefix))
                }
                None => Ok(cidrs),
            }
        });
        c.network.disabled = r.boolean("disable-pod-network");

        c.initdata = r.text("initdata").map(str::to_owned);
        c.cloud_config_verify = r.boolean("cloud-config-verify");
        c.peerpods_limit_per_node = r.parse(
            "peerpods-limit-per-node",
            c.peerpods_limit_per_node,
            |s| match values::integer(s)? {
                n if n < 0 => Ok(None),
                n => u32::try_from(n).map(Some).map_err(|_| "too large".to_owned()),
            },
        );
        c.enable_scratch_space = r.boolean("enable-scratch-space");
        c.probe_port = r.parse("probe-port", c.probe_port, |s| values::port(s, true));

        c.kubernetes.node_name = r.text("node-name").map(str::to_owned);
        c.kubernetes.pod_uid = r.text("pod-uid").map(str::to_owned);
        if let Some(name) = r.text("runtimeclass-name") {
            c.kubernetes.runtime_class_name = name.to_owned();
        }

        c.state_dir = r.required_path("state-dir", crate::config::defaults::STATE_DIR);
        c.socket_group = r.parse("socket-group", None, |s| match s {
            "" => Ok(None),
            s => group_id(s).map(Some),
        });
        if let Some(dirs) = r.text("plugin-dir") {
            c.plugin.dirs = dirs.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect();
        }
        c.plugin.path = r.optional_path("plugin-path");
        if c.plugin.path.as_deref().and_then(Path::extension).is_some_and(|e| e == "so") {
            r.problem("plugin-path", "Go plugin (.so) providers are not supported: give the path of a caa-provider-<name> executable");
        }
        c.plugin.sha256 = r.parse("plugin-sha256", None, |s| match s {
            "" => Ok(None),
            s => values::sha256(s).map(Some),
        });
        // Upstream needs this switch to honour the plugin path; we honour the path on its own
        // and only check that the switch is a boolean.
        r.boolean("enable-cloud-provider-external-plugin");
        c.plugin.pass_env = r.parse("plugin-pass-env", Vec::new(), values::env_names);

        c.log.format = r.parse("log-format", LogFormat::Text, |s| match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            "upstream" => Ok(LogFormat::Upstream),
            _ => Err("expected text, json or upstream".to_owned()),
        });
        c.log.filter = r.parse("log-level", c.log.filter, |s| {
            tracing_subscriber::EnvFilter::builder()
                .parse(s)
                .map(|_| s.to_owned())
                .map_err(|e| format!("not a log filter such as info or caa_adaptor=debug: {e}"))
        });

        if r.problems.is_empty() { Ok(c) } else { Err(ConfigError { problems: r.problems }) }
    }

    /// Non-fatal remarks about this configuration (upstream prints the same warnings).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.pause_image.is_some() {
            w.push(
                "-pause-image / PAUSE_IMAGE is accepted for compatibility and not used".to_owned(),
            );
        }
        if self.tls.disabled {
            w.push("TLS is disabled between the adaptor and the pod VMs (-disable-tls)".to_owned());
        } else if self.tls.has_profile() {
            w.push("the TLS profile is baked into pod VMs when they are created; existing peer pods keep their old profile".to_owned());
        }
        if self.network.disabled {
            w.push("pod networking is disabled (-disable-pod-network): pods are not reachable at their pod IPs".to_owned());
        }
        if self.tls.skip_verify {
            w.push(
                "pod VM certificates are not verified (-tls-skip-verify / TLS_SKIP_VERIFY)"
                    .to_owned(),
            );
        }
        w
    }
}

/// A group name or numeric gid.
fn group_id(s: &str) -> Result<u32, String> {
    if let Ok(gid) = s.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err("no such group".to_owned()),
        Err(e) => Err(format!("looking up the group failed: {e}")),
    }
}
