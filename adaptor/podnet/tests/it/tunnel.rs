//! The tunnel end to end: inspect the CNI's pod, set up both sides from the apf.json the VM
//! would read, carry TCP both ways, check the conntrack bypass, tear down to nothing.

use caa_podnet::{
    DEFAULT_VXLAN_MIN_ID, FILTER_PRIORITY, InspectOptions, NeighborState, RouteProtocol,
    RouteScope, VmOptions, VniAllocator, WorkerTunnel, inspect, setup, teardown, vm_setup,
    vm_teardown,
};
use caa_userdata::ForwarderConfig;

use caa_test_support::netns::traffic::round_trip;
use caa_test_support::netns::{POD_IP, Underlay, VM_IP, enabled};

const POD_MAC: &str = "0a:58:0a:f4:01:07";

#[tokio::test]
async fn tunnel_carries_tcp_both_ways_and_teardown_leaves_nothing() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", POD_MAC, true);
    let podns = u.add_vm_podns();
    let state = tempfile::tempdir().unwrap();
    let vnis = VniAllocator::open(state.path().join("vni.json"), DEFAULT_VXLAN_MIN_ID).unwrap();
    let vni = vnis.allocate("sandbox-1").unwrap();
    let table = format!("caa-vxlan-{}", vni.id);

    // CreateVM: what the CNI made, as apf.json's pod-network.
    let mut opts = InspectOptions::new(vni);
    opts.host_netns = u.worker.path();
    let net = inspect(&pod.path(), &opts).await.unwrap();
    assert_eq!(net.pod_ip, "10.244.1.7/24");
    assert_eq!(net.pod_hw_addr, POD_MAC);
    assert_eq!(net.interface, "eth0");
    assert_eq!(net.worker_node_ip, "192.168.100.1/24");
    assert_eq!(net.tunnel_type, "vxlan");
    assert_eq!(net.mtu, 1500);
    assert_eq!((net.vxlan_id, net.index, net.vxlan_port), (555_000, 0, 4789));
    assert!(!net.dedicated);
    assert!(net.neighbors.is_empty());
    let default = net.routes.iter().find(|r| r.dst == "0.0.0.0/0").expect("default route");
    assert_eq!((default.gw.as_str(), default.dev.as_str()), ("10.244.1.1", "eth0"));
    assert_eq!(default.protocol, RouteProtocol::Boot);
    let subnet = net.routes.iter().find(|r| r.dst == "10.244.1.0/24").expect("subnet route");
    assert_eq!(
        (subnet.gw.as_str(), subnet.protocol, subnet.scope),
        ("", RouteProtocol::Kernel, RouteScope::Link)
    );

    // StartVM on the worker.
    let vm_ips = [VM_IP.parse().unwrap()];
    let plan = WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &vm_ips).unwrap();
    let worker = setup(&plan).await.unwrap();
    assert!(worker.pod_ingress_created);
    let vx = pod.ip(&["-d", "link", "show", "vxlan1"]);
    assert!(vx.contains("vxlan id 555000 remote 192.168.100.2 local 192.168.100.1"), "{vx}");
    assert!(vx.contains("dstport 4789"), "{vx}");
    assert!(!u.worker.ip(&["link"]).contains("caavx"), "the device left the host namespace");
    let pref = format!("pref {FILTER_PRIORITY}");
    let f = pod.tc(&["filter", "show", "dev", "eth0", "ingress"]);
    assert!(f.contains("Egress Redirect to device vxlan1") && f.contains(&pref), "{f}");
    let f = pod.tc(&["filter", "show", "dev", "vxlan1", "ingress"]);
    assert!(f.contains("Egress Redirect to device eth0") && f.contains("protocol all"), "{f}");
    assert!(u.worker.nft_tables().contains(&table));

    // The VM reads the same pod-network back from apf.json.
    let apf = ForwarderConfig { pod_network: net.clone(), ..Default::default() }.to_json().unwrap();
    let read = ForwarderConfig::from_json(apf.as_bytes()).unwrap().pod_network;
    let vm_opts = VmOptions { root_netns: u.vm.path(), ..VmOptions::default() };
    let vm = vm_setup(&read, &podns.path(), &vm_opts).await.unwrap();
    assert_eq!(vm.mtu, 1450);
    let eth0 = podns.ip(&["-d", "link", "show", "eth0"]);
    assert!(eth0.contains("mtu 1450") && eth0.contains(POD_MAC), "{eth0}");
    assert!(eth0.contains("vxlan id 555000 remote 192.168.100.1 local 192.168.100.2"), "{eth0}");
    assert!(podns.ip(&["-4", "addr", "show", "eth0"]).contains("inet 10.244.1.7/24"));
    let routes = podns.ip(&["route", "show"]);
    assert!(routes.contains("default via 10.244.1.1 dev eth0"), "{routes}");
    assert!(podns.ip(&["route", "show", "proto", "boot"]).contains("default via 10.244.1.1"));
    assert!(routes.contains("10.244.1.0/24 dev eth0 proto kernel scope link"), "{routes}");
    assert!(u.vm.nft_tables().contains(&table));

    // Conntrack on in the worker namespace, so the bypass has something to bypass.
    let w = &u.worker;
    w.exec(&["nft", "add", "table", "ip", "cttest"]);
    w.exec(&[
        "nft",
        "add",
        "chain",
        "ip",
        "cttest",
        "out",
        "{ type filter hook output priority 0 ; }",
    ]);
    w.exec(&[
        "nft",
        "add",
        "rule",
        "ip",
        "cttest",
        "out",
        "ct",
        "state",
        "new,established",
        "counter",
    ]);

    // A client on the node reaches the pod IP, which now lives in the VM, and back.
    round_trip(&w.path(), &podns.path(), POD_IP, 5001, 4 << 20);
    round_trip(&w.path(), &podns.path(), POD_IP, 5002, 1);

    let ct = w.exec(&["cat", "/proc/net/nf_conntrack"]);
    assert!(
        ct.lines().any(|l| l.contains("tcp") && l.contains("dst=10.244.1.7")),
        "conntrack is on: {ct}"
    );
    assert!(
        !ct.lines().any(|l| l.contains("udp") && l.contains("dport=4789")),
        "tunnel flow tracked: {ct}"
    );

    // StopVM, twice.
    teardown(&worker).await.unwrap();
    vm_teardown(&vm).await.unwrap();
    teardown(&worker).await.unwrap();
    vm_teardown(&vm).await.unwrap();

    assert!(!pod.ip(&["link"]).contains("vxlan1"));
    assert_eq!(pod.tc(&["filter", "show", "dev", "eth0", "ingress"]).trim(), "");
    assert!(!pod.tc(&["qdisc", "show", "dev", "eth0"]).contains("ingress"));
    assert!(
        pod.ip(&["-4", "addr", "show", "eth0"]).contains("10.244.1.7/24"),
        "the CNI's pod is untouched"
    );
    assert!(!podns.ip(&["link"]).contains("eth0"));
    for ns in [&u.worker, &u.vm] {
        assert!(!ns.ip(&["link"]).contains("caavx"));
        assert!(!ns.nft_tables().contains("caa-vxlan"), "{}", ns.nft_tables());
    }
    assert!(w.nft_tables().contains("cttest"), "only our table was removed");
    vnis.release_owner("sandbox-1").unwrap();
}

#[tokio::test]
async fn permanent_neighbours_and_subnet_routes_reach_the_vm() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", POD_MAC, true);
    pod.ip(&[
        "neigh",
        "add",
        "10.244.1.254",
        "lladdr",
        "ee:ee:ee:ee:ee:ee",
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
    let podns = u.add_vm_podns();
    let state = tempfile::tempdir().unwrap();
    let vnis = VniAllocator::open(state.path().join("vni.json"), 600_000).unwrap();
    let mut opts = InspectOptions::new(vnis.allocate("s").unwrap());
    opts.host_netns = u.worker.path();
    opts.pod_subnet_cidrs = vec!["10.96.0.0/12".parse().unwrap()];
    let net = inspect(&pod.path(), &opts).await.unwrap();
    assert_eq!(net.vxlan_id, 600_000);
    let n = &net.neighbors[..];
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0].ip.as_str(), n[0].hw_addr.as_str(), n[0].dev.as_str()),
        ("10.244.1.254", "ee:ee:ee:ee:ee:ee", "eth0")
    );
    assert_eq!(n[0].state, NeighborState::Permanent);
    let extra =
        net.routes.iter().find(|r| r.dst == "10.96.0.0/12").expect("POD_SUBNET_CIDRS route");
    assert_eq!((extra.gw.as_str(), extra.dev.as_str()), ("10.244.1.1", "eth0"));

    let plan =
        WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &[VM_IP.parse().unwrap()]).unwrap();
    let worker = setup(&plan).await.unwrap();
    let vm_opts = VmOptions { root_netns: u.vm.path(), ..VmOptions::default() };
    let vm = vm_setup(&net, &podns.path(), &vm_opts).await.unwrap();
    let routes = podns.ip(&["route", "show"]);
    assert!(routes.contains("10.96.0.0/12 via 10.244.1.1 dev eth0"), "{routes}");
    let neigh = podns.ip(&["neigh", "show", "dev", "eth0"]);
    assert!(neigh.contains("10.244.1.254 lladdr ee:ee:ee:ee:ee:ee PERMANENT"), "{neigh}");
    round_trip(&u.worker.path(), &podns.path(), POD_IP, 5003, 64 * 1024);
    vm_teardown(&vm).await.unwrap();
    teardown(&worker).await.unwrap();
    assert!(!podns.ip(&["neigh", "show"]).contains("10.244.1.254"));
}
