//! Finding the provider plugin: the directory search, an explicit path, and bad files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caa_adaptor::PluginName;
use caa_adaptor::config::PluginConfig;
use caa_adaptor::provider::{ResolveError, available, resolve};

fn fake_plugin(dir: &Path, file: &str, mode: u32) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(file);
    fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn config(dirs: Vec<PathBuf>) -> PluginConfig {
    PluginConfig { dirs, path: None, sha256: None, pass_env: vec!["AWS_PROFILE".into()] }
}

#[test]
fn the_first_directory_holding_the_plugin_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    fs::create_dir_all(&first).unwrap();
    let in_second = fake_plugin(&second, "caa-provider-aws", 0o755);
    let name = PluginName::new("aws").unwrap();

    let found = resolve(&name, &config(vec![first.clone(), second.clone()])).unwrap();
    assert_eq!(found.path, in_second);
    assert_eq!(found.pass_env, ["AWS_PROFILE"]);
    let cmd = found.command();
    assert_eq!(cmd.name, "aws");
    assert!(cmd.pass_env.contains(&"AWS_PROFILE".to_owned()));

    let in_first = fake_plugin(&first, "caa-provider-aws", 0o755);
    assert_eq!(resolve(&name, &config(vec![first, second])).unwrap().path, in_first);
}

#[test]
fn a_missing_plugin_names_the_provider_and_the_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let err =
        resolve(&PluginName::new("azure").unwrap(), &config(vec![tmp.path().into()])).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ResolveError::NotFound { .. }));
    assert!(text.contains("unsupported cloud provider: azure"), "{text}");
    assert!(text.contains("caa-provider-azure") && text.contains(tmp.path().to_str().unwrap()));
}

#[test]
fn a_non_executable_plugin_is_reported_not_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    fake_plugin(tmp.path(), "caa-provider-aws", 0o644);
    let err = resolve(&PluginName::new("aws").unwrap(), &config(vec![tmp.path().into()]));
    assert!(matches!(err, Err(ResolveError::NotExecutable { .. })), "{err:?}");
}

#[test]
fn an_explicit_path_wins_and_carries_the_pin() {
    let tmp = tempfile::tempdir().unwrap();
    fake_plugin(tmp.path(), "caa-provider-aws", 0o755);
    let explicit = fake_plugin(&tmp.path().join("x"), "my-aws-plugin", 0o755);
    let mut cfg = config(vec![tmp.path().into()]);
    cfg.path = Some(explicit.clone());
    cfg.sha256 = Some("a".repeat(64));
    let found = resolve(&PluginName::new("aws").unwrap(), &cfg).unwrap();
    assert_eq!(found.path, explicit);
    assert_eq!(found.command().sha256, Some("a".repeat(64)));

    cfg.path = Some(tmp.path().join("missing"));
    let err = resolve(&PluginName::new("aws").unwrap(), &cfg);
    assert!(matches!(err, Err(ResolveError::Missing { .. })), "{err:?}");
}

#[test]
fn available_lists_executable_plugins_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fake_plugin(&a, "caa-provider-mock", 0o755);
    fake_plugin(&b, "caa-provider-mock", 0o755);
    fake_plugin(&b, "caa-provider-aws", 0o755);
    fake_plugin(&b, "caa-provider-off", 0o644);
    fake_plugin(&b, "other-tool", 0o755);
    assert_eq!(available(&[a, b, tmp.path().join("none")]), ["aws", "mock"]);
}
