//! Bad input of every kind gets its JSON-RPC error and the connection keeps working.

use serde_json::json;

use crate::support::{
    Client, Listing, Scripted, cancel_line, code, create_line, init_line, opts, request,
    verify_line,
};

#[tokio::test]
async fn garbage_line_gets_parse_error_with_null_id() {
    let mut c = Client::ready().await;
    let answer = c.call("this is not json").await;
    assert_eq!((code(&answer), answer["id"].clone()), (-32700, json!(null)));
    assert_eq!(c.call(&verify_line(2)).await["result"]["ok"], true);
}

#[tokio::test]
async fn oversized_line_gets_invalid_request_with_null_id() {
    let mut c = Client::ready().await;
    let answer = c
        .call(&format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"x","params":"{}"}}"#,
            "a".repeat(5000)
        ))
        .await;
    assert_eq!((code(&answer), answer["id"].clone()), (-32600, json!(null)));
    assert_eq!(c.call(&verify_line(2)).await["result"]["ok"], true);
}

#[tokio::test]
async fn invalid_utf8_gets_parse_error() {
    let mut c = Client::ready().await;
    c.send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"\xff\xfe\"}").await;
    let answer = c.recv().await;
    assert_eq!((code(&answer), answer["id"].clone()), (-32700, json!(null)));
    assert_eq!(c.call(&verify_line(2)).await["result"]["ok"], true);
}

#[tokio::test]
async fn batch_gets_invalid_request_with_null_id() {
    let mut c = Client::ready().await;
    let answer = c.call(&format!("[{}]", verify_line(2))).await;
    assert_eq!((code(&answer), answer["id"].clone()), (-32600, json!(null)));
}

#[tokio::test]
async fn wrong_shape_gets_invalid_request() {
    let mut c = Client::ready().await;
    assert_eq!(code(&c.call(r#"{"id":4,"method":"verifyConfig"}"#).await), -32600);
    assert_eq!(code(&c.call("42").await), -32600);
}

#[tokio::test]
async fn unknown_method_gets_method_not_found() {
    let mut c = Client::ready().await;
    let answer = c.call(&request(2, "launchRockets", json!({}))).await;
    assert_eq!((code(&answer), answer["id"].clone()), (-32601, json!(2)));
}

#[tokio::test]
async fn unimplemented_optional_method_gets_method_not_found() {
    let mut c = Client::ready().await;
    assert_eq!(code(&c.call(&request(2, "listInstances", json!({}))).await), -32601);
    // Advertised but left at the trait default: the provider's own methodNotFound.
    let mut c = Client::start::<Listing>(opts(&[]));
    let init = init_line(json!({})).replace("\"scripted\"", "\"listing\"");
    assert_eq!(c.call(&init).await["result"]["protocolVersion"], 1);
    assert_eq!(code(&c.call(&request(2, "listInstances", json!({}))).await), -32601);
}

#[tokio::test]
async fn invalid_params_get_invalid_params_without_echoing_values() {
    let mut c = Client::ready().await;
    let line =
        request(2, "createInstance", json!({"operationId": "op", "deadlineMs": "s3cr3t-value"}));
    let answer = c.call(&line).await;
    assert_eq!(code(&answer), -32602);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(!message.contains("s3cr3t"), "{message}");
    assert!(message.contains("expected u64"), "{message}");
    let answer =
        c.call(&request(3, "createInstance", json!({"operationId": "op", "deadlineMs": 1}))).await;
    assert!(answer["error"]["message"].as_str().unwrap().contains("missing field"), "{answer}");
    let answer = c.call(r#"{"jsonrpc":"2.0","id":4,"method":"deleteInstance"}"#).await;
    assert_eq!(code(&answer), -32602);
    // Methods whose params are empty accept missing params.
    assert_eq!(c.call(r#"{"jsonrpc":"2.0","id":5,"method":"$/ping"}"#).await["result"], json!({}));
}

#[tokio::test]
async fn requests_before_initialize_get_not_initialized_but_ping_works() {
    let mut c = Client::start::<Scripted>(opts(&[]));
    let answer = c.call(&verify_line(2)).await;
    assert_eq!((code(&answer), answer["id"].clone()), (-32002, json!(2)));
    assert_eq!(c.call(&request(3, "$/ping", json!({}))).await["result"], json!({}));
    assert_eq!(c.call(&init_line(json!({"zone": "z"}))).await["result"]["protocolVersion"], 1);
    assert_eq!(c.call(&verify_line(4)).await["result"]["ok"], true);
}

#[tokio::test]
async fn second_initialize_is_refused() {
    let mut c = Client::ready().await;
    assert_eq!(code(&c.call(&init_line(json!({"zone": "z"}))).await), -32600);
}

#[tokio::test]
async fn requests_after_teardown_get_invalid_request() {
    let mut c = Client::ready().await;
    assert_eq!(
        c.call(&request(2, "teardown", json!({}))).await,
        json!({"jsonrpc": "2.0", "id": 2, "result": null})
    );
    assert_eq!(code(&c.call(&verify_line(3)).await), -32600);
    assert_eq!(code(&c.call(&create_line(4, "op", "ok", 1000)).await), -32600);
    let (rest, outcome) = c.finish().await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(outcome, caa_plugin_sdk::ServeOutcome::Eof);
}

#[tokio::test]
async fn a_request_on_the_line_right_after_teardown_is_refused() {
    let mut c = Client::ready().await;
    c.send(&request(2, "teardown", json!({}))).await;
    c.send(&verify_line(3)).await;
    let mut answers = [c.recv_answer().await, c.recv_answer().await];
    answers.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "id": 2, "result": null}));
    assert_eq!(code(&answers[1]), -32600);
}

#[tokio::test]
async fn duplicate_request_id_is_refused_while_the_first_runs() {
    let mut c = Client::ready().await;
    c.send(&create_line(7, "op-a", "gate", 60_000)).await;
    let dup = c.call(&create_line(7, "op-b", "ok", 60_000)).await;
    assert_eq!((code(&dup), dup["id"].clone()), (-32600, json!(7)));
    assert!(dup["error"]["message"].as_str().unwrap().contains("duplicate request id"));
    c.send(&verify_line(8)).await; // releases the gate
    let mut ids = [c.recv_answer().await, c.recv_answer().await];
    ids.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(ids[0]["result"]["instanceId"], "i-1");
    assert_eq!(ids[1]["result"]["ok"], true);
    // The id is free again once answered.
    assert_eq!(c.call(&create_line(7, "op-c", "ok", 60_000)).await["result"]["instanceId"], "i-2");
}

#[tokio::test]
async fn version_mismatch_names_supported_and_requested() {
    let mut c = Client::start::<Scripted>(opts(&[]));
    let line = init_line(json!({"zone": "z"}))
        .replace("\"protocolVersions\":[1]", "\"protocolVersions\":[2,3]");
    let answer = c.call(&line).await;
    assert_eq!(code(&answer), -32602);
    assert_eq!(answer["error"]["data"]["supported"], json!([1]));
    assert_eq!(answer["error"]["data"]["requested"], json!([2, 3]));
}

#[tokio::test]
async fn provider_name_mismatch_names_both() {
    let mut c = Client::start::<Scripted>(opts(&[]));
    let answer = c.call(&init_line(json!({"zone": "z"})).replace("\"scripted\"", "\"aws\"")).await;
    assert_eq!(code(&answer), -32602);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("aws") && message.contains("scripted"), "{message}");
}

#[tokio::test]
async fn initialize_result_carries_identity_and_schema() {
    let mut c = Client::start::<Scripted>(opts(&[]));
    let result = c.call(&init_line(json!({"zone": "z"}))).await["result"].clone();
    assert_eq!(result["plugin"]["name"], "scripted");
    assert!(result["plugin"]["sdk"].as_str().unwrap().starts_with("caa-plugin-sdk-rust/"));
    assert_eq!(result["capabilities"]["cancel"], true);
    assert_eq!(result["configSchema"]["options"][0]["name"], "region");
}

#[tokio::test]
async fn unknown_notifications_and_stray_responses_are_ignored() {
    let mut c = Client::ready().await;
    c.send(r#"{"jsonrpc":"2.0","method":"$/somethingNew","params":{}}"#).await;
    c.send(r#"{"jsonrpc":"2.0","method":"$/cancel","params":{"operationId":"nobody"}}"#).await;
    c.send(r#"{"jsonrpc":"2.0","method":"$/setLogLevel","params":{"level":"debug"}}"#).await;
    c.send(r#"{"jsonrpc":"2.0","id":99,"result":{}}"#).await;
    c.send("").await;
    assert_eq!(c.call(&verify_line(2)).await["id"], 2);
}

#[tokio::test]
async fn requests_pipelined_after_initialize_find_the_provider_ready() {
    let mut c = Client::start::<Scripted>(opts(&[]));
    c.send(&init_line(json!({"zone": "z"}))).await;
    c.send(&create_line(2, "op", "ok", 60_000)).await;
    let (rest, outcome) = c.finish().await;
    assert_eq!(rest[0]["result"]["protocolVersion"], 1, "{rest:?}");
    assert_eq!(rest[1]["result"]["instanceId"], "i-1", "{rest:?}");
    assert_eq!(outcome, caa_plugin_sdk::ServeOutcome::Eof);
}

#[tokio::test]
async fn host_declining_progress_gets_none_but_answers_keep_the_instance_id() {
    let mut c = Client::start::<Scripted>(opts(&[]));
    let init = init_line(json!({"zone": "z"})).replace(
        "\"provider\"",
        "\"hostCapabilities\":{\"progress\":false,\"cancel\":true},\"provider\"",
    );
    assert_eq!(c.call(&init).await["result"]["protocolVersion"], 1);
    c.send(&create_line(2, "op-np", "ignore-cancel", 60_000)).await;
    c.send(&cancel_line("op-np")).await;
    // The very next line is the answer: no `$/progress` came first.
    let answer = c.recv().await;
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(
        (code(&answer), answer["error"]["data"]["instanceId"].clone()),
        (-32800, json!("i-stuck"))
    );
}
