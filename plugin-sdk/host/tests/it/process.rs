//! Spawning: hash pinning through a memfd, file permission checks, the environment allowlist
//! and argv hygiene.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use caa_plugin_host::{
    HostError, IntegrityError, Plugin, PluginCommand, sha256_file, signal_group,
};
use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;

use crate::support::{Fake, init_logs, set_mode, wait_until, within};

fn copy_binary(dir: &Path, name: &str, system: &str) -> PathBuf {
    init_logs();
    let path = dir.join(name);
    std::fs::copy(system, &path).unwrap();
    set_mode(&path, 0o755);
    path
}

#[tokio::test]
async fn pinned_digest_mismatch_is_refused_naming_both_digests() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_binary(dir.path(), "caa-provider-true", "/bin/true");
    let actual = sha256_file(&path).unwrap();
    let expected = "ab".repeat(32);
    let err = PluginCommand::new(&path).sha256(expected.to_uppercase()).spawn().unwrap_err();
    assert!(matches!(err, HostError::Integrity(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("plugin {} sha256 mismatch: expected {expected}, got {actual}", path.display())
    );
}

#[tokio::test]
async fn pinned_binary_runs_from_a_sealed_memfd() {
    let dir = tempfile::tempdir().unwrap();
    let echo = copy_binary(dir.path(), "caa-echo", "/bin/echo");
    let digest = sha256_file(&echo).unwrap().to_uppercase();
    let mut spawned =
        PluginCommand::new(&echo).sha256(digest).args(["hello", "pinned"]).spawn().unwrap();
    let mut out = String::new();
    within(spawned.stdout.read_to_string(&mut out)).await.unwrap();
    assert_eq!(out, "hello pinned\n");
    assert!(within(spawned.child.wait()).await.unwrap().success());

    let sleep = copy_binary(dir.path(), "caa-sleep", "/bin/sleep");
    let digest = sha256_file(&sleep).unwrap();
    let mut spawned = PluginCommand::new(&sleep).sha256(digest).arg("30").spawn().unwrap();
    // spawn returns once the kernel committed to the new image; argv is in place a moment later.
    let cmdline = format!("/proc/{}/cmdline", spawned.pid);
    wait_until("argv is set up", || std::fs::read(&cmdline).is_ok_and(|c| !c.is_empty())).await;
    assert_eq!(
        std::fs::read(&cmdline).unwrap(),
        b"caa-sleep\x0030\x00",
        "argv[0] is the file name"
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", spawned.pid)).unwrap();
    assert!(exe.to_string_lossy().starts_with("/memfd:caa-plugin"), "{}", exe.display());
    signal_group(spawned.pid, Signal::SIGKILL);
    assert!(!within(spawned.child.wait()).await.unwrap().success());
}

#[tokio::test]
async fn group_or_other_writable_plugin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_binary(dir.path(), "caa-provider-true", "/bin/true");
    set_mode(&path, 0o775);
    let err = PluginCommand::new(&path).spawn().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("plugin {} is writable by group or others (mode 0775)", path.display())
    );
    set_mode(&path, 0o757);
    let digest = sha256_file(&path).unwrap();
    let err = PluginCommand::new(&path).sha256(digest).spawn().unwrap_err();
    assert!(err.to_string().contains("is writable by group or others (mode 0757)"), "{err}");
}

#[tokio::test]
async fn plugin_environment_is_built_from_the_allowlist_and_argv_carries_no_config() {
    let fake = Fake::new();
    let mut spec = fake.spec("dumpenv");
    spec.command = spec.command.pass_env(["CAA_TEST_UNSET_EXTRA"]);
    spec.config = BTreeMap::from([
        ("region".to_owned(), serde_json::json!("region-value-1")),
        ("apiKey".to_owned(), serde_json::json!("api-key-secret-1")),
    ]);
    let plugin = within(Plugin::start(&spec)).await.unwrap();
    within(plugin.shutdown()).await.unwrap();

    for tag in ["describe", "serve"] {
        let env: BTreeMap<String, String> = serde_json::from_str(
            &std::fs::read_to_string(fake.state().join(format!("env-{tag}.json"))).unwrap(),
        )
        .unwrap();
        for key in env.keys() {
            let allowed = caa_plugin_host::process::ENV_ALLOWLIST.contains(&key.as_str())
                || key.starts_with("LC_")
                || key.starts_with("CAA_PLUGIN_")
                || key.starts_with("FAKE_")
                || key == "CARGO_PKG_NAME";
            assert!(
                allowed,
                "{tag}: host variable {key} leaked into the plugin environment: {env:?}"
            );
        }
        assert_eq!(env["CAA_PLUGIN_PROTOCOL"], "1");
        assert_eq!(env["CAA_PLUGIN_NAME"], "fake");
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(env["PATH"], path);
        }
        if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
            assert!(!env.contains_key("CARGO_MANIFEST_DIR"));
        }
        assert!(!env.contains_key("CAA_TEST_UNSET_EXTRA"));
        let text = serde_json::to_string(&env).unwrap();
        assert!(!text.contains("api-key-secret-1") && !text.contains("region-value-1"));
    }
    let serve: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(fake.state().join("env-serve.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(serve["CAA_PLUGIN_LOG_LEVEL"], "info");
    // The schema names CARGO_PKG_NAME as an option's variable, so the host passes it through.
    if let Ok(name) = std::env::var("CARGO_PKG_NAME") {
        assert_eq!(serve["CARGO_PKG_NAME"], name);
    }

    let script = fake.path.to_str().unwrap().to_owned();
    let argv = |tag: &str| -> Vec<String> {
        serde_json::from_str(
            &std::fs::read_to_string(fake.state().join(format!("argv-{tag}.json"))).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(argv("serve"), vec![script.clone()]);
    assert_eq!(argv("describe"), vec![script, "--describe".to_owned()]);
}

#[tokio::test]
async fn pinned_script_is_refused() {
    let fake = Fake::new();
    let digest = sha256_file(&fake.path).unwrap();
    let err = PluginCommand::new(&fake.path).sha256(digest).spawn().unwrap_err();
    assert!(matches!(err, HostError::Integrity(IntegrityError::Script { .. })), "{err:?}");
    assert!(err.to_string().contains("scripts cannot be pinned"), "{err}");
}
