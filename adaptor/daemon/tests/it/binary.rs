//! The `cloud-api-adaptor` binary with a controlled environment: exit codes, output streams and
//! flag > non-empty env > default precedence (caa-facts §1.2). Configs under test point at a
//! plugin directory without plugins, so a valid config ends in the plugin lookup error (exit 2,
//! "unsupported cloud provider") before anything would be served.

use std::process::{Command, Output};

fn adaptor(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloud-api-adaptor"));
    cmd.args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `mock` with an empty plugin dir: `Ok(())` when the config was accepted, else the
/// config error text.
fn check_config(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap().to_owned();
    let mut all = vec!["mock", "-plugin-dir", &dir];
    all.extend_from_slice(args);
    let out = adaptor(&all, env);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    if text.contains("invalid configuration") {
        Err(text)
    } else {
        assert!(text.contains("unsupported cloud provider: mock"), "{text}");
        Ok(())
    }
}

#[test]
fn version_prints_three_lines_on_stdout() {
    let out = adaptor(&["version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("cloud-api-adaptor version "));
}

#[test]
fn help_goes_to_stdout_and_usage_errors_exit_2() {
    let out = adaptor(&["help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage: cloud-api-adaptor"));
    for args in [&[][..], &["-x"][..], &["mock", "--no-such-flag"][..]] {
        let out = adaptor(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(!stderr(&out).is_empty());
    }
}

#[test]
fn env_vars_are_read_and_bad_ones_are_named() {
    assert_eq!(check_config(&[], &[("FORWARDER_PORT", "15151"), ("PROXY_TIMEOUT", "1m")]), Ok(()));
    let err = check_config(
        &[],
        &[("FORWARDER_PORT", "x"), ("PROXY_TIMEOUT", "5"), ("TLS_SKIP_VERIFY", "yes")],
    )
    .unwrap_err();
    assert!(err.contains("-forwarder-port / FORWARDER_PORT: invalid value \"x\" (environment variable FORWARDER_PORT)"), "{err}");
    assert!(err.contains("-proxy-timeout / PROXY_TIMEOUT"), "{err}");
    assert!(err.contains("-tls-skip-verify / TLS_SKIP_VERIFY"), "{err}");
}

#[test]
fn a_flag_wins_over_its_env_var() {
    assert_eq!(check_config(&["-forwarder-port", "15151"], &[("FORWARDER_PORT", "bad")]), Ok(()));
    let err = check_config(&["-forwarder-port=bad"], &[("FORWARDER_PORT", "15151")]).unwrap_err();
    assert!(err.contains("invalid value \"bad\" (command line)"), "{err}");
}

#[test]
fn an_empty_env_var_counts_as_unset() {
    assert_eq!(
        check_config(&[], &[("PODS_DIR", ""), ("FORWARDER_PORT", ""), ("CAA_LOG_FORMAT", "")]),
        Ok(())
    );
}

#[test]
fn upstream_plugin_env_vars_select_the_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("caa-provider-elsewhere");
    let out = adaptor(
        &["mock", "-plugin-dir", tmp.path().to_str().unwrap()],
        &[("CLOUD_PROVIDER_EXTERNAL_PLUGIN_PATH", missing.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(text.contains("caa-provider-elsewhere does not exist"), "{text}");

    let out = adaptor(&["mock"], &[("CLOUD_PROVIDER_EXTERNAL_PLUGIN_HASH", "nothex")]);
    assert!(stderr(&out).contains("CLOUD_PROVIDER_EXTERNAL_PLUGIN_HASH"));
}
