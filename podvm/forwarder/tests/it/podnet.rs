//! The VM side of the pod network as the forwarder runs it: a worker namespace with the
//! adaptor's half of the tunnel, a "VM" namespace where the forwarder builds its half from
//! apf.json, and TCP from the worker to the pod IP inside the VM's pod namespace.

use std::path::Path;

use caa_forwarder::Forwarder;
use caa_forwarder::cli::Options;
use caa_forwarder::podnet::PodNetworking;
use caa_podnet::{InspectOptions, PodNetwork, VmOptions, Vni, WorkerTunnel};
use caa_test_support::netns::traffic::round_trip;
use caa_test_support::netns::{POD_IP, Underlay, VM_IP, enabled};
use caa_userdata::ForwarderConfig;

const MAC: &str = "0a:58:0a:f4:01:07";

fn options(dir: &Path, podns: &Path) -> Options {
    let apf = dir.join("apf.json");
    let args = [
        "apf".to_owned(),
        "-disable-tls".to_owned(),
        "-listen=127.0.0.1:0".to_owned(),
        format!("-config={}", apf.display()),
        format!("-kata-agent-socket={}", dir.join("agent.sock").display()),
        format!("-pod-namespace={}", podns.display()),
    ];
    Options::parse_go(args.map(Into::into)).unwrap()
}

fn write_apf(dir: &Path, net: PodNetwork) {
    let config = ForwarderConfig { pod_network: net, ..ForwarderConfig::default() };
    std::fs::write(dir.join("apf.json"), config.to_json().unwrap()).unwrap();
}

fn in_vm(u: &Underlay) -> PodNetworking {
    PodNetworking::Tunnel(VmOptions { root_netns: u.vm.path(), ..VmOptions::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_builds_the_pod_network_and_removes_it_on_shutdown() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", MAC, true);
    let podns = u.add_vm_podns();
    let mut opts = InspectOptions::new(Vni { id: 555_000, index: 0 });
    opts.host_netns = u.worker.path();
    let net = caa_podnet::inspect(&pod.path(), &opts).await.unwrap();
    let vm_ips = [VM_IP.parse().unwrap()];
    let plan = WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &vm_ips).unwrap();
    let worker = caa_podnet::setup(&plan).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    write_apf(dir.path(), net);
    let forwarder =
        Forwarder::start(&options(dir.path(), &podns.path()), &in_vm(&u)).await.unwrap();
    let eth0 = podns.ip(&["-d", "addr", "show", "eth0"]);
    assert!(eth0.contains("10.244.1.7/24") && eth0.contains(MAC), "{eth0}");
    assert!(eth0.contains("vxlan id 555000 remote 192.168.100.1"), "{eth0}");
    round_trip(&u.worker.path(), &podns.path(), POD_IP, 5301, 256 * 1024);

    forwarder.shutdown().await;
    assert!(!podns.link_names().iter().any(|l| l.starts_with("eth0")), "{:?}", podns.link_names());
    assert!(!u.vm.nft_tables().contains("caa-vxlan"), "the VM's conntrack bypass is removed");
    caa_podnet::teardown(&worker).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pod_network_stops_the_forwarder_before_it_listens_and_leaves_nothing() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let podns = u.add_vm_podns();
    let dir = tempfile::tempdir().unwrap();
    let net = PodNetwork {
        pod_ip: "10.244.1.7/24".to_owned(),
        pod_hw_addr: MAC.to_owned(),
        interface: "eth0".to_owned(),
        worker_node_ip: "not-an-address".to_owned(),
        tunnel_type: "vxlan".to_owned(),
        mtu: 1500,
        vxlan_port: 4789,
        vxlan_id: 555_000,
        ..PodNetwork::default()
    };
    write_apf(dir.path(), net);
    let err = Forwarder::start(&options(dir.path(), &podns.path()), &in_vm(&u)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with("setting up the pod network") && text.contains("worker-node-ip"),
        "{text}"
    );
    assert_eq!(podns.link_names(), ["lo"]);
    assert!(!u.vm.ip(&["link"]).contains("vxlan"));
}

#[tokio::test]
async fn without_a_pod_ip_there_is_no_tunnel() {
    // No namespaces needed: nothing is built.
    let dir = tempfile::tempdir().unwrap();
    write_apf(dir.path(), PodNetwork::default());
    let podnet = PodNetworking::in_this_vm("");
    let forwarder = Forwarder::start(&options(dir.path(), Path::new("/run/netns/podns")), &podnet)
        .await
        .unwrap();
    forwarder.shutdown().await;
}
