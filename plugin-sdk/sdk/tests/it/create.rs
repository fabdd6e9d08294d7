//! Long-running calls: cancellation, deadlines, panics and createInstance replay.

use serde_json::json;

use crate::support::{Client, cancel_line, code, create_line, request, verify_line};

#[tokio::test]
async fn cancel_is_answered_by_the_handler_with_instance_id() {
    let mut c = Client::ready().await;
    c.send(&create_line(2, "op-coop", "cooperative", 60_000)).await;
    let progress = c.recv().await;
    assert_eq!(progress["method"], "$/progress");
    assert_eq!(progress["params"]["instanceId"], "i-coop");
    c.send(&cancel_line("op-coop")).await;
    let answer = c.recv_answer().await;
    assert_eq!(
        (code(&answer), answer["error"]["data"]["instanceId"].clone()),
        (-32800, json!("i-coop"))
    );
}

#[tokio::test]
async fn handler_ignoring_cancel_is_answered_by_the_sdk_after_the_grace() {
    let mut c = Client::ready().await;
    c.send(&create_line(2, "op-stuck", "ignore-cancel", 60_000)).await;
    assert_eq!(c.recv().await["params"]["instanceId"], "i-stuck");
    c.send(&cancel_line("op-stuck")).await;
    let answer = c.recv_answer().await;
    assert_eq!(answer["id"], 2);
    assert_eq!(
        (code(&answer), answer["error"]["data"]["instanceId"].clone()),
        (-32800, json!("i-stuck"))
    );
    assert_eq!(c.call(&verify_line(3)).await["result"]["ok"], true);
}

#[tokio::test]
async fn deadline_overrun_gets_deadline_exceeded() {
    // A create that announced no instance gets -32603 instead (tests/it/abandoned.rs).
    let mut c = Client::ready().await;
    let answer = c.call(&create_line(3, "op-stuck", "ignore-cancel", 300)).await;
    assert_eq!(
        (code(&answer), answer["error"]["data"]["instanceId"].clone()),
        (8, json!("i-stuck"))
    );
    assert_eq!(answer["error"]["data"]["retryable"], true);
}

#[tokio::test]
async fn panic_is_an_internal_error_and_serving_goes_on() {
    let mut c = Client::ready().await;
    let answer = c.call(&create_line(2, "op-panic", "panic", 60_000)).await;
    assert_eq!(answer["id"], 2);
    assert_eq!(
        (code(&answer), answer["error"]["data"]["instanceId"].clone()),
        (-32603, json!("i-panic"))
    );
    assert_eq!(answer["error"]["message"], "provider panicked");
    assert_eq!(c.call(&verify_line(3)).await["result"]["ok"], true);
    assert_eq!(
        c.call(&create_line(4, "op-next", "ok", 60_000)).await["result"]["instanceId"],
        "i-2"
    );
}

#[tokio::test]
async fn application_errors_keep_their_data() {
    let mut c = Client::ready().await;
    let answer = c.call(&create_line(2, "op-fail", "fail", 60_000)).await;
    assert_eq!(code(&answer), 4);
    assert_eq!(answer["error"]["data"]["cloudCode"], "Stockout");
    assert_eq!(answer["error"]["data"]["class"], "outOfResources");
}

#[tokio::test]
async fn repeated_operation_returns_the_same_instance_without_a_second_call() {
    let mut c = Client::ready().await;
    let first = c.call(&create_line(2, "op-1", "ok", 60_000)).await;
    assert_eq!(first["result"]["instanceId"], "i-1");
    // A retry carries a smaller budget; it still asks for the same instance.
    let again = c.call(&create_line(3, "op-1", "ok", 30_000)).await;
    assert_eq!(again["result"], first["result"]);
    // The provider ran once: the next new operation is its second call.
    assert_eq!(c.call(&create_line(4, "op-2", "ok", 60_000)).await["result"]["instanceId"], "i-2");
}

#[tokio::test]
async fn repeated_operation_with_different_params_is_a_conflict() {
    let mut c = Client::ready().await;
    assert_eq!(c.call(&create_line(2, "op-1", "ok", 60_000)).await["result"]["instanceId"], "i-1");
    let answer = c.call(&create_line(3, "op-1", "slow", 60_000)).await;
    assert_eq!(code(&answer), 9);
}

#[tokio::test]
async fn failures_are_not_replayed() {
    let mut c = Client::ready().await;
    assert_eq!(code(&c.call(&create_line(2, "op-f", "fail", 60_000)).await), 4);
    assert_eq!(code(&c.call(&create_line(3, "op-f", "fail", 60_000)).await), 4);
    assert_eq!(c.call(&create_line(4, "op-x", "ok", 60_000)).await["result"]["instanceId"], "i-3");
}

#[tokio::test]
async fn concurrent_duplicates_share_one_call() {
    let mut c = Client::ready().await;
    c.send(&create_line(2, "op-g", "gate", 60_000)).await;
    c.send(&create_line(3, "op-g", "gate", 60_000)).await;
    c.send(&verify_line(4)).await; // releases the gate
    let mut answers = vec![c.recv_answer().await, c.recv_answer().await, c.recv_answer().await];
    answers.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(answers[0]["result"]["instanceId"], "i-1", "{answers:?}");
    assert_eq!(answers[1]["result"], answers[0]["result"]);
    assert_eq!(c.call(&create_line(5, "op-h", "ok", 60_000)).await["result"]["instanceId"], "i-2");
}

#[tokio::test]
async fn cancel_reaches_every_request_of_the_operation() {
    let mut c = Client::ready().await;
    c.send(&create_line(2, "op-c", "cooperative", 60_000)).await;
    assert_eq!(c.recv().await["method"], "$/progress");
    c.send(&create_line(3, "op-c", "cooperative", 60_000)).await;
    c.send(&request(4, "$/ping", json!({}))).await;
    assert_eq!(c.recv_answer().await["id"], 4);
    c.send(&cancel_line("op-c")).await;
    let mut answers = [c.recv_answer().await, c.recv_answer().await];
    answers.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(code(&answers[0]), -32800);
    assert_eq!(code(&answers[1]), -32800);
}
