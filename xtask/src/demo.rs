//! `cargo xtask demo`: the adaptor-free main job until the libvirt quick start exists. It builds
//! the mock provider and the `caa-plugin` CLI, then drives one pod VM lifecycle through the same
//! host library the adaptor uses — describe, verifyConfig, createInstance (with progress),
//! listInstances, deleteInstance twice — and finally runs the conformance suites.

use anyhow::{Context, Result, bail};

use crate::steps;

const CLI: &str = "target/debug/caa-plugin";
const MOCK: &str = "target/debug/caa-provider-mock";

pub(crate) fn run() -> Result<bool> {
    let (ok, _) = steps::run(
        "build",
        "cargo",
        &["build", "--locked", "-p", "caa-plugin", "-p", "caa-provider-mock"],
    )?;
    if !ok {
        bail!("build failed");
    }
    // The mock keeps its instances in a state file so that each `caa-plugin call` (a fresh
    // plugin process) sees what the previous one created, as a cloud would.
    let dir = steps::root().join("target/demo");
    std::fs::create_dir_all(&dir)?;
    let state = dir.join("state.json");
    let _ = std::fs::remove_file(&state);
    let config = dir.join("config.json");
    let config_text = format!(
        r#"{{"stateFile":{},"latencyMs":{{"createInstance":"300"}}}}"#,
        serde_json::to_string(&state.display().to_string())?
    );
    std::fs::write(&config, config_text)?;
    let config = config.display().to_string();
    let call = |title: &str, method: &str, params: &str| -> Result<String> {
        let (ok, out) =
            steps::capture(title, CLI, &["call", MOCK, method, params, "--config", &config])?;
        if !ok {
            bail!("{title} failed");
        }
        Ok(out)
    };

    steps::run("describe the plugin", CLI, &["describe", MOCK])?;
    call("verify its config", "verifyConfig", "{}")?;
    let create = r##"{"podName":"nginx","podNamespace":"default","sandboxId":"0123456789abcdef","userData":"#cloud-config\n","spec":{"vcpus":2,"memoryMiB":4096},"tags":{"caa/sandbox-id":"0123456789abcdef","caa/pod":"default/nginx"}}"##;
    let out = call("create a pod VM", "createInstance", create)?;
    let id = instance_id(&out).context("no instanceId in the create output")?;
    call(
        "list pod VMs of the sandbox",
        "listInstances",
        r#"{"tags":{"caa/sandbox-id":"0123456789abcdef"}}"#,
    )?;
    let delete = format!(r#"{{"instanceId":"{id}","sandboxId":"0123456789abcdef"}}"#);
    call("delete the pod VM", "deleteInstance", &delete)?;
    call("delete it again (idempotent)", "deleteInstance", &delete)?;
    let (ok, _) = steps::run("conformance", CLI, &["conformance", MOCK, "--suite", "all"])?;
    Ok(ok)
}

/// The `instanceId` of the result document (the last JSON object the CLI printed).
fn instance_id(out: &str) -> Option<String> {
    let start = out.rfind("\n{").map_or(0, |i| i + 1);
    let doc: serde_json::Value = serde_json::from_str(&out[start..]).ok()?;
    doc.get("instanceId")?.as_str().map(str::to_owned)
}
