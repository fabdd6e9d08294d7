//! The adaptor's pod networking against real namespaces (root, `CAA_TEST_NETNS=1`): a worker
//! namespace holds the tunnels, a CNI-like pod namespace is what Kata names at CreateVM. The
//! mock plugin's VM is on loopback, so these tests check what the adaptor builds, records and
//! removes on the worker side; traffic through the tunnel is caa-podnet's and the forwarder's
//! tests.

use std::time::Duration;

use caa_kata_protos::Code;
use caa_kata_protos::ttrpc::context;
use caa_test_support::netns::{Netns, Underlay, enabled};

use crate::daemon::{
    Daemon, Options, create_request, deadline, start_request, status, stop_request,
};

const MAC: &str = "0a:58:0a:f4:01:07";

fn options(u: &Underlay) -> Options {
    Options { host_netns: Some(u.worker.path()), ..Options::default() }
}

/// CreateVM naming `pod`'s namespace.
fn create_in(id: &str, pod: &Netns) -> caa_kata_protos::hypervisor::CreateVMRequest {
    let mut req = create_request(id, "web");
    req.networkNamespacePath = pod.path().display().to_string();
    req
}

fn vni_owners(d: &Daemon) -> Vec<(u64, String)> {
    let path = d.dir.path().join("state/podnet/vni.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Vec::new() };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["vni"].as_u64().unwrap(), a["owner"].as_str().unwrap().to_owned()))
        .collect()
}

fn record(d: &Daemon, id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(d.dir.path().join(format!("state/{id}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_start_stop_builds_records_and_removes_the_tunnel() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", MAC, true);
    let d = Daemon::start(options(&u)).await;
    let (hv, _) = d.client().await;

    hv.create_vm(context::with_timeout(0), &create_in("sb-net", &pod)).await.unwrap();
    let apf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.dir.path().join("pods/sb-net/apf.json")).unwrap(),
    )
    .unwrap();
    let net = &apf["pod-network"];
    assert_eq!(net["podip"], "10.244.1.7/24");
    assert_eq!(net["pod-hw-addr"], MAC);
    assert_eq!(net["worker-node-ip"], "192.168.100.1/24");
    assert_eq!(net["vxlan-id"], 555_000);
    assert_eq!(net["vxlan-port"], 4789);
    assert_eq!(vni_owners(&d), vec![(555_000, "sb-net".to_owned())]);

    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-net")).await.unwrap();
    assert!(pod.link_names().iter().any(|l| l.starts_with("vxlan1")), "{:?}", pod.link_names());
    assert!(u.worker.nft_tables().contains("caa-vxlan-555000"));
    let rec = record(&d, "sb-net");
    assert_eq!(rec["tunnel"]["vni"], 555_000);
    assert_eq!(rec["tunnel"]["remote"], "127.0.0.1", "the mock VM's address");

    hv.stop_vm(context::with_timeout(0), &stop_request("sb-net")).await.unwrap();
    assert!(!pod.link_names().iter().any(|l| l.starts_with("vxlan1")));
    assert!(!pod.tc(&["filter", "show", "dev", "eth0", "ingress"]).contains("mirred"));
    assert!(!u.worker.nft_tables().contains("caa-vxlan"));
    assert_eq!(d.records(), 0);
    assert!(vni_owners(&d).is_empty(), "the VNI is released");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_adaptor_keeps_live_vnis_and_removes_the_tunnel_from_its_record() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", MAC, true);
    let other = u.add_pod("vp1", "0a:58:0a:f4:01:08", false);
    let d = Daemon::start(options(&u)).await;
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_in("sb-a", &pod)).await.unwrap();
    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-a")).await.unwrap();
    // CreateVM'd but never started: nothing durable, so a restart forgets its VNI.
    hv.create_vm(context::with_timeout(0), &create_in("sb-unstarted", &other)).await.unwrap();
    assert_eq!(vni_owners(&d).len(), 2);
    let dir = d.stop().await;

    let d = Daemon::start_in(dir, options(&u)).await;
    assert_eq!(vni_owners(&d), vec![(555_000, "sb-a".to_owned())]);
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_in("sb-b", &other)).await.unwrap();
    assert!(
        vni_owners(&d).contains(&(555_001, "sb-b".to_owned())),
        "a live tunnel's VNI is not given out again: {:?}",
        vni_owners(&d)
    );
    hv.stop_vm(context::with_timeout(0), &stop_request("sb-a")).await.unwrap();
    assert!(!pod.link_names().iter().any(|l| l.starts_with("vxlan1")), "removed after restart");
    assert!(!u.worker.nft_tables().contains("caa-vxlan-555000"));
    hv.stop_vm(context::with_timeout(0), &stop_request("sb-b")).await.unwrap();
    assert!(vni_owners(&d).is_empty());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unusable_pod_namespace_fails_create_vm_and_holds_nothing() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let d = Daemon::start(options(&u)).await;
    let (hv, _) = d.client().await;
    let mut req = create_request("sb-nons", "web");
    req.networkNamespacePath = "/run/netns/caa-no-such-namespace".to_owned();
    let (code, message) = status(hv.create_vm(context::with_timeout(0), &req).await);
    assert_eq!(code, Code::FAILED_PRECONDITION);
    assert!(
        message.starts_with("failed to inspect netns /run/netns/caa-no-such-namespace: "),
        "{message}"
    );
    // A namespace without a default route is not a CNI-made pod namespace.
    let bare = Netns::new("b");
    let (_, message) =
        status(hv.create_vm(context::with_timeout(0), &create_in("sb-bare", &bare)).await);
    assert!(
        message.contains("failed to inspect netns") && message.contains("default route"),
        "{message}"
    );
    assert!(vni_owners(&d).is_empty(), "a failed CreateVM holds no VNI");
    assert_eq!(d.manager.len(), 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_removes_its_tunnel_and_stop_vm_releases_the_vni() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", MAC, true);
    let opts =
        Options { forwarder_up: false, proxy_timeout: Duration::from_secs(1), ..options(&u) };
    let d = Daemon::start(opts).await;
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_in("sb-fail", &pod)).await.unwrap();
    let (_, message) =
        status(hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-fail")).await);
    assert!(message.contains("agent-protocol-forwarder"), "{message}");
    crate::daemon::eventually("the failed start's tunnel is removed", || async {
        !pod.link_names().iter().any(|l| l.starts_with("vxlan1")) && d.records() == 0
    })
    .await;
    assert!(!u.worker.nft_tables().contains("caa-vxlan"));
    assert_eq!(vni_owners(&d).len(), 1, "the sandbox keeps its VNI until StopVM");
    hv.stop_vm(context::with_timeout(0), &stop_request("sb-fail")).await.unwrap();
    assert!(vni_owners(&d).is_empty());
    d.stop().await;
}
