//! Unit tests of [`MockProvider`] called directly with detached contexts; the process-level
//! behaviour (faults that crash, hang or write to the streams) is tested in `tests/`.

use std::collections::BTreeMap;
use std::time::Duration;

use caa_plugin_proto::{
    CreateInstanceParams, DeleteInstanceParams, ErrorCode, InstanceSpec, ListInstancesParams,
};
use caa_plugin_sdk::{Config, Ctx, Provider};
use serde_json::{Value, json};

use super::*;

async fn provider(config: Value) -> MockProvider {
    let Value::Object(values) = config else { panic!("config must be an object") };
    let values: BTreeMap<String, Value> = values.into_iter().collect();
    MockProvider::init(Config::from_values(values)).await.expect("init")
}

fn ctx(op: &str) -> Ctx {
    Ctx::detached(op, Duration::from_secs(60))
}

fn params(op: &str, spec: InstanceSpec) -> CreateInstanceParams {
    CreateInstanceParams {
        operation_id: op.to_owned(),
        deadline_ms: 60_000,
        pod_name: "nginx".to_owned(),
        pod_namespace: "default".to_owned(),
        sandbox_id: "0123456789abcdef".to_owned(),
        user_data: "#cloud-config\n".to_owned(),
        user_data_format: None,
        spec,
        tags: BTreeMap::from([("caa/operation-id".to_owned(), op.to_owned())]),
    }
}

async fn create(
    p: &MockProvider,
    op: &str,
    spec: InstanceSpec,
) -> Result<CreateInstanceResult, RpcError> {
    p.create_instance(ctx(op), params(op, spec)).await
}

fn delete_params(id: &str) -> DeleteInstanceParams {
    DeleteInstanceParams {
        operation_id: "del".to_owned(),
        instance_id: id.to_owned(),
        sandbox_id: None,
        deadline_ms: 1000,
    }
}

#[tokio::test]
async fn create_list_delete_round_trip() {
    let p = provider(json!({"ip": "10.0.0.7"})).await;
    let r = create(&p, "op1", InstanceSpec::default()).await.unwrap();
    assert!(r.instance_id.starts_with("mock-") && r.instance_id.len() == 17, "{}", r.instance_id);
    assert!(r.instance_id[5..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(r.name, "podvm-nginx-01234567");
    assert_eq!(r.ips, ["10.0.0.7"]);
    assert_eq!(r.provider_data.as_ref().unwrap()["userDataBytes"], json!(14));

    let tags = BTreeMap::from([("caa/operation-id".to_owned(), "op1".to_owned())]);
    let listed = p.list_instances(ctx("l"), ListInstancesParams { tags }).await.unwrap().instances;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].instance_id.as_str(), listed[0].state.as_str()),
        (r.instance_id.as_str(), "running")
    );

    let d = p.delete_instance(ctx("d"), delete_params(&r.instance_id)).await.unwrap();
    assert!(d.deleted);
    let again = p.delete_instance(ctx("d"), delete_params(&r.instance_id)).await.unwrap();
    assert_eq!((again.deleted, again.reason.as_deref()), (false, Some("notFound")));
}

#[tokio::test]
async fn same_operation_replays_and_different_params_conflict() {
    let p = provider(json!({})).await;
    let first = create(&p, "op1", InstanceSpec::default()).await.unwrap();
    let mut retry = params("op1", InstanceSpec::default());
    retry.deadline_ms = 5;
    assert_eq!(p.create_instance(ctx("op1"), retry).await.unwrap(), first);
    let spec = InstanceSpec { vcpus: 4, ..InstanceSpec::default() };
    assert_eq!(create(&p, "op1", spec).await.unwrap_err().kind(), ErrorCode::Conflict);
    assert_eq!(p.store.len(), 1);
}

#[tokio::test]
async fn long_names_are_cut_to_63_characters() {
    let p = provider(json!({})).await;
    let mut long = params("op1", InstanceSpec::default());
    long.pod_name = "p".repeat(100);
    let r = p.create_instance(ctx("op1"), long).await.unwrap();
    assert_eq!(r.name.len(), 63);
    assert!(r.name.starts_with("podvm-ppp"));
}

#[tokio::test]
async fn invalid_and_unsupported_requests() {
    let p = provider(json!({})).await;
    let code = |r: Result<CreateInstanceResult, RpcError>| r.unwrap_err().kind();
    let mut no_sandbox = params("op1", InstanceSpec::default());
    no_sandbox.sandbox_id.clear();
    assert_eq!(code(p.create_instance(ctx("op1"), no_sandbox).await), ErrorCode::InvalidParams);
    assert_eq!(
        code(p.create_instance(ctx(""), params("", InstanceSpec::default())).await),
        ErrorCode::InvalidParams
    );
    let multi = InstanceSpec { multi_nic: true, ..InstanceSpec::default() };
    assert_eq!(code(create(&p, "op2", multi).await), ErrorCode::UnsupportedSpec);
    let gpu = InstanceSpec { gpus: 1, ..InstanceSpec::default() };
    assert_eq!(code(create(&p, "op3", gpu).await), ErrorCode::UnsupportedSpec);
    let riscv = InstanceSpec { arch: "riscv64".to_owned(), ..InstanceSpec::default() };
    assert_eq!(code(create(&p, "op4", riscv).await), ErrorCode::UnsupportedSpec);
    assert!(p.store.is_empty());
}

#[tokio::test]
async fn instance_types_are_selected_and_reported() {
    let p = provider(
        json!({"instanceTypes": ["m.small:2:4096", "m.large:8:16384", "m.gpu:8:65536:1"]}),
    )
    .await;
    let data = |r: CreateInstanceResult| r.provider_data.unwrap()["instanceType"].clone();
    let r = create(&p, "op1", InstanceSpec::default()).await.unwrap();
    assert_eq!(data(r), json!("m.small"));
    let r =
        create(&p, "op2", InstanceSpec { vcpus: 4, memory_mib: 4096, ..InstanceSpec::default() })
            .await
            .unwrap();
    assert_eq!(data(r), json!("m.large"));
    let r = create(&p, "op3", InstanceSpec { gpus: 1, ..InstanceSpec::default() }).await.unwrap();
    assert_eq!(data(r), json!("m.gpu"));
    let e = create(
        &p,
        "op4",
        InstanceSpec { instance_type: "m.huge".to_owned(), ..InstanceSpec::default() },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorCode::UnsupportedSpec);
    assert!(e.message.contains("not part of supported instance types list"), "{}", e.message);
    assert_eq!(p.store.len(), 3);
}

#[tokio::test]
async fn injected_errors_and_quota_leave_no_instance() {
    let p = provider(json!({"errors": {"createInstance": "capacityUnavailable"}})).await;
    let e = create(&p, "op1", InstanceSpec::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::CapacityUnavailable);
    assert_eq!(e.instance_id(), None);
    assert!(p.store.is_empty());

    let p = provider(json!({"maxInstances": 1})).await;
    create(&p, "op1", InstanceSpec::default()).await.unwrap();
    assert_eq!(
        create(&p, "op2", InstanceSpec::default()).await.unwrap_err().kind(),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(p.store.len(), 1);
}

#[tokio::test]
async fn deadline_during_the_create_delay_keeps_the_instance_and_reports_it() {
    let p = provider(json!({"latencyMs": {"createInstance": "60000"}})).await;
    let short = Ctx::detached("op1", Duration::from_millis(20));
    let e = p.create_instance(short, params("op1", InstanceSpec::default())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::DeadlineExceeded);
    let id = e.instance_id().expect("instance id").to_owned();
    assert_eq!(p.store.list(&BTreeMap::new())[0].instance_id, id);
}

#[tokio::test]
async fn no_ip_fault_and_bad_api_key() {
    let p = provider(json!({"faults": ["noIp"], "apiKey": "bad"})).await;
    assert!(create(&p, "op1", InstanceSpec::default()).await.unwrap().ips.is_empty());
    let e = p.verify_config(ctx("v")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::Unauthorized);
    assert!(!format!("{:?}", p.config()).contains("bad"));

    let ok = provider(json!({"apiKey": "good"})).await.verify_config(ctx("v")).await.unwrap();
    assert!(ok.ok && ok.checks.iter().any(|c| c.name == "config" && c.ok));
}

#[tokio::test]
async fn bad_options_are_reported_together() {
    let values = json!({"faults": ["explode"], "errors": {"createInstance": "boom"}, "latencyMs": {"nope": "1"}});
    let Value::Object(values) = values else { unreachable!() };
    let e =
        MockProvider::init(Config::from_values(values.into_iter().collect())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::InvalidConfig);
    let fields: Vec<_> = e.data.unwrap().problems.into_iter().map(|p| p.field).collect();
    assert_eq!(fields, ["latencyMs", "faults", "errors"]);
}

#[tokio::test]
async fn initialize_can_fail_on_purpose() {
    let values = BTreeMap::from([("errors".to_owned(), json!({"initialize": "unauthorized"}))]);
    let e = MockProvider::init(Config::from_values(values)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorCode::Unauthorized);
}
