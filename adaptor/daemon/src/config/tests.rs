//! Unit tests of `Config::from_raw`: defaults, every value kind, and problem reporting.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn provider() -> PluginName {
    PluginName::new("mock").unwrap()
}

fn dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("/opt/caa"), PathBuf::from(defaults::PLUGIN_DIR)]
}

fn build(pairs: &[(&str, &str, Source)]) -> Result<Config, ConfigError> {
    let mut raw = RawOptions::new();
    for (flag, value, source) in pairs {
        raw.set(flag, *value, *source).unwrap();
    }
    Config::from_raw(provider(), &raw, dirs())
}

fn flags(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    build(&pairs.iter().map(|(f, v)| (*f, *v, Source::Flag)).collect::<Vec<_>>())
}

fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
    flags(pairs).unwrap_err().problems.iter().map(ToString::to_string).collect()
}

#[test]
fn no_values_give_upstream_defaults() {
    let c = flags(&[]).unwrap();
    assert_eq!(c, Config::defaults(provider(), dirs()));
    assert_eq!(c.socket, PathBuf::from("/run/peerpod/hypervisor.sock"));
    assert_eq!(c.pods_dir, PathBuf::from("/run/peerpod/pods"));
    assert_eq!(c.state_dir, PathBuf::from("/run/peerpod/state"));
    assert_eq!(c.forwarder_port, 15150);
    assert_eq!(c.proxy_timeout, Duration::from_secs(300));
    assert_eq!(c.network.vxlan_port, 4789);
    assert_eq!(c.network.vxlan_min_id, 555_000);
    assert_eq!(c.network.tunnel_type, TunnelType::Vxlan);
    assert_eq!(c.peerpods_limit_per_node, Some(10));
    assert_eq!(c.probe_port, 8000);
    assert_eq!(c.kubernetes.runtime_class_name, "kata-remote");
    assert_eq!(c.plugin.dirs, dirs());
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(!c.tls.disabled && !c.tls.skip_verify && !c.cloud_config_verify);
    assert!(c.warnings().is_empty());
}

#[test]
fn every_option_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, "x").unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
    let c = flags(&[
        ("socket", "/tmp/h.sock"),
        ("pods-dir", "/tmp/pods"),
        ("pause-image", "pause:3"),
        ("forwarder-port", "15151"),
        ("ca-cert-file", &ca),
        ("cert-file", &cert),
        ("cert-key", &key),
        ("tls-skip-verify", "true"),
        ("tls-min-version", "VersionTLS12"),
        ("tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        ("proxy-timeout", "90s"),
        ("tunnel-type", "vxlan"),
        ("vxlan-port", "4790"),
        ("initdata", "H4sIAAAA"),
        ("cloud-config-verify", "1"),
        ("peerpods-limit-per-node", "-1"),
        ("enable-scratch-space", "t"),
        ("ext-network-via-podvm", "false"),
        ("pod-subnet-cidrs", "10.0.0.0/8"),
        ("disable-tls", "false"),
        ("host-interface", "ens3"),
        ("vxlan-min-id", "600000"),
        ("probe-port", "0"),
        ("node-name", "worker-1"),
        ("pod-uid", "uid-1"),
        ("runtimeclass-name", "kata-rc"),
        ("enable-cloud-provider-external-plugin", "true"),
        ("plugin-path", "/opt/caa-provider-x"),
        ("plugin-sha256", &"A".repeat(64)),
        ("state-dir", "/var/lib/caa"),
        ("disable-pod-network", "true"),
        ("socket-group", "0"),
        ("plugin-dir", "/a::/b"),
        ("plugin-pass-env", "AWS_PROFILE"),
        ("log-format", "json"),
        ("log-level", "caa_adaptor=debug"),
    ])
    .unwrap();
    assert_eq!(c.socket, PathBuf::from("/tmp/h.sock"));
    assert_eq!(c.pods_dir, PathBuf::from("/tmp/pods"));
    assert_eq!(c.pause_image.as_deref(), Some("pause:3"));
    assert_eq!(c.forwarder_port, 15151);
    assert_eq!(c.tls.ca_cert_file, Some(PathBuf::from(&ca)));
    assert_eq!(c.tls.cert_key, Some(PathBuf::from(&key)));
    assert!(c.tls.skip_verify);
    assert_eq!(c.tls.min_version, Some(TlsVersion::Tls12));
    assert_eq!(c.tls.cipher_suites, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]);
    assert_eq!(c.proxy_timeout, Duration::from_secs(90));
    assert_eq!(c.network.vxlan_port, 4790);
    assert_eq!(c.initdata.as_deref(), Some("H4sIAAAA"));
    assert!(c.cloud_config_verify && c.enable_scratch_space && !c.network.ext_network_via_podvm);
    assert!(c.network.disabled);
    assert_eq!(c.peerpods_limit_per_node, None);
    assert_eq!(c.network.pod_subnet_cidrs.len(), 1);
    assert!(!c.tls.disabled);
    assert_eq!(c.network.host_interface.as_deref(), Some("ens3"));
    assert_eq!(c.network.vxlan_min_id, 600_000);
    assert_eq!(c.probe_port, 0);
    assert_eq!(c.kubernetes.node_name.as_deref(), Some("worker-1"));
    assert_eq!(c.kubernetes.pod_uid.as_deref(), Some("uid-1"));
    assert_eq!(c.kubernetes.runtime_class_name, "kata-rc");
    assert_eq!(c.plugin.path, Some(PathBuf::from("/opt/caa-provider-x")));
    assert_eq!(c.plugin.sha256, Some("a".repeat(64)));
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/caa"));
    assert_eq!(c.socket_group, Some(0));
    assert_eq!(c.plugin.dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(c.plugin.pass_env, ["AWS_PROFILE"]);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.filter, "caa_adaptor=debug");
    assert_eq!(c.warnings().len(), 4, "{:?}", c.warnings());
}

#[test]
fn log_format_upstream_selects_go_log_lines() {
    let c = build(&[("log-format", "upstream", Source::Env)]).unwrap();
    assert_eq!(c.log.format, LogFormat::Upstream);
}

#[test]
fn all_problems_are_reported_at_once_naming_flag_and_env() {
    let p = problems(&[
        ("forwarder-port", "abc"),
        ("proxy-timeout", "5"),
        ("tls-skip-verify", "yes"),
        ("vxlan-min-id", "0"),
        ("log-format", "xml"),
        ("ext-network-via-podvm", "true"),
        ("pod-subnet-cidrs", "10.0.0.0/8,fd00::/64"),
    ]);
    assert_eq!(p.len(), 7, "{p:#?}");
    assert!(
        p[0].starts_with("-forwarder-port / FORWARDER_PORT: invalid value \"abc\""),
        "{}",
        p[0]
    );
    assert!(p.iter().any(|l| l.starts_with("-proxy-timeout / PROXY_TIMEOUT:")));
    assert!(p.iter().any(|l| l.starts_with("-tls-skip-verify / TLS_SKIP_VERIFY:")));
    assert!(p.iter().any(|l| l.starts_with("-vxlan-min-id: invalid value \"0\"")));
    assert!(p.iter().any(|l| l.starts_with("-log-format / CAA_LOG_FORMAT:")));
    assert!(
        p.iter().any(|l| l.starts_with("-ext-network-via-podvm / EXTERNAL_NETWORK_VIA_PODVM:")
            && l.contains("not supported"))
    );
    assert!(p.iter().any(|l| l.contains("fd00::/64 is IPv6")));
}

#[test]
fn problems_say_where_the_value_came_from() {
    let err = build(&[("vxlan-port", "0", Source::Env)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration\n  -vxlan-port / VXLAN_PORT: invalid value \"0\" (environment \
         variable VXLAN_PORT): expected a port number from 1 to 65535"
    );
}

#[test]
fn secret_values_are_not_echoed() {
    let mut raw = RawOptions::new();
    raw.set("initdata", "s3cret", Source::Env).unwrap();
    raw.set("forwarder-port", "x", Source::Env).unwrap();
    let text = Config::from_raw(provider(), &raw, dirs()).unwrap_err().to_string();
    assert!(!text.contains("s3cret"));
}

#[test]
fn combinations_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    std::fs::write(&cert, "x").unwrap();
    let cert = cert.to_str().unwrap();
    assert_eq!(problems(&[("cert-file", cert)]).len(), 1);
    let p = problems(&[
        ("tls-min-version", "VersionTLS13"),
        ("tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ]);
    assert!(p[0].contains("TLS 1.3"), "{p:?}");
    assert!(problems(&[("tls-min-version", "VersionTLS11")])[0].contains("not allowed"));
    assert!(problems(&[("tls-cipher-suites", "TLS_RSA_WITH_RC4_128_SHA")])[0].contains("unknown"));
    assert!(problems(&[("ca-cert-file", "/nonexistent/ca.pem")])[0].contains("no such file"));
}

#[test]
fn paths_must_fit_unix_sockets() {
    let long = format!("/{}", "d".repeat(120));
    assert!(problems(&[("socket", &long)])[0].contains("107 bytes"));
    let p = problems(&[("pods-dir", &format!("/{}", "p".repeat(30)))]);
    assert!(p[0].contains("at most 30 bytes"), "{p:?}");
    assert!(flags(&[("pods-dir", &format!("/{}", "p".repeat(29)))]).is_ok());
}

#[test]
fn other_invalid_values_are_refused() {
    for (flag, value) in [
        ("socket", ""),
        ("pods-dir", ""),
        ("state-dir", ""),
        ("tunnel-type", "geneve"),
        ("peerpods-limit-per-node", "10abc"),
        ("pod-subnet-cidrs", "10.0.0.0"),
        ("host-interface", "a/b"),
        ("plugin-path", "/opt/aws.so"),
        ("plugin-sha256", "abc"),
        ("enable-cloud-provider-external-plugin", "yes"),
        ("plugin-pass-env", "A-B"),
        ("socket-group", "no-such-group-caa-test"),
        ("log-level", "info,=x=y"),
        ("probe-port", "70000"),
        ("runtimeclass-name", ""),
    ] {
        let result = flags(&[(flag, value)]);
        if flag == "runtimeclass-name" {
            // An empty value means "unset" for optional text options.
            assert!(result.is_ok());
            continue;
        }
        let err = result.expect_err(flag);
        assert_eq!(err.problems.len(), 1, "{flag}: {err}");
        assert_eq!(err.problems[0].option.flag, flag);
    }
}

#[test]
fn empty_optional_values_mean_unset() {
    let c = flags(&[("tls-min-version", ""), ("pause-image", ""), ("plugin-sha256", "")]).unwrap();
    assert_eq!(c, Config::defaults(provider(), dirs()));
}
