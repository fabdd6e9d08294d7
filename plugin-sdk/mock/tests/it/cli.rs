//! The command line: `--describe`, `--version`, and the shell one-liner from the protocol docs.

use std::process::Command;

use caa_plugin_proto::Describe;
use serde_json::Value;

use crate::support::BIN;

#[test]
fn describe_prints_one_json_line_and_exits_0() {
    let out = Command::new(BIN).arg("--describe").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let describe: Describe = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(describe.plugin.name, "mock");
    assert!(describe.protocol_versions.contains(&1));
    let caps = &describe.capabilities;
    assert!(caps.cancel && caps.progress && caps.idempotent_create);
    assert_eq!(caps.max_concurrent_requests, 4096);
    assert_eq!(caps.instance.arch, ["amd64", "arm64", "s390x"]);
    assert!(
        caps.instance.gpus
            && caps.instance.volumes
            && caps.instance.instance_types
            && !caps.instance.multi_nic
    );
    assert_eq!(caps.limits.max_user_data_bytes, Some(1_114_112));
    assert_eq!(caps.optional_methods, ["listInstances"]);
    let names: Vec<&str> = describe.config_schema.options.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ip",
            "latencyMs",
            "faults",
            "errors",
            "apiKey",
            "stateFile",
            "maxInstances",
            "instanceTypes"
        ]
    );
    assert!(describe.config_schema.is_secret("MOCK_API_KEY"));
}

#[test]
fn version_prints_the_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")), "{out:?}");
}

#[test]
fn shell_one_liner_answers_and_exits_0_on_eof() {
    let script = r#"echo '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersions":[1],"host":{"name":"shell"}}}' | "$MOCK_BIN""#;
    let out = Command::new("sh").arg("-c").arg(script).env("MOCK_BIN", BIN).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["result"]["protocolVersion"], 1);
    assert_eq!(lines[0]["result"]["plugin"]["name"], "mock");
}
