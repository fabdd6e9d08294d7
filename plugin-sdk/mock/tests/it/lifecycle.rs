//! The instance lifecycle over stdio: create, list, delete, cancellation, SIGTERM during a
//! create, the state file across restarts, and secrecy of the API key in logs.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::support::{Plugin, create_params, delete_params};

fn stages(notifications: &[Value], operation_id: &str) -> Vec<String> {
    notifications
        .iter()
        .filter(|n| n["method"] == "$/progress" && n["params"]["operationId"] == operation_id)
        .map(|n| n["params"]["stage"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_list_delete_over_stdio() {
    let mut p = Plugin::spawn(&[("MOCK_IP", "10.1.2.3")]);
    p.initialize(json!({})).await;
    let created = p.call("createInstance", create_params("op-1", "sandbox-abcdef123")).await;
    let id = created["instanceId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mock-"), "{created}");
    assert_eq!(created["name"], "podvm-nginx-sandbox-");
    assert_eq!(created["ips"], json!(["10.1.2.3"]));
    assert_eq!(stages(&p.notifications, "op-1"), ["requested", "instanceCreated", "running"]);
    let announced =
        p.notifications.iter().find(|n| n["params"]["stage"] == "instanceCreated").unwrap();
    assert_eq!(announced["params"]["instanceId"], id.as_str());

    let listed =
        p.call("listInstances", json!({"tags": {"caa/sandbox-id": "sandbox-abcdef123"}})).await;
    assert_eq!(listed["instances"][0]["instanceId"], id.as_str());
    assert_eq!(listed["instances"][0]["tags"]["caa/operation-id"], "op-1");
    let none = p.call("listInstances", json!({"tags": {"caa/sandbox-id": "other"}})).await;
    assert_eq!(none["instances"], json!([]));

    assert_eq!(p.call("deleteInstance", delete_params(&id)).await, json!({"deleted": true}));
    assert_eq!(
        p.call("deleteInstance", delete_params(&id)).await,
        json!({"deleted": false, "reason": "notFound"})
    );
    assert_eq!(p.call("listInstances", json!({})).await["instances"], json!([]));

    p.call("teardown", json!({})).await;
    p.close_stdin();
    assert!(p.wait().await.success());
}

#[tokio::test]
async fn cancel_during_create_rolls_back_and_answers_without_instance_id() {
    let mut p = Plugin::spawn(&[("MOCK_LATENCY_MS", "createInstance=600000")]);
    p.initialize(json!({})).await;
    let id = p.request("createInstance", create_params("op-c", "sb-c")).await;
    // Wait for the instance to exist before cancelling.
    while !stages(&p.notifications, "op-c").iter().any(|s| s == "instanceCreated") {
        let n = p.next_message().await.expect("progress");
        p.notifications.push(n);
    }
    p.send(&json!({"jsonrpc": "2.0", "method": "$/cancel", "params": {"operationId": "op-c"}}))
        .await;
    let answer = p.response(id).await;
    assert_eq!(answer["error"]["code"], -32800, "{answer}");
    assert!(answer["error"]["data"].get("instanceId").is_none(), "{answer}");
    assert_eq!(p.call("listInstances", json!({})).await["instances"], json!([]));
}

#[tokio::test]
async fn sigterm_during_a_slow_create_still_answers_and_exits_0() {
    let mut p = Plugin::spawn(&[("MOCK_LATENCY_MS", "createInstance=600000")]);
    p.initialize(json!({})).await;
    let id = p.request("createInstance", create_params("op-t", "sb-t")).await;
    while !stages(&p.notifications, "op-t").iter().any(|s| s == "instanceCreated") {
        let n = p.next_message().await.expect("progress");
        p.notifications.push(n);
    }
    let pid = Pid::from_raw(i32::try_from(p.pid()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let answer = p.response(id).await;
    assert!(answer.get("result").is_some() || answer.get("error").is_some(), "{answer}");
    let status =
        tokio::time::timeout(Duration::from_secs(15), p.wait()).await.expect("exit within 15 s");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("mock-state.json");
    let config = json!({"stateFile": state.to_str().unwrap()});

    let mut first = Plugin::spawn(&[]);
    first.initialize(config.clone()).await;
    let created = first.call("createInstance", create_params("op-s", "sb-s")).await;
    let id = created["instanceId"].as_str().unwrap().to_owned();
    first.close_stdin();
    assert!(first.wait().await.success());

    let mut second = Plugin::spawn(&[]);
    second.initialize(config).await;
    let listed = second.call("listInstances", json!({})).await;
    assert_eq!(listed["instances"][0]["instanceId"], id.as_str(), "{listed}");
    // The same operation replays the instance the first process created.
    assert_eq!(second.call("createInstance", create_params("op-s", "sb-s")).await, created);
    assert_eq!(second.call("deleteInstance", delete_params(&id)).await, json!({"deleted": true}));
    second.close_stdin();
    assert!(second.wait().await.success());

    let mut third = Plugin::spawn(&[]);
    third.initialize(json!({"stateFile": state.to_str().unwrap()})).await;
    assert_eq!(third.call("listInstances", json!({})).await["instances"], json!([]));
}

#[tokio::test]
async fn api_key_never_reaches_stderr_even_at_trace_level() {
    const SECRET: &str = "s3cr3t-api-key-0f9e8d";
    for (env, config) in
        [(vec![("MOCK_API_KEY", SECRET)], json!({})), (vec![], json!({"apiKey": SECRET}))]
    {
        let mut env = env;
        env.push(("CAA_PLUGIN_LOG_LEVEL", "trace"));
        let mut p = Plugin::spawn(&env);
        p.initialize(config).await;
        let verified =
            p.call("verifyConfig", json!({"operationId": "v-1", "deadlineMs": 10000})).await;
        assert_eq!(verified["ok"], true);
        p.call("createInstance", create_params("op-k", "sb-k")).await;
        p.close_stdin();
        assert!(p.wait().await.success());
        let stderr = p.stderr();
        assert!(!stderr.is_empty(), "expected trace output");
        assert!(!stderr.contains(SECRET), "secret leaked to stderr:\n{stderr}");
    }
}

#[tokio::test]
async fn bad_api_key_is_unauthorized() {
    let mut p = Plugin::spawn(&[("MOCK_API_KEY", "bad")]);
    p.initialize(json!({})).await;
    let id = p.request("verifyConfig", json!({"operationId": "v-1", "deadlineMs": 10000})).await;
    let answer = p.response(id).await;
    assert_eq!(answer["error"]["code"], 2, "{answer}");
}
