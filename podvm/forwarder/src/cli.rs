//! The forwarder's command line: upstream's Go flags with the same names and defaults
//! (caa-facts §5.1), no environment variables (upstream reads none).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};

/// agent-protocol-forwarder: relays the adaptor's agent calls to the kata-agent in this VM.
#[derive(Debug, Clone, Parser)]
#[command(name = "agent-protocol-forwarder", disable_version_flag = true)]
pub struct Options {
    /// Print the version and exit
    #[arg(long = "version", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub version: Option<bool>,
    /// Daemon config written by process-user-data
    #[arg(long = "config", default_value = "/run/peerpod/apf.json", value_name = "PATH")]
    pub config: PathBuf,
    /// TCP address to listen on
    #[arg(long = "listen", default_value = "0.0.0.0:15150", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The kata-agent's ttrpc unix socket
    #[arg(
        long = "kata-agent-socket",
        default_value = "/run/kata-containers/agent.sock",
        value_name = "PATH"
    )]
    pub kata_agent_socket: PathBuf,
    /// Network namespace the pod's containers join
    #[arg(long = "pod-namespace", default_value = "/run/netns/podns", value_name = "PATH")]
    pub pod_namespace: PathBuf,
    /// VM interface for tunnel traffic (dedicated mode)
    #[arg(long = "host-interface", default_value = "", value_name = "NAME")]
    pub host_interface: String,
    /// CA certificate verifying the adaptor's client certificate (overrides apf.json)
    #[arg(long = "ca-cert-file", value_name = "PATH")]
    pub ca_cert_file: Option<PathBuf>,
    /// Server certificate (overrides apf.json)
    #[arg(long = "cert-file", value_name = "PATH")]
    pub cert_file: Option<PathBuf>,
    /// Server key (overrides apf.json)
    #[arg(long = "cert-key", value_name = "PATH")]
    pub cert_key: Option<PathBuf>,
    /// Do not verify client certificates
    #[arg(long = "tls-skip-verify", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_skip_verify: Option<bool>,
    /// Plain TCP instead of TLS
    #[arg(long = "disable-tls", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_tls: Option<bool>,
}

impl Options {
    /// Parses Go-style arguments (`-listen :15150`, `-disable-tls`), program name first.
    pub fn parse_go<I: IntoIterator<Item = OsString>>(args: I) -> Result<Options, clap::Error> {
        let mut args = args.into_iter();
        let program = args.next().unwrap_or_else(|| "agent-protocol-forwarder".into());
        let rest = caa_go_flags::normalize(&Options::command(), args.collect());
        Options::try_parse_from(std::iter::once(program).chain(rest))
    }

    /// `-tls-skip-verify`.
    pub fn skip_verify(&self) -> bool {
        self.tls_skip_verify.unwrap_or(false)
    }

    /// `-disable-tls`.
    pub fn tls_disabled(&self) -> bool {
        self.disable_tls.unwrap_or(false)
    }
}

/// The version block printed by `-version` and at every start.
pub fn version_block() -> String {
    format!(
        "agent-protocol-forwarder version {}\n  implementation: caa-forwarder (Rust)\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::parse_go(std::iter::once("apf").chain(args.iter().copied()).map(OsString::from))
            .unwrap()
    }

    #[test]
    fn upstream_defaults_and_go_spellings() {
        let o = parse(&[]);
        assert_eq!(o.listen.to_string(), "0.0.0.0:15150");
        assert_eq!(o.config, PathBuf::from("/run/peerpod/apf.json"));
        assert_eq!(o.kata_agent_socket, PathBuf::from("/run/kata-containers/agent.sock"));
        assert_eq!(o.pod_namespace, PathBuf::from("/run/netns/podns"));
        assert!(!o.tls_disabled() && !o.skip_verify());

        let o = parse(&["-listen", "127.0.0.1:1234", "-disable-tls", "-config=/x.json"]);
        assert_eq!(o.listen.to_string(), "127.0.0.1:1234");
        assert!(o.tls_disabled());
        assert_eq!(o.config, PathBuf::from("/x.json"));
        assert!(Options::parse_go(["apf", "-listen", "nonsense"].map(OsString::from)).is_err());
    }
}
