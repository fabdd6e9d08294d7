//! Dedicated interface mode end to end, and the refusals: external networking via the pod VM,
//! a VM without a primary interface, pods the worker side cannot describe.

use std::time::Duration;

use caa_podnet::{
    DEFAULT_VXLAN_MIN_ID, InspectOptions, PodNetError, VmOptions, Vni, WorkerTunnel, inspect,
    inspect_blocking, setup, teardown, vm_setup, vm_setup_blocking, vm_teardown,
};

use caa_test_support::netns::traffic::round_trip;
use caa_test_support::netns::{POD_IP, Underlay, VM_IP, enabled};

const VNI: Vni = Vni { id: DEFAULT_VXLAN_MIN_ID, index: 0 };

#[tokio::test]
async fn dedicated_interface_carries_the_tunnel_over_the_second_link() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    // A second link between worker and VM: the dedicated tunnel network.
    u.worker.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1", "netns", &u.vm.name]);
    u.worker.ip(&["addr", "add", "172.30.0.1/24", "dev", "d0"]);
    u.worker.ip(&["link", "set", "d0", "up"]);
    u.vm.ip(&["addr", "add", "172.30.0.2/24", "dev", "d1"]);
    u.vm.ip(&["link", "set", "d1", "up"]);
    let pod = u.add_pod("vp0", "0a:58:0a:f4:01:07", true);
    let podns = u.add_vm_podns();

    let mut opts = InspectOptions::new(VNI);
    opts.host_netns = u.worker.path();
    opts.host_interface = Some("u0".into());
    assert!(!inspect(&pod.path(), &opts).await.unwrap().dedicated, "the primary is not dedicated");
    opts.host_interface = Some("d0".into());
    let net = inspect(&pod.path(), &opts).await.unwrap();
    assert!(net.dedicated);
    assert_eq!(net.worker_node_ip, "172.30.0.1/24");

    let one = [VM_IP.parse().unwrap()];
    let err = WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &one).unwrap_err();
    assert!(matches!(err, PodNetError::MissingVmAddress { count: 1 }), "{err}");
    let two = [VM_IP.parse().unwrap(), "172.30.0.2".parse().unwrap()];
    let plan = WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &two).unwrap();
    assert_eq!(plan.remote.to_string(), "172.30.0.2");
    let worker = setup(&plan).await.unwrap();

    let mut vm_opts = VmOptions { root_netns: u.vm.path(), ..VmOptions::default() };
    let err = vm_setup(&net, &podns.path(), &vm_opts).await.unwrap_err();
    assert!(
        matches!(err, PodNetError::InvalidConfig { .. }),
        "dedicated needs -host-interface: {err}"
    );
    vm_opts.host_interface = Some("d1".into());
    let vm = vm_setup(&net, &podns.path(), &vm_opts).await.unwrap();
    assert_eq!(
        (vm.local.to_string(), vm.remote.to_string()),
        ("172.30.0.2".into(), "172.30.0.1".into())
    );

    // Count the tunnel's packets on the dedicated link only.
    u.vm.exec(&["nft", "add", "table", "ip", "count"]);
    u.vm.exec(&[
        "nft",
        "add",
        "chain",
        "ip",
        "count",
        "in",
        "{ type filter hook input priority 0 ; }",
    ]);
    u.vm.exec(&[
        "nft", "add", "rule", "ip", "count", "in", "iifname", "d1", "udp", "dport", "4789",
        "counter",
    ]);
    round_trip(&u.worker.path(), &podns.path(), POD_IP, 5004, 256 * 1024);
    let counted = u.vm.exec(&["nft", "list", "chain", "ip", "count", "in"]);
    assert!(!counted.contains("counter packets 0 "), "no tunnel packet on d1: {counted}");

    vm_teardown(&vm).await.unwrap();
    teardown(&worker).await.unwrap();
}

#[tokio::test]
async fn the_vm_side_refuses_what_it_cannot_do_and_gives_up_waiting() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", "0a:58:0a:f4:01:07", false);
    let podns = u.add_vm_podns();
    let mut opts = InspectOptions::new(VNI);
    opts.host_netns = u.worker.path();
    let mut net = inspect(&pod.path(), &opts).await.unwrap();
    let vm_opts = VmOptions {
        root_netns: u.vm.path(),
        wait: Duration::from_millis(300),
        poll: Duration::from_millis(100),
        ..VmOptions::default()
    };
    let before = u.vm.link_names();

    net.external_net_via_pod_vm = true;
    let err = vm_setup(&net, &podns.path(), &vm_opts).await.unwrap_err();
    assert!(matches!(err, PodNetError::NotSupported(_)), "{err}");
    assert!(err.to_string().contains("not supported yet"), "{err}");
    net.external_net_via_pod_vm = false;

    // No default route in the VM: no primary interface to wait for.
    u.vm.ip(&["route", "del", "default"]);
    let err = vm_setup_blocking(&net, &podns.path(), &vm_opts).unwrap_err();
    assert!(matches!(err, PodNetError::Timeout { .. }), "{err}");
    assert_eq!(u.vm.link_names(), before, "nothing was created");
    assert!(!podns.ip(&["link"]).contains("eth0"));

    let mut bad = net.clone();
    bad.pod_hw_addr = "not-a-mac".into();
    let err = vm_setup(&bad, &podns.path(), &vm_opts).await.unwrap_err();
    assert!(matches!(err, PodNetError::InvalidConfig { field: "pod-hw-addr", .. }), "{err}");
}

#[test]
fn inspect_needs_a_default_route_and_exactly_one_pod_address() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", "0a:58:0a:f4:01:07", false);
    let mut opts = InspectOptions::new(VNI);
    opts.host_netns = u.worker.path();

    pod.ip(&["addr", "add", "10.244.1.8/24", "dev", "eth0"]);
    let err = inspect_blocking(&pod.path(), &opts).unwrap_err();
    assert!(matches!(err, PodNetError::AddressCount { count: 2, .. }), "{err}");
    pod.ip(&["addr", "del", "10.244.1.8/24", "dev", "eth0"]);

    pod.ip(&["route", "del", "default"]);
    let err = inspect_blocking(&pod.path(), &opts).unwrap_err();
    assert!(
        matches!(err, PodNetError::NoDefaultRoute { ref netns } if *netns == pod.path()),
        "{err}"
    );

    let err =
        inspect_blocking(&u.worker.path().with_file_name("caa-no-such-ns"), &opts).unwrap_err();
    assert!(matches!(err, PodNetError::NetnsNotFound { .. }), "{err}");

    opts.host_interface = Some("nope0".into());
    pod.ip(&["route", "add", "default", "via", "10.244.1.1"]);
    let err = inspect_blocking(&pod.path(), &opts).unwrap_err();
    assert!(
        matches!(err, PodNetError::NoSuchInterface { ref name, .. } if name == "nope0"),
        "{err}"
    );
}
