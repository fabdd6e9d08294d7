//! The `semantic` suite: what instances do — create returns an addressable VM and announces it,
//! creates are idempotent per operationId, deletes are idempotent, cancel and deadlines leave
//! nothing unaccounted for, parallel creates work, unsupported specs are refused. It runs through
//! the same host library the adaptor uses, so it needs a config that really works.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caa_plugin_host::{CallError, CallOptions, Plugin, PluginCommand, PluginSpec};
use caa_plugin_proto::method::{CreateInstance, DeleteInstance, ListInstances, VerifyConfig};
use caa_plugin_proto::{
    CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams, ErrorCode,
    ListInstancesParams, VerifyConfigParams, tags,
};
use tokio::sync::mpsc;

use super::{Check, Outcome, Target, check, ensure};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(verify_config_answers),
        check!(create_returns_an_addressable_instance_and_announces_it),
        check!(same_operation_id_returns_the_same_instance),
        check!(reused_operation_id_with_other_params_is_a_conflict),
        check!(delete_is_idempotent_and_unknown_ids_succeed),
        check!(tags_are_applied_and_listed),
        check!(cancel_mid_create_leaves_nothing_unaccounted),
        check!(deadline_is_honoured),
        check!(parallel_creates_get_distinct_instances),
        check!(unsupported_spec_is_refused),
    ]
}

async fn start(t: &Target) -> anyhow::Result<Plugin> {
    let config: BTreeMap<String, serde_json::Value> = match &t.config {
        serde_json::Value::Object(map) => map.clone().into_iter().collect(),
        _ => BTreeMap::new(),
    };
    let mut spec = PluginSpec::new(t.describe.plugin.name.clone(), PluginCommand::new(&t.plugin));
    spec.config = config;
    Ok(Plugin::start(&spec).await?)
}

fn params(tag: &str) -> CreateInstanceParams {
    let sandbox = format!("{:016x}", rand_u64());
    let operation = format!("conformance-{tag}-{sandbox}");
    CreateInstanceParams {
        operation_id: operation.clone(),
        deadline_ms: 120_000,
        pod_name: format!("conf-{tag}"),
        pod_namespace: "conformance".to_owned(),
        sandbox_id: sandbox.clone(),
        user_data: "#cloud-config\n".to_owned(),
        user_data_format: Some("cloud-config".to_owned()),
        spec: Default::default(),
        tags: BTreeMap::from([
            (tags::SANDBOX_ID.to_owned(), sandbox),
            (tags::OPERATION_ID.to_owned(), operation),
            ("caa/conformance".to_owned(), "true".to_owned()),
        ]),
    }
}

fn rand_u64() -> u64 {
    u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default())
}

async fn create(
    p: &Plugin,
    params: &CreateInstanceParams,
) -> Result<CreateInstanceResult, CallError> {
    p.call::<CreateInstance>(params).await
}

async fn delete(p: &Plugin, instance_id: &str) -> anyhow::Result<()> {
    let params = DeleteInstanceParams {
        operation_id: format!("conformance-delete-{instance_id}-{}", rand_u64()),
        instance_id: instance_id.to_owned(),
        sandbox_id: None,
        deadline_ms: 120_000,
    };
    p.call::<DeleteInstance>(&params).await?;
    Ok(())
}

fn lists(p: &Plugin) -> bool {
    p.info().capabilities.optional_methods.iter().any(|m| m == "listInstances")
}

async fn listed(p: &Plugin, key: &str, value: &str) -> anyhow::Result<Vec<String>> {
    let params = ListInstancesParams { tags: BTreeMap::from([(key.to_owned(), value.to_owned())]) };
    let found = p.call::<ListInstances>(&params).await?;
    Ok(found.instances.into_iter().map(|i| i.instance_id).collect())
}

async fn verify_config_answers(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    let params =
        VerifyConfigParams { operation_id: "conformance-verify".to_owned(), deadline_ms: 60_000 };
    match p.call::<VerifyConfig>(&params).await {
        Ok(_) => {}
        Err(CallError::Rpc(e)) => {
            let kind = e.kind();
            ensure!(
                matches!(kind, ErrorCode::InvalidConfig | ErrorCode::Unauthorized),
                "verifyConfig error {e}"
            );
        }
        Err(e) => return Err(e.into()),
    }
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn create_returns_an_addressable_instance_and_announces_it(
    t: &Target,
) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    let params = params("create");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts =
        CallOptions::new(Duration::from_millis(params.deadline_ms) + Duration::from_secs(30))
            .operation(params.operation_id.clone())
            .progress(tx);
    let vm = p.call_with::<CreateInstance>(&params, opts).await?;
    ensure!(!vm.instance_id.is_empty(), "empty instanceId");
    ensure!(!vm.ips.is_empty(), "no ips");
    ensure!(
        vm.ips[0].parse::<std::net::IpAddr>().is_ok(),
        "ips[0] {:?} is not an IP address",
        vm.ips[0]
    );
    let mut announced = None;
    while let Ok(progress) = rx.try_recv() {
        if progress.stage == "instanceCreated" {
            announced = progress.instance_id;
        }
    }
    if p.info().capabilities.progress {
        ensure!(
            announced.as_deref() == Some(vm.instance_id.as_str()),
            "no instanceCreated progress with the id"
        );
    }
    delete(&p, &vm.instance_id).await?;
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn same_operation_id_returns_the_same_instance(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    if !p.info().capabilities.idempotent_create {
        return Ok(Outcome::Skip("idempotentCreate is not advertised".to_owned()));
    }
    let params = params("idem");
    let first = create(&p, &params).await?;
    let second = create(&p, &params).await?;
    delete(&p, &first.instance_id).await?;
    ensure!(first.instance_id == second.instance_id, "two instances for one operationId");
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn reused_operation_id_with_other_params_is_a_conflict(
    t: &Target,
) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    if !p.info().capabilities.idempotent_create {
        return Ok(Outcome::Skip("idempotentCreate is not advertised".to_owned()));
    }
    let params = params("conflict");
    let first = create(&p, &params).await?;
    let mut other = params.clone();
    other.pod_name.push_str("-other");
    let second = create(&p, &other).await;
    delete(&p, &first.instance_id).await?;
    match second {
        Err(CallError::Rpc(e)) if e.kind() == ErrorCode::Conflict => {}
        Ok(vm) => {
            delete(&p, &vm.instance_id).await?;
            anyhow::bail!("different params under one operationId created {}", vm.instance_id);
        }
        Err(e) => anyhow::bail!("expected conflict (9), got {e}"),
    }
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn delete_is_idempotent_and_unknown_ids_succeed(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    let vm = create(&p, &params("delete")).await?;
    delete(&p, &vm.instance_id).await?;
    delete(&p, &vm.instance_id).await?;
    delete(&p, "conformance-no-such-instance").await?;
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn tags_are_applied_and_listed(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    if !lists(&p) {
        return Ok(Outcome::Skip("listInstances is not advertised".to_owned()));
    }
    let params = params("tags");
    let vm = create(&p, &params).await?;
    let found = listed(&p, tags::SANDBOX_ID, &params.sandbox_id).await?;
    delete(&p, &vm.instance_id).await?;
    ensure!(found == vec![vm.instance_id.clone()], "listInstances by sandbox tag gave {found:?}");
    let after = listed(&p, tags::SANDBOX_ID, &params.sandbox_id).await?;
    ensure!(after.is_empty(), "deleted instance still listed: {after:?}");
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn cancel_mid_create_leaves_nothing_unaccounted(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    if !p.info().capabilities.cancel {
        return Ok(Outcome::Skip("cancel is not advertised".to_owned()));
    }
    let params = params("cancel");
    let call = create(&p, &params);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.client().cancel(&params.operation_id, "conformance");
    };
    let (outcome, ()) = tokio::join!(call, cancel);
    match outcome {
        Ok(vm) => delete(&p, &vm.instance_id).await?,
        Err(CallError::Rpc(e)) if e.kind() == ErrorCode::RequestCancelled => {
            if let Some(id) = e.instance_id() {
                delete(&p, id).await?;
            }
        }
        Err(e) => anyhow::bail!("cancelled create should answer -32800 or a result, got {e}"),
    }
    if lists(&p) {
        let left = listed(&p, tags::OPERATION_ID, &params.operation_id).await?;
        ensure!(
            left.is_empty(),
            "cancelled create left instances without reporting them: {left:?}"
        );
    }
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn deadline_is_honoured(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    let mut params = params("deadline");
    params.deadline_ms = 1;
    let started = Instant::now();
    let outcome =
        p.call_with::<CreateInstance>(&params, CallOptions::new(Duration::from_secs(20))).await;
    let took = started.elapsed();
    match outcome {
        Ok(vm) => delete(&p, &vm.instance_id).await?,
        Err(CallError::Rpc(e)) => {
            ensure!(
                matches!(e.kind(), ErrorCode::DeadlineExceeded | ErrorCode::RequestCancelled),
                "expected deadlineExceeded, got {e}"
            );
            if let Some(id) = e.instance_id() {
                delete(&p, id).await?;
            }
        }
        Err(e) => {
            anyhow::bail!("create with a 1 ms deadline was not answered in time ({took:?}): {e}")
        }
    }
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

async fn parallel_creates_get_distinct_instances(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    let all: Vec<CreateInstanceParams> = (0..8).map(|i| params(&format!("par{i}"))).collect();
    let results = join_all(all.iter().map(|params| create(&p, params)).collect()).await;
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(vm) => ids.push(vm.instance_id),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for id in &ids {
        delete(&p, id).await?;
    }
    ensure!(errors.is_empty(), "parallel creates failed: {errors:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    ensure!(unique.len() == ids.len(), "parallel creates returned duplicate ids {ids:?}");
    p.shutdown().await?;
    Ok(Outcome::Pass)
}

/// Polls every future concurrently on this task and returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut slots: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> =
        futures.into_iter().map(Box::pin).enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                slots[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    slots.into_iter().flatten().collect()
}

async fn unsupported_spec_is_refused(t: &Target) -> anyhow::Result<Outcome> {
    let p = start(t).await?;
    let caps = p.info().capabilities.instance.clone();
    let mut params = params("unsupported");
    if !caps.multi_nic {
        params.spec.multi_nic = true;
    } else if !caps.gpus {
        params.spec.gpus = 1;
    } else if !caps.arch.is_empty() {
        params.spec.arch = "no-such-arch".to_owned();
    } else {
        return Ok(Outcome::Skip("the plugin claims to support every spec feature".to_owned()));
    }
    match create(&p, &params).await {
        Err(CallError::Rpc(e)) if e.kind() == ErrorCode::UnsupportedSpec => {}
        Ok(vm) => {
            delete(&p, &vm.instance_id).await?;
            anyhow::bail!("unsupported spec {:?} was accepted", params.spec);
        }
        Err(e) => anyhow::bail!("expected unsupportedSpec (3), got {e}"),
    }
    p.shutdown().await?;
    Ok(Outcome::Pass)
}
