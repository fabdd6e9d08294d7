//! The `protocol` suite: framing, the handshake and the error answers every plugin gives without
//! touching a cloud (docs/plugin-protocol.md, "Transport" and "Errors").

use serde_json::{Value, json};

use super::raw::{RawSession, error_code, initialize_params};
use super::{Check, Outcome, Target, check, ensure};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(describe_is_valid_and_matches_initialize),
        check!(request_before_initialize_gets_not_initialized),
        check!(unsupported_version_gets_invalid_params_with_supported),
        check!(second_initialize_is_rejected),
        check!(garbage_line_gets_parse_error_and_connection_survives),
        check!(invalid_utf8_gets_parse_error),
        check!(oversized_line_is_rejected_and_connection_survives),
        check!(batch_gets_invalid_request),
        check!(unknown_method_gets_method_not_found),
        check!(invalid_params_get_invalid_params),
        check!(unknown_notifications_are_ignored),
        check!(ping_is_answered),
        check!(large_non_ascii_user_data_round_trips),
        check!(request_after_teardown_is_rejected),
    ]
}

async fn session(t: &Target) -> anyhow::Result<RawSession> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    s.initialize(&t.config).await?;
    Ok(s)
}

/// Closes the session and checks that every stdout line it produced was JSON-RPC.
async fn finish(mut s: RawSession) -> anyhow::Result<Outcome> {
    s.close_stdin();
    let status = s.wait_exit(std::time::Duration::from_secs(15)).await;
    ensure!(s.bad_lines.is_empty(), "non-protocol lines on stdout: {:?}", s.bad_lines);
    ensure!(
        status.is_some_and(|s| s.success()),
        "plugin did not exit 0 on EOF (status {status:?})"
    );
    Ok(Outcome::Pass)
}

fn expect_error(resp: &Value, code: i64) -> anyhow::Result<()> {
    ensure!(error_code(resp) == Some(code), "expected error {code}, got {resp}");
    Ok(())
}

async fn describe_is_valid_and_matches_initialize(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    let resp = s.initialize(&t.config).await?;
    let result: caa_plugin_proto::InitializeResult =
        serde_json::from_value(resp["result"].clone())?;
    ensure!(
        result.plugin.name == t.describe.plugin.name,
        "initialize name {} != describe name",
        result.plugin.name
    );
    ensure!(
        result.capabilities == t.describe.capabilities,
        "initialize capabilities differ from --describe"
    );
    ensure!(
        result.config_schema == t.describe.config_schema,
        "initialize configSchema differs from --describe"
    );
    ensure!(
        t.describe.protocol_versions.contains(&result.protocol_version),
        "chosen version not in describe's list"
    );
    finish(s).await
}

async fn request_before_initialize_gets_not_initialized(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    let resp =
        s.request(5, "verifyConfig", json!({"operationId": "c-1", "deadlineMs": 1000})).await?;
    expect_error(&resp, -32002)?;
    s.initialize(&t.config).await?;
    finish(s).await
}

async fn unsupported_version_gets_invalid_params_with_supported(
    t: &Target,
) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    let mut params = initialize_params(&t.config);
    params["protocolVersions"] = json!([9999]);
    let resp = s.request(1, "initialize", params).await?;
    expect_error(&resp, -32602)?;
    let supported = &resp["error"]["data"]["supported"];
    ensure!(
        supported.as_array().is_some_and(|a| !a.is_empty()),
        "error.data.supported missing: {resp}"
    );
    finish(s).await
}

async fn second_initialize_is_rejected(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    let resp = s.request(2, "initialize", initialize_params(&t.config)).await?;
    expect_error(&resp, -32600)?;
    finish(s).await
}

async fn garbage_line_gets_parse_error_and_connection_survives(
    t: &Target,
) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    s.send_bytes(b"this is not json {").await?;
    let resp = s.response(&Value::Null).await?;
    expect_error(&resp, -32700)?;
    let pong = s.request(3, "$/ping", json!({})).await?;
    ensure!(pong.get("result").is_some(), "ping after garbage failed: {pong}");
    finish(s).await
}

async fn invalid_utf8_gets_parse_error(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    s.send_bytes(
        b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"$/ping\",\"params\":{\"x\":\"\xff\xfe\"}}",
    )
    .await?;
    let resp = s.response(&Value::Null).await?;
    expect_error(&resp, -32700)?;
    finish(s).await
}

async fn oversized_line_is_rejected_and_connection_survives(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    let mut line = br#"{"jsonrpc":"2.0","id":8,"method":"$/ping","params":{"pad":""#.to_vec();
    line.extend(std::iter::repeat_n(b'a', caa_plugin_proto::DEFAULT_MAX_LINE_BYTES + 1024));
    line.extend_from_slice(br#""}}"#);
    s.send_bytes(&line).await?;
    let resp = s.response(&Value::Null).await?;
    let code = error_code(&resp);
    ensure!(
        code == Some(-32600) || code == Some(-32700),
        "expected -32600 for an oversized line, got {resp}"
    );
    let pong = s.request(9, "$/ping", json!({})).await?;
    ensure!(pong.get("result").is_some(), "ping after oversized line failed: {pong}");
    finish(s).await
}

async fn batch_gets_invalid_request(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    s.send(&json!([{"jsonrpc": "2.0", "id": 10, "method": "$/ping", "params": {}}])).await?;
    let resp = s.response(&Value::Null).await?;
    expect_error(&resp, -32600)?;
    finish(s).await
}

async fn unknown_method_gets_method_not_found(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    expect_error(&s.request(11, "noSuchMethod", json!({})).await?, -32601)?;
    expect_error(&s.request(12, "$/noSuchRequest", json!({})).await?, -32601)?;
    finish(s).await
}

async fn invalid_params_get_invalid_params(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    let resp =
        s.request(13, "createInstance", json!({"operationId": 5, "deadlineMs": "soon"})).await?;
    expect_error(&resp, -32602)?;
    let resp = s.request(14, "deleteInstance", json!({"operationId": "x"})).await?;
    expect_error(&resp, -32602)?;
    finish(s).await
}

async fn unknown_notifications_are_ignored(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    s.send(&json!({"jsonrpc": "2.0", "method": "$/somethingNew", "params": {"a": 1}})).await?;
    s.send(&json!({"jsonrpc": "2.0", "method": "$/cancel", "params": {"operationId": "never-started"}})).await?;
    let pong = s.request(15, "$/ping", json!({})).await?;
    ensure!(pong.get("result").is_some(), "ping after notifications failed: {pong}");
    finish(s).await
}

async fn ping_is_answered(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    let pong = s.request(16, "$/ping", json!({})).await?;
    ensure!(
        pong.get("result").is_some() || error_code(&pong) == Some(-32002),
        "ping before initialize: {pong}"
    );
    s.initialize(&t.config).await?;
    let pong = s.request(17, "$/ping", json!({})).await?;
    ensure!(pong.get("result").is_some(), "ping failed: {pong}");
    finish(s).await
}

async fn large_non_ascii_user_data_round_trips(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    let text = "#cloud-config\n# ünïcödé ✓ 日本語\n".repeat(1024 * 1024 / 40);
    let params = json!({
        "operationId": "conformance-large-userdata", "deadlineMs": 30000,
        "podName": "big", "podNamespace": "default", "sandboxId": "c0ffee00c0ffee00",
        "userData": text, "spec": {}, "tags": {"caa/sandbox-id": "c0ffee00c0ffee00"},
    });
    let resp = s.request(18, "createInstance", params).await?;
    ensure!(
        error_code(&resp).is_none_or(|c| c > -32700 && c != -32600),
        "1 MiB userData broke framing: {resp}"
    );
    if let Some(id) = resp["result"]["instanceId"].as_str() {
        let del = json!({"operationId": "conformance-large-userdata-del", "instanceId": id, "deadlineMs": 30000});
        s.request(19, "deleteInstance", del).await?;
    }
    finish(s).await
}

async fn request_after_teardown_is_rejected(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = session(t).await?;
    // Pipelined on purpose: the request on the line right after teardown is already refused.
    s.request_nowait(20, "teardown", json!({})).await?;
    s.request_nowait(21, "verifyConfig", json!({"operationId": "c-2", "deadlineMs": 1000})).await?;
    let resp = s.response(&json!(20)).await?;
    ensure!(resp.get("result") == Some(&Value::Null), "teardown should answer null: {resp}");
    expect_error(&s.response(&json!(21)).await?, -32600)?;
    expect_error(
        &s.request(22, "verifyConfig", json!({"operationId": "c-3", "deadlineMs": 1000})).await?,
        -32600,
    )?;
    finish(s).await
}
