//! Initialize-time config resolution, draining on EOF and on shutdown, and liveness while work
//! runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use caa_plugin_sdk::proto::LogLevel;
use caa_plugin_sdk::{ServeOptions, ServeOutcome};
use serde_json::json;

use crate::support::{Client, Scripted, code, create_line, init_line, opts, request, verify_line};

#[tokio::test]
async fn drain_on_eof_answers_in_flight_requests_first() {
    let mut c = Client::ready().await;
    c.send(&create_line(2, "op-1", "slow", 60_000)).await;
    c.send(&create_line(3, "op-2", "slow", 60_000)).await;
    let (rest, outcome) = c.finish().await;
    let mut ids: Vec<i64> = rest.iter().filter_map(|m| m["id"].as_i64()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![2, 3], "{rest:?}");
    assert!(
        rest.iter()
            .filter(|m| m.get("id").is_some())
            .all(|m| m["result"]["instanceId"].is_string())
    );
    assert_eq!(outcome, ServeOutcome::Eof);
}

#[tokio::test]
async fn shutdown_rejects_new_requests_and_answers_leftovers_with_cancelled() {
    let mut c = Client::ready().await;
    c.send(&create_line(2, "op-stuck", "ignore-cancel", 60_000)).await;
    assert_eq!(c.recv().await["method"], "$/progress");
    c.send(&create_line(3, "op-coop", "cooperative", 60_000)).await;
    assert_eq!(c.recv().await["method"], "$/progress");
    c.shut_down();
    // The cooperative handler sees the drain through ctx.cancelled() and answers itself; its
    // answer proves the drain began.
    let mut answers = BTreeMap::new();
    while !answers.contains_key(&3) {
        let answer = c.recv_answer().await;
        answers.insert(answer["id"].as_i64().unwrap(), answer);
    }
    c.send(&verify_line(4)).await;
    c.send(&request(5, "$/ping", json!({}))).await;
    while answers.len() < 4 {
        let answer = c.recv_answer().await;
        answers.insert(answer["id"].as_i64().unwrap(), answer);
    }
    assert_eq!(code(&answers[&3]), -32800);
    assert_eq!(code(&answers[&4]), -32600);
    assert!(answers[&4]["error"]["message"].as_str().unwrap().contains("shutting down"));
    assert_eq!(answers[&5]["result"], json!({}));
    assert_eq!(code(&answers[&2]), -32800);
    assert_eq!(answers[&2]["error"]["data"]["instanceId"], "i-stuck");
    let (_, outcome) = c.finish().await;
    assert_eq!(outcome, ServeOutcome::Shutdown);
}

#[tokio::test]
async fn ping_is_answered_while_a_slow_create_runs() {
    let mut c = Client::ready().await;
    c.send(&create_line(2, "op-g", "gate", 60_000)).await;
    assert_eq!(
        c.call(&request(3, "$/ping", json!({}))).await,
        json!({"jsonrpc": "2.0", "id": 3, "result": {}})
    );
    c.send(&verify_line(4)).await;
    let mut ids = vec![c.recv_answer().await["id"].as_i64(), c.recv_answer().await["id"].as_i64()];
    ids.sort_unstable();
    assert_eq!(ids, vec![Some(2), Some(4)]);
}

#[tokio::test]
async fn config_comes_from_initialize_then_env_then_default() {
    let mut c = Client::start::<Scripted>(opts(&[("TEST_ZONE", "z-env"), ("TEST_VERBOSE", "1")]));
    assert_eq!(c.call(&init_line(json!({}))).await["result"]["protocolVersion"], 1);
    let mut c =
        Client::start::<Scripted>(opts(&[("TEST_ZONE", "z-env"), ("TEST_VERBOSE", "maybe")]));
    let answer = c.call(&init_line(json!({"zone": "z-config", "verbose": true}))).await;
    assert_eq!(answer["result"]["protocolVersion"], 1, "config beats a bad env value: {answer}");
}

#[tokio::test]
async fn config_problems_are_reported_together() {
    let mut c =
        Client::start::<Scripted>(opts(&[("TEST_VERBOSE", "maybe"), ("TEST_TOKEN", "tok-s3cr3t")]));
    let answer = c.call(&init_line(json!({"colour": "blue", "maxVms": "many"}))).await;
    assert_eq!(code(&answer), 1);
    let problems = answer["error"]["data"]["problems"].as_array().unwrap();
    let fields: Vec<&str> = problems.iter().map(|p| p["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["colour", "zone", "verbose", "maxVms"], "{answer}");
    assert!(problems[1]["message"].as_str().unwrap().contains("TEST_ZONE"));
    assert!(problems[2]["message"].as_str().unwrap().contains("TEST_VERBOSE"));
    assert!(!answer.to_string().contains("s3cr3t") && !answer.to_string().contains("maybe"));
    // A failed initialize may be retried.
    assert_eq!(
        c.call(&init_line(json!({"zone": "z", "verbose": false}))).await["result"]["protocolVersion"],
        1
    );
}

#[tokio::test]
async fn init_panic_is_an_internal_error() {
    let mut c = Client::start::<Scripted>(opts(&[]));
    assert_eq!(code(&c.call(&init_line(json!({"zone": "panic"}))).await), -32603);
    assert_eq!(c.call(&request(2, "$/ping", json!({}))).await["result"], json!({}));
}

#[tokio::test]
async fn log_level_follows_initialize_and_set_log_level() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let options = ServeOptions {
        on_log_level: Some(Arc::new(move |level| record.lock().unwrap().push(level))),
        ..opts(&[])
    };
    let mut c = Client::start::<Scripted>(options);
    let init = init_line(json!({"zone": "z"}))
        .replace("\"provider\"", "\"logLevel\":\"warn\",\"provider\"");
    assert_eq!(c.call(&init).await["result"]["protocolVersion"], 1);
    c.send(r#"{"jsonrpc":"2.0","method":"$/setLogLevel","params":{"level":"trace"}}"#).await;
    assert_eq!(c.call(&verify_line(2)).await["id"], 2);
    assert_eq!(*seen.lock().unwrap(), vec![LogLevel::Warn, LogLevel::Trace]);
}
