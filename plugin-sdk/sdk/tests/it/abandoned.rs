//! Handlers the SDK answered for: a create with no announced instance is indeterminate
//! (-32603), nothing of the request goes out after its response, and a VM the abandoned handler
//! still creates is logged as an error and never replayed as a success.

use caa_test_support::LogCapture;
use serde_json::{Value, json};

use crate::support::{Client, cancel_line, code, create_line, request, verify_line};

/// Routes the current thread's log output (the test runtime runs every task on it) into `logs`.
fn install(logs: &LogCapture) -> tracing::subscriber::DefaultGuard {
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .finish();
    tracing::subscriber::set_default(subscriber)
}

fn delete_line(id: i64, instance_id: &str) -> String {
    request(
        id,
        "deleteInstance",
        json!({"operationId": format!("del-{id}"), "instanceId": instance_id, "deadlineMs": 60000}),
    )
}

#[tokio::test]
async fn overrun_create_without_announced_instance_is_indeterminate() {
    let mut c = Client::ready().await;
    let answer = c.call(&create_line(2, "op-hang", "hang", 50)).await;
    assert_eq!(code(&answer), -32603, "{answer}");
    assert_eq!(answer["error"]["message"], "create abandoned by the provider; outcome unknown");
    assert!(answer["error"].get("data").is_none(), "{answer}");

    c.send(&create_line(3, "op-hang-2", "hang", 60_000)).await;
    c.send(&cancel_line("op-hang-2")).await;
    let answer = c.recv_answer().await;
    assert_eq!((answer["id"].clone(), code(&answer)), (json!(3), -32603), "{answer}");

    // Methods other than createInstance keep their codes.
    c.send(&create_line(4, "op-stuck", "ignore-cancel", 60_000)).await;
    c.send(&cancel_line("op-stuck")).await;
    let answer = c.recv_answer().await;
    assert_eq!(
        (code(&answer), answer["error"]["data"]["instanceId"].clone()),
        (-32800, json!("i-stuck"))
    );
}

#[tokio::test]
async fn late_instance_is_logged_never_announced_after_the_answer_nor_replayed() {
    let logs = LogCapture::default();
    let _guard = install(&logs);
    let mut c = Client::ready().await;
    // Announces nothing and overruns its deadline: the SDK answers for it.
    let answer = c.call(&create_line(2, "op-late", "late", 50)).await;
    assert_eq!((answer["id"].clone(), code(&answer)), (json!(2), -32603), "{answer}");

    // Releases the abandoned handler, which announces i-late-1 and returns it; the delete of
    // `wait-late` answers only once it has.
    c.send(&verify_line(3)).await;
    c.send(&delete_line(4, "wait-late")).await;
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|m| m["id"] == 4) {
        seen.push(c.recv().await);
    }
    assert!(
        seen.iter().all(|m| m["method"] != "$/progress"),
        "progress after the answer: {seen:?}"
    );
    assert!(seen.iter().any(|m| m["id"] == 3 && m["result"]["ok"] == true), "{seen:?}");

    // The retry runs the provider again instead of replaying the abandoned success.
    let retry = c.call(&create_line(5, "op-late", "late", 60_000)).await;
    assert_eq!(retry["result"]["instanceId"], "i-late-2", "{retry}");

    let text = logs.text();
    let leak = text
        .lines()
        .find(|l| l.contains("created instance i-late-1 after the SDK answered"))
        .unwrap_or_else(|| panic!("no leak report in the logs:\n{text}"));
    assert!(leak.contains("ERROR"), "{leak}");
    assert!(text.contains("the instance may be leaked"), "{text}");
}
