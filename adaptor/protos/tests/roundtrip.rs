//! Rust-to-Rust round trips through the generated async stubs on a unix socket: every method
//! of both services, the deadline and metadata on the wire, handler errors and routing errors.

use std::collections::HashMap;

use caa_e2e::canned::{self, Seen};
use caa_kata_protos::hypervisor::{
    CreateVMRequest, Hypervisor, HypervisorClient, StartVMRequest, StopVMRequest, VersionRequest,
    create_hypervisor,
};
use caa_kata_protos::podvminfo::{GetInfoRequest, PodVmInfoClient};
use caa_kata_protos::ttrpc::r#async::{Client, Server};
use caa_kata_protos::ttrpc::{self, Error, context};
use caa_kata_protos::{Code, HYPERVISOR_SERVICE, PODVMINFO_SERVICE};

const START_TIMEOUT_NANOS: i64 = 600_000_000_000;

async fn client(running: &canned::Running) -> Client {
    Client::connect(&format!("unix://{}", running.sock.display()))
        .await
        .expect("connecting to the test server")
}

/// The status carried by a failed call (panics on success or a transport error).
fn status_of<T: std::fmt::Debug>(result: ttrpc::Result<T>) -> (Code, String) {
    match result {
        Err(Error::RpcStatus(status)) => (status.code(), status.message.clone()),
        other => panic!("expected an rpc status, got {other:?}"),
    }
}

fn create_request(id: &str) -> CreateVMRequest {
    let annotations = HashMap::from([
        ("io.kubernetes.cri.sandbox-name".to_string(), "web-0".to_string()),
        ("io.kubernetes.cri.sandbox-namespace".to_string(), "shop".to_string()),
        ("io.katacontainers.config.hypervisor.default_vcpus".to_string(), "2".to_string()),
    ]);
    CreateVMRequest {
        id: id.into(),
        annotations,
        networkNamespacePath: "/var/run/netns/cni-1234".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let connection = client(&running).await;
    let hv = HypervisorClient::new(connection.clone());
    let info = PodVmInfoClient::new(connection);

    let req = VersionRequest { version: "0.0.1".into(), ..Default::default() };
    let version = hv.version(context::with_timeout(0), &req).await.unwrap();
    assert_eq!(version.version, canned::VERSION);

    let create = create_request("sandbox-1");
    let created = hv.create_vm(context::with_timeout(0), &create).await.unwrap();
    assert_eq!(created.agentSocketPath, canned::agent_socket("sandbox-1"));

    let start = StartVMRequest { id: "sandbox-1".into(), ..Default::default() };
    hv.start_vm(context::with_timeout(START_TIMEOUT_NANOS), &start).await.unwrap();

    let stop = StopVMRequest { id: "sandbox-1".into(), ..Default::default() };
    hv.stop_vm(context::with_timeout(0), &stop).await.unwrap();

    let (name, namespace) = canned::POD;
    let get = GetInfoRequest {
        PodName: name.into(),
        PodNamespace: namespace.into(),
        Wait: true,
        ..Default::default()
    };
    let got = info.get_info(context::with_timeout(0), &get).await.unwrap();
    assert_eq!(got.VMID, canned::VMID);

    let seen = running.canned.seen();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], (Seen::Version(req), 0));
    assert_eq!(seen[1], (Seen::Create(create), 0));
    assert_eq!(seen[2].0, Seen::Start(start));
    // The client sends the remaining time of its deadline, which never exceeds what was set.
    assert!(seen[2].1 > 0 && seen[2].1 <= START_TIMEOUT_NANOS, "timeout_nano {}", seen[2].1);
    assert_eq!(seen[3], (Seen::Stop(stop), 0));
    assert_eq!(seen[4], (Seen::Info(get), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_statuses_reach_the_client_intact() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let connection = client(&running).await;
    let hv = HypervisorClient::new(connection.clone());
    let info = PodVmInfoClient::new(connection);

    let start = StartVMRequest { id: canned::FAIL_ID.into(), ..Default::default() };
    let failed = hv.start_vm(context::with_timeout(0), &start).await;
    assert_eq!(status_of(failed), (Code::FAILED_PRECONDITION, canned::FAIL_MESSAGE.to_string()));

    let created = hv.create_vm(context::with_timeout(0), &create_request("")).await;
    assert_eq!(
        status_of(created),
        (Code::INVALID_ARGUMENT, "sandbox id must not be empty".to_string())
    );

    let get =
        GetInfoRequest { PodName: "ghost".into(), PodNamespace: "ns".into(), ..Default::default() };
    let missing = info.get_info(context::with_timeout(0), &get).await;
    assert_eq!(status_of(missing), (Code::NOT_FOUND, "VM ID for ns:ghost was not found".into()));

    // The connection survives failed calls.
    let ok = hv.version(context::with_timeout(0), &VersionRequest::new()).await.unwrap();
    assert_eq!(ok.version, canned::VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_status_handler_error_becomes_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let hv = HypervisorClient::new(client(&running).await);

    let start = StartVMRequest { id: canned::CRASH_ID.into(), ..Default::default() };
    let (code, message) = status_of(hv.start_vm(context::with_timeout(0), &start).await);
    assert_eq!(code, Code::UNKNOWN);
    assert!(message.contains("plugin crashed"), "{message}");
}

/// A raw request to `service`/`method` with an empty payload.
async fn raw_call(connection: &Client, service: &str, method: &str) -> (Code, String) {
    let req =
        ttrpc::Request { service: service.into(), method: method.into(), ..Default::default() };
    status_of(connection.request(req).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_and_services_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let connection = client(&running).await;

    let bogus = raw_call(&connection, HYPERVISOR_SERVICE, "RebootVM").await;
    assert_eq!(bogus.0, Code::UNIMPLEMENTED, "{bogus:?}");
    assert!(bogus.1.contains("RebootVM"), "{bogus:?}");

    // Rust ttrpc 0.10 answers an unknown service with INVALID_ARGUMENT (Go: UNIMPLEMENTED).
    let service = raw_call(&connection, "grpc.AgentService", "CreateSandbox").await;
    assert_eq!(service.0, Code::INVALID_ARGUMENT, "{service:?}");
    assert!(service.1.contains("grpc.AgentService"), "{service:?}");

    // Both service names are served on the one socket.
    let info = raw_call(&connection, PODVMINFO_SERVICE, "GetInfo").await;
    assert_eq!(info, (Code::NOT_FOUND, "VM ID for : was not found".into()));
}

/// A service that implements none of its methods.
struct Nothing;

impl Hypervisor for Nothing {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_left_to_the_trait_default_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nothing.sock");
    let address = format!("unix://{}", sock.display());
    let mut server = Server::new()
        .bind(&address)
        .unwrap()
        .register_service(create_hypervisor(std::sync::Arc::new(Nothing)));
    server.start().await.unwrap();
    let hv = HypervisorClient::new(Client::connect(&address).await.unwrap());

    let stop = StopVMRequest { id: "sandbox-1".into(), ..Default::default() };
    let (code, message) = status_of(hv.stop_vm(context::with_timeout(0), &stop).await);
    assert_eq!(code, Code::NOT_FOUND);
    assert_eq!(message, "/hypervisor.Hypervisor/StopVM is not supported");
    server.shutdown().await.unwrap();
}
