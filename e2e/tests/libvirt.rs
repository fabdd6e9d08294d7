//! A real pod VM end to end (gated by `CAA_TEST_LIBVIRT=1`, root): libvirtd + QEMU under TCG,
//! the local test pod VM image, the real `cloud-api-adaptor` with the libvirt plugin, driven
//! over ttrpc the way the Kata shim drives it. StartVM boots a VM that gets a DHCP lease, reads
//! its cidata ISO, and runs our forwarder; agent calls reach the test agent inside the VM
//! through the proxy with TLS; with pod networking on, the pod IP of a CNI-like namespace on this
//! host reaches a server inside the VM's pod namespace through the VXLAN tunnel; StopVM removes
//! the domain, its volumes and the tunnel. Also: a bad image
//! fails with upstream's error text and leaves nothing, and an adaptor killed during StartVM
//! leaves no domain after its restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use caa_e2e::cni::{CniPod, POD_HTTP_BODY, http_get_pod_ip_within};
use caa_e2e::daemon::{DaemonProcess, PluginFate};
use caa_e2e::kata::{
    agent_call, no_deadline, shim_annotations, start_request, stop_request, with_deadline,
};
use caa_e2e::{binaries, libvirt};
use caa_kata_protos::agent::{CheckRequest, CreateContainerRequest, HealthCheckResponse, Spec};
use caa_kata_protos::hypervisor::{CreateVMRequest, HypervisorClient};
use caa_kata_protos::protobuf::{Message, MessageField};
use caa_kata_protos::ttrpc::{self, r#async::Client};

/// One VM at a time on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PREFIX: &str = "podvm-lv";

fn plugin_built() {
    let path = binaries::bin_dir().join("caa-provider-libvirt");
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let ok = std::process::Command::new(cargo)
            .args(["build", "-p", "caa-provider-libvirt"])
            .current_dir(binaries::workspace_root())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "building caa-provider-libvirt failed");
    }
}

fn create_request(id: &str, pod: &str, image: Option<&str>) -> CreateVMRequest {
    let mut annotations: HashMap<String, String> = shim_annotations(pod);
    annotations
        .insert("io.katacontainers.config.hypervisor.default_memory".to_owned(), "512".to_owned());
    if let Some(image) = image {
        annotations
            .insert("io.katacontainers.config.hypervisor.image".to_owned(), image.to_owned());
    }
    CreateVMRequest { id: id.to_owned(), annotations, ..Default::default() }
}

async fn hypervisor(d: &DaemonProcess) -> HypervisorClient {
    HypervisorClient::new(
        Client::connect(&format!("unix://{}", d.socket().display())).await.unwrap(),
    )
}

fn nothing_left(what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (d, v) = (libvirt::domains(PREFIX), libvirt::volumes());
        if d.is_empty() && v.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: left behind domains {d:?}, volumes {v:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_vm_boots_serves_the_agent_through_the_proxy_and_is_gone_after_stop() {
    if !libvirt::gate_open() {
        return;
    }
    let _one = SERIAL.lock().await;
    plugin_built();
    let image = libvirt::ensure_host();
    let logs = tempfile::tempdir().unwrap();
    let d = libvirt::adaptor(&image, logs.path()).with_pod_network().start();
    let hv = hypervisor(&d).await;
    let id = "lvlifecycle0001";
    let pod = CniPod::create();
    let mut create = create_request(id, "lv", None);
    create.networkNamespacePath = pod.path().display().to_string();
    let created = hv.create_vm(no_deadline(), &create).await.unwrap();

    let started = Instant::now();
    let start = hv.start_vm(with_deadline(Duration::from_secs(240)), &start_request(id)).await;
    let took = started.elapsed();
    let serial = libvirt::serial_logs(logs.path());
    assert!(start.is_ok(), "StartVM: {start:?}\ndaemon:\n{}\nserial:\n{serial}", d.log_tail(60));
    eprintln!("libvirt e2e: StartVM to agent-ready took {:.1} s", took.as_secs_f64());

    let shim = Client::connect(&format!("unix://{}", created.agentSocketPath)).await.unwrap();
    let check =
        agent_call(&shim, "grpc.Health", "Check", CheckRequest::new().write_to_bytes().unwrap())
            .await
            .expect("health check through proxy and forwarder");
    assert_eq!(HealthCheckResponse::parse_from_bytes(&check).unwrap().status.value(), 1);

    let mut container = CreateContainerRequest::new();
    container.container_id = "c1".to_owned();
    let mut spec = Spec::new();
    spec.Annotations.insert("io.katacontainers.config.hypervisor.default_gpus".into(), "1".into());
    container.OCI = MessageField::some(spec);
    agent_call(&shim, "grpc.AgentService", "CreateContainer", container.write_to_bytes().unwrap())
        .await
        .unwrap();
    // The test agent in the VM tells what it received (the call itself passes through).
    let seen = agent_call(
        &shim,
        caa_test_agent::TEST_SERVICE,
        caa_test_agent::REQUESTS_METHOD,
        Vec::new(),
    )
    .await
    .unwrap();
    let seen: Vec<caa_test_agent::Recorded> = serde_json::from_slice(&seen).unwrap();
    let got = seen
        .iter()
        .find(|r| r.method == "CreateContainer")
        .expect("CreateContainer reached the VM");
    let got = CreateContainerRequest::parse_from_bytes(&got.payload().unwrap()).unwrap();
    assert_eq!(
        got.OCI.Annotations.get("cdi.k8s.io/peer-pods").map(String::as_str),
        Some("nvidia.com/gpu=all")
    );
    assert_eq!(got.OCI.Linux.Namespaces[0].Path, "/run/netns/podns");

    // The pod IP now lives in the VM: the test server in its pod namespace answers, through
    // the pod's veth, the tc redirect, the VXLAN tunnel and the VM's recreated pod interface.
    let reached = tokio::task::spawn_blocking(|| http_get_pod_ip_within(Duration::from_secs(30)))
        .await
        .unwrap();
    match reached {
        Ok(body) => assert!(body.contains(POD_HTTP_BODY), "{body}"),
        Err(e) => panic!(
            "pod IP not reachable through the tunnel: {e}\n{}\nserial:\n{serial}",
            pod.tunnel_details()
        ),
    }

    assert_eq!(libvirt::domains(PREFIX).len(), 1);
    hv.stop_vm(no_deadline(), &stop_request(id)).await.unwrap();
    assert!(!pod.has_tunnel(), "the tunnel is removed");
    nothing_left("after StopVM");
    assert!(d.records().is_empty(), "{:?}", d.records());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_the_start_with_upstreams_text_and_leaves_nothing() {
    if !libvirt::gate_open() {
        return;
    }
    let _one = SERIAL.lock().await;
    plugin_built();
    let image = libvirt::ensure_host();
    let logs = tempfile::tempdir().unwrap();
    let d = libvirt::adaptor(&image, logs.path()).start();
    let hv = hypervisor(&d).await;
    let id = "lvbadimage00001";
    hv.create_vm(no_deadline(), &create_request(id, "lv", Some("no-such-image.qcow2")))
        .await
        .unwrap();
    let err =
        hv.start_vm(with_deadline(Duration::from_secs(60)), &start_request(id)).await.unwrap_err();
    let (code, message) = match err {
        ttrpc::Error::RpcStatus(s) => (s.code(), s.message),
        other => panic!("expected a status, got {other:?}"),
    };
    assert!(message.contains("creating an instance"), "{code:?} {message}");
    assert!(message.contains("Can't retrieve volume"), "{code:?} {message}");
    nothing_left("after a failed start");
    let _ = hv.stop_vm(no_deadline(), &stop_request(id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adaptor_killed_during_start_leaves_no_domain_after_restart() {
    if !libvirt::gate_open() {
        return;
    }
    let _one = SERIAL.lock().await;
    plugin_built();
    let image = libvirt::ensure_host();
    let logs = tempfile::tempdir().unwrap();
    let mut d = libvirt::adaptor(&image, logs.path()).start();
    let hv = hypervisor(&d).await;
    let id = "lvkilled0000001";
    hv.create_vm(no_deadline(), &create_request(id, "lv", None)).await.unwrap();
    let start = tokio::spawn(async move {
        hv.start_vm(with_deadline(Duration::from_secs(240)), &start_request(id)).await
    });
    // Kill it once the domain exists (the VM is booting, the lease not yet seen).
    let deadline = Instant::now() + Duration::from_secs(60);
    while libvirt::domains(PREFIX).is_empty() {
        assert!(Instant::now() < deadline, "no domain appeared:\n{}", d.log_tail(40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.kill9(PluginFate::Killed);
    let _ = start.await;
    assert_eq!(libvirt::domains(PREFIX).len(), 1, "the domain outlives the killed adaptor");
    d.restart();
    nothing_left("after the restart's reconciliation");
}
