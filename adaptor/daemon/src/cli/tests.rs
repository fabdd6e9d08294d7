//! Unit tests of the command line: grammar, upstream-style spellings, conversion to `Config`.
//! Env precedence needs a real environment and is tested by running the binary (tests/it).

use std::path::PathBuf;
use std::time::Duration;

use clap::CommandFactory;

use super::*;
use crate::config::OPTIONS;

fn parse_args(args: &[&str]) -> Result<Invocation, CliError> {
    let argv = std::iter::once("cloud-api-adaptor").chain(args.iter().copied()).map(OsString::from);
    parse_with_plugin_dirs(argv, vec![PathBuf::from("/nonexistent-plugin-dir")])
}

fn run(args: &[&str]) -> Config {
    match parse_args(args) {
        Ok(Invocation::Run(c)) => *c,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn usage_error(args: &[&str]) -> String {
    match parse_args(args) {
        Err(CliError::Usage(text)) => text,
        other => panic!("{args:?}: expected a usage error, got {other:?}"),
    }
}

#[test]
fn clap_matches_the_table() {
    let command = Options::command();
    let args: Vec<_> = command.get_arguments().filter(|a| a.get_long().is_some()).collect();
    for spec in OPTIONS {
        let arg = args.iter().find(|a| a.get_long() == Some(spec.flag));
        let arg = arg.unwrap_or_else(|| panic!("no clap flag --{}", spec.flag));
        assert_eq!(arg.get_id().as_str(), spec.flag);
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), spec.env, "env of --{}", spec.flag);
    }
    assert_eq!(args.len(), OPTIONS.len());
}

#[test]
fn version_and_help() {
    let Ok(Invocation::Version(text)) = parse_args(&["version"]) else { panic!() };
    assert!(text.starts_with("cloud-api-adaptor version "));
    for help in ["help", "-help", "--help", "-h"] {
        let Ok(Invocation::Help(text)) = parse_args(&[help]) else { panic!("{help}") };
        assert!(text.starts_with("Usage: cloud-api-adaptor <provider> [options]"), "{text}");
    }
    let Ok(Invocation::Help(text)) = parse_args(&["aws", "-help"]) else { panic!() };
    assert!(text.contains("--pods-dir <DIR>") && text.contains("PODS_DIR"), "{text}");
}

#[test]
fn grammar_errors_are_usage_errors() {
    assert!(usage_error(&[]).contains("missing provider name"));
    assert!(usage_error(&["-pods-dir", "/x"]).contains("unknown option \"-pods-dir\""));
    assert!(usage_error(&[""]).contains("unknown option"));
    assert!(usage_error(&["AWS"]).contains("unsupported cloud provider"));
    assert!(usage_error(&["../x"]).contains("unsupported cloud provider"));
    assert!(usage_error(&["aws", "stray"]).contains("unexpected argument"));
    let unknown = usage_error(&["aws", "-aws-region", "us-east-1"]);
    assert!(unknown.contains("'--aws-region'") && unknown.contains("environment variables"));
    assert!(usage_error(&["aws", "-tls-skip-verify", "false"]).contains("unexpected argument"));
}

#[test]
fn upstream_style_invocations_parse() {
    let c = run(&[
        "aws",
        "-pods-dir",
        "/tmp/pods",
        "-forwarder-port=15151",
        "--proxy-timeout",
        "90s",
        "-tls-skip-verify",
        "-disable-tls=false",
        "-peerpods-limit-per-node",
        "-1",
        "-socket",
        "/tmp/caa.sock",
        "-vxlan-min-id=600000",
    ]);
    assert_eq!(c.provider.as_str(), "aws");
    assert_eq!(c.pods_dir, PathBuf::from("/tmp/pods"));
    assert_eq!(c.forwarder_port, 15151);
    assert_eq!(c.proxy_timeout, Duration::from_secs(90));
    assert!(c.tls.skip_verify);
    assert!(!c.tls.disabled);
    assert_eq!(c.peerpods_limit_per_node, None);
    assert_eq!(c.socket, PathBuf::from("/tmp/caa.sock"));
    assert_eq!(c.network.vxlan_min_id, 600_000);
}

#[test]
fn bad_values_are_config_errors() {
    match parse_args(&["aws", "-forwarder-port", "x", "-proxy-timeout", "5"]) {
        Err(CliError::Config(e)) => assert_eq!(e.problems.len(), 2, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn plugin_dir_flag_takes_a_colon_list() {
    let dirs = &run(&["mock", "-plugin-dir", "/a:/b"]).plugin.dirs;
    assert_eq!(dirs, &[PathBuf::from("/a"), PathBuf::from("/b")]);
}
