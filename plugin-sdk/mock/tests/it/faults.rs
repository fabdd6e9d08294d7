//! The scripted faults as the host sees them: stray stdout output, a crash after the instance
//! id was announced, a stderr flood, garbage lines, duplicate answers, panics and injected
//! errors.

use caa_provider_mock::faults::{
    CRASH_EXIT_CODE, GARBAGE_LINE, STDERR_FLOOD_BYTES, STDOUT_PRINT_TEXT,
};
use serde_json::json;

use crate::support::{Line, Plugin, create_params};

#[tokio::test]
async fn stdout_print_lands_on_stderr_and_stdout_stays_json() {
    let mut p = Plugin::spawn(&[("MOCK_FAULTS", "stdoutPrint")]);
    p.initialize(json!({})).await;
    p.call("createInstance", create_params("op-p", "sb-p")).await;
    p.close_stdin();
    // Every remaining stdout line must be JSON (next_message panics otherwise).
    while p.next_message().await.is_some() {}
    assert!(p.wait().await.success());
    assert!(p.stderr().contains(STDOUT_PRINT_TEXT), "stderr:\n{}", p.stderr());
}

#[tokio::test]
async fn crash_mid_create_announces_the_instance_before_dying() {
    let mut p = Plugin::spawn(&[("MOCK_FAULTS", "crashMidCreate")]);
    p.initialize(json!({})).await;
    p.request("createInstance", create_params("op-x", "sb-x")).await;
    let mut announced = None;
    while let Some(message) = p.next_message().await {
        assert!(message.get("id").is_none(), "the create must not be answered: {message}");
        if message["params"]["stage"] == "instanceCreated" {
            announced = message["params"]["instanceId"].as_str().map(str::to_owned);
        }
    }
    let status = p.wait().await;
    assert!(announced.is_some_and(|id| id.starts_with("mock-")), "no instanceCreated progress");
    assert_eq!(status.code(), Some(CRASH_EXIT_CODE), "{status:?}");
}

#[tokio::test]
async fn stderr_flood_does_not_stall_the_protocol() {
    let mut p = Plugin::spawn(&[("MOCK_FAULTS", "stderrFlood")]);
    p.initialize(json!({})).await;
    let created = p.call("createInstance", create_params("op-f", "sb-f")).await;
    assert!(created["instanceId"].is_string());
    assert_eq!(p.call("$/ping", json!({})).await, json!({}));
    p.close_stdin();
    assert!(p.wait().await.success());
    assert!(p.stderr_len() >= STDERR_FLOOD_BYTES, "only {} stderr bytes", p.stderr_len());
}

#[tokio::test]
async fn garbage_and_duplicate_answers() {
    let mut p = Plugin::spawn(&[("MOCK_FAULTS", "garbage,answerTwice")]);
    p.initialize(json!({})).await;
    let id = p.request("createInstance", create_params("op-g", "sb-g")).await;
    let mut garbage = 0;
    let mut answers = Vec::new();
    while answers.len() < 2 {
        match p.next_line().await.expect("stdout open") {
            Line::Raw(line) => {
                assert_eq!(line.as_bytes(), GARBAGE_LINE);
                garbage += 1;
            }
            Line::Json(message) if message.get("id") == Some(&json!(id)) => answers.push(message),
            Line::Json(_) => {}
        }
    }
    assert_eq!(garbage, 1);
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0]["result"]["instanceId"].is_string(), "{}", answers[0]);
}

#[tokio::test]
async fn panics_and_injected_errors_are_answered() {
    let mut p = Plugin::spawn(&[
        ("MOCK_FAULTS", "panic:listInstances"),
        ("MOCK_ERRORS", "createInstance=capacityUnavailable"),
    ]);
    p.initialize(json!({})).await;
    let id = p.request("listInstances", json!({})).await;
    assert_eq!(p.response(id).await["error"]["code"], -32603);
    let id = p.request("createInstance", create_params("op-e", "sb-e")).await;
    let answer = p.response(id).await;
    assert_eq!(answer["error"]["code"], 4, "{answer}");
    assert!(answer["error"]["data"].get("instanceId").is_none(), "{answer}");
    // The plugin is still serving.
    assert_eq!(p.call("$/ping", json!({})).await, json!({}));
}
