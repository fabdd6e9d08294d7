//! CreateVM → StartVM → GetInfo → StopVM through the ttrpc API against the real mock plugin,
//! and what happens when a step fails: nothing is left in the "cloud" or in the state directory.

use std::collections::BTreeMap;
use std::time::Duration;

use caa_kata_protos::Code;
use caa_kata_protos::ttrpc::context;
use serde_json::json;

use crate::daemon::{
    Daemon, Options, create_request, deadline, eventually, info_request, start_request, status,
    stop_request,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_creates_records_and_deletes_one_instance() {
    let d = Daemon::start(Options::default()).await;
    let (hv, info) = d.client().await;
    let created =
        hv.create_vm(context::with_timeout(0), &create_request("sb-0001", "web")).await.unwrap();
    assert_eq!(
        created.agentSocketPath,
        d.dir.path().join("pods/sb-0001/agent.ttrpc").display().to_string()
    );
    let apf = d.dir.path().join("pods/sb-0001/apf.json");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&apf).unwrap().permissions())
            & 0o777,
        0o600
    );
    assert!(d.instances().await.is_empty(), "CreateVM makes no cloud call");

    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-0001")).await.unwrap();
    let instances = d.instances().await;
    assert_eq!(instances.len(), 1);
    assert_eq!(d.records(), 1);
    let vmid = info.get_info(context::with_timeout(0), &info_request("web", false)).await.unwrap();
    assert_eq!(vmid.VMID, instances[0]);

    hv.stop_vm(context::with_timeout(0), &stop_request("sb-0001")).await.unwrap();
    assert!(d.instances().await.is_empty());
    assert_eq!(d.records(), 0);
    // StopVM is idempotent; an id never seen is a clear error.
    hv.stop_vm(context::with_timeout(0), &stop_request("sb-0001")).await.unwrap();
    let (code, msg) = status(hv.stop_vm(context::with_timeout(0), &stop_request("sb-never")).await);
    assert_eq!(
        (code, msg.as_str()),
        (Code::NOT_FOUND, "stopping VM: sandbox sb-never does not exist")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_vm_validates_with_upstream_texts() {
    let d = Daemon::start(Options::default()).await;
    let (hv, _) = d.client().await;
    let (code, msg) =
        status(hv.create_vm(context::with_timeout(0), &create_request("", "web")).await);
    assert_eq!((code, msg.as_str()), (Code::INVALID_ARGUMENT, "empty sandbox id"));
    let (_, msg) =
        status(hv.create_vm(context::with_timeout(0), &create_request("sb-1", "")).await);
    assert_eq!(msg, "pod name io.kubernetes.cri.sandbox-name is missing in annotations");
    let (code, _) =
        status(hv.create_vm(context::with_timeout(0), &create_request("../etc", "web")).await);
    assert_eq!(code, Code::INVALID_ARGUMENT);
    hv.create_vm(context::with_timeout(0), &create_request("sb-dup", "web")).await.unwrap();
    let (code, msg) =
        status(hv.create_vm(context::with_timeout(0), &create_request("sb-dup", "web")).await);
    assert_eq!(
        (code, msg.as_str()),
        (Code::ALREADY_EXISTS, "adding sandbox: sandbox sb-dup already exists")
    );
    let (code, msg) =
        status(hv.start_vm(deadline(Duration::from_secs(5)), &start_request("sb-nope")).await);
    assert_eq!(
        (code, msg.as_str()),
        (Code::NOT_FOUND, "getting sandbox: sandbox sb-nope does not exist")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_error_fails_start_with_its_code_and_leaves_nothing() {
    let opts = Options {
        mock_config: BTreeMap::from([(
            "errors".to_owned(),
            json!({"createInstance": "capacityUnavailable"}),
        )]),
        ..Options::default()
    };
    let d = Daemon::start(opts).await;
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_request("sb-cap", "web")).await.unwrap();
    let (code, msg) =
        status(hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-cap")).await);
    assert_eq!(code, Code::RESOURCE_EXHAUSTED);
    assert!(msg.starts_with("creating an instance : "), "{msg}");
    assert!(d.instances().await.is_empty());
    eventually("the record is gone", || async { d.records() == 0 }).await;
    hv.stop_vm(context::with_timeout(0), &stop_request("sb-cap")).await.unwrap();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_forwarder_fails_start_and_deletes_the_instance() {
    let opts = Options {
        forwarder_up: false,
        proxy_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let d = Daemon::start(opts).await;
    let (hv, info) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_request("sb-nofwd", "web")).await.unwrap();
    let (code, msg) =
        status(hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-nofwd")).await);
    assert_eq!(code, Code::UNAVAILABLE);
    assert!(msg.starts_with("waiting for the agent-protocol-forwarder at 127.0.0.1:"), "{msg}");
    eventually("the instance is deleted", || async { d.instances().await.is_empty() }).await;
    eventually("the record is gone", || async { d.records() == 0 }).await;
    let (code, _) =
        status(info.get_info(context::with_timeout(0), &info_request("web", false)).await);
    assert_eq!(code, Code::NOT_FOUND);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_answers_by_the_shims_deadline_and_the_late_instance_is_deleted() {
    let opts = Options {
        mock_config: BTreeMap::from([("latencyMs".to_owned(), json!({"createInstance": "1500"}))]),
        ..Options::default()
    };
    let d = Daemon::start(opts).await;
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_request("sb-slow", "web")).await.unwrap();
    let started = std::time::Instant::now();
    let (code, _) =
        status(hv.start_vm(deadline(Duration::from_millis(400)), &start_request("sb-slow")).await);
    assert_eq!(code, Code::DEADLINE_EXCEEDED);
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    // The create finishes in the plugin anyway; its instance must not survive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    eventually("no instance is left", || async { d.instances().await.is_empty() }).await;
    eventually("the record is gone", || async { d.records() == 0 }).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_info_waits_for_the_instance_and_honours_its_deadline() {
    let d = Daemon::start(Options::default()).await;
    let (hv, info) = d.client().await;
    // The server answers DEADLINE_EXCEEDED itself, a little before the caller's timer fires.
    let asked = std::time::Instant::now();
    let (code, _) =
        status(info.get_info(deadline(Duration::from_secs(2)), &info_request("late", true)).await);
    assert_eq!(code, Code::DEADLINE_EXCEEDED);
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(1500), "answered after {waited:?}");
    hv.create_vm(context::with_timeout(0), &create_request("sb-late", "late")).await.unwrap();
    let waiter = {
        let info = info.clone();
        tokio::spawn(async move {
            info.get_info(deadline(Duration::from_secs(20)), &info_request("late", true)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-late")).await.unwrap();
    let vmid = waiter.await.unwrap().unwrap();
    assert_eq!(vec![vmid.VMID], d.instances().await);
    hv.stop_vm(context::with_timeout(0), &stop_request("sb-late")).await.unwrap();
    d.stop().await;
}
