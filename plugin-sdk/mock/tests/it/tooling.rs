//! The `caa-plugin` tooling against the real mock binary: every conformance suite passes, and
//! `call` streams progress and returns the result through the same host library the adaptor uses.

use std::collections::BTreeMap;

use caa_plugin::call::{CallOutcome, CallRequest, call};
use caa_plugin::conformance::{self, Suite, Target};
use serde_json::json;

use crate::support::BIN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suites_pass_on_the_mock() {
    let describe = caa_plugin::describe(BIN.as_ref()).await.unwrap();
    let target = Target { plugin: BIN.into(), config: json!({}), describe };
    let mut lines = Vec::new();
    let report = conformance::run(&target, Suite::All, |l| lines.push(l.to_owned())).await;
    assert_eq!(report.failed, 0, "{lines:#?}");
    assert_eq!(report.skipped, 0, "{lines:#?}");
    assert!(report.passed >= 30, "{lines:#?}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with(&format!("conformance: {} passed, 0 failed", report.passed))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_progress_then_the_result() {
    let req = CallRequest {
        plugin: BIN.into(),
        method: "createInstance".to_owned(),
        params: json!({"podName": "p", "podNamespace": "ns", "sandboxId": "0123456789abcdef", "userData": "x"}),
        config: BTreeMap::from([("latencyMs".to_owned(), json!({"createInstance": "50"}))]),
        pass_env: Vec::new(),
        sha256: None,
        timeout: None,
    };
    let mut stages = Vec::new();
    let outcome = call(req, |p| stages.push(p["stage"].as_str().unwrap_or_default().to_owned()))
        .await
        .unwrap();
    let CallOutcome::Result(result) = outcome else { panic!("call failed: {outcome:?}") };
    assert!(result["instanceId"].as_str().unwrap().starts_with("mock-"), "{result}");
    assert_eq!(result["ips"], json!(["127.0.0.1"]));
    assert!(stages.contains(&"instanceCreated".to_owned()), "{stages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_reports_a_plugin_error_with_its_code() {
    let req = CallRequest {
        plugin: BIN.into(),
        method: "createInstance".to_owned(),
        params: json!({"podName": "p", "podNamespace": "ns", "sandboxId": "0123456789abcdef", "userData": "x"}),
        config: BTreeMap::from([(
            "errors".to_owned(),
            json!({"createInstance": "capacityUnavailable"}),
        )]),
        pass_env: Vec::new(),
        sha256: None,
        timeout: None,
    };
    match call(req, |_| {}).await.unwrap() {
        CallOutcome::Failed(caa_plugin_host::CallError::Rpc(e)) => assert_eq!(e.code, 4),
        other => panic!("expected capacityUnavailable, got {other:?}"),
    }
}
