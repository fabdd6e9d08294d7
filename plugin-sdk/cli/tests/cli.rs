//! The `caa-plugin` binary itself: its subcommands exist, `sha256` prints the digest to pin, and
//! a missing plugin is a clear error with a non-zero exit.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_caa-plugin");

#[test]
fn help_lists_every_subcommand() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["describe", "call", "conformance", "sha256"] {
        assert!(text.contains(cmd), "{cmd} missing from help:\n{text}");
    }
}

#[test]
fn sha256_prints_the_digest_to_pin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin");
    std::fs::write(&file, b"abc").unwrap();
    let out = Command::new(BIN).arg("sha256").arg(&file).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(text.split_whitespace().next(), Some(expected), "{text}");
}

#[test]
fn missing_plugin_is_a_clear_error() {
    let out = Command::new(BIN).args(["describe", "/nonexistent/caa-provider-x"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/caa-provider-x"), "{err}");
}

#[test]
fn unknown_suite_is_refused() {
    let out =
        Command::new(BIN).args(["conformance", "/bin/true", "--suite", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown suite"));
}
