//! Restarts and leftovers: VNIs stay unique across an adaptor restart, a persisted record tears
//! its tunnel down, a pod namespace that is already gone does not fail teardown.

use caa_podnet::{
    DEFAULT_VXLAN_MIN_ID, InspectOptions, PodNetError, PodNetwork, VmOptions, VniAllocator,
    WorkerTunnel, inspect_blocking, setup_blocking, teardown_blocking, vm_setup_blocking,
    vm_teardown_blocking,
};

use caa_test_support::netns::{Netns, Underlay, VM_IP, enabled};

/// Inspects `pod` with a VNI for `owner` and plans its worker tunnel.
fn plan_for(
    u: &Underlay,
    pod: &Netns,
    vnis: &VniAllocator,
    owner: &str,
) -> (PodNetwork, WorkerTunnel) {
    let mut opts = InspectOptions::new(vnis.allocate(owner).unwrap());
    opts.host_netns = u.worker.path();
    let net = inspect_blocking(&pod.path(), &opts).unwrap();
    let plan = WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &[VM_IP.parse().unwrap()]);
    (net, plan.unwrap())
}

#[test]
fn restart_keeps_live_vnis_and_a_persisted_record_tears_down() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod_a = u.add_pod("vpa", "0a:58:0a:f4:01:0a", false);
    let pod_b = u.add_pod("vpb", "0a:58:0a:f4:01:0b", false);
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("vni.json");

    let vnis = VniAllocator::open(&path, DEFAULT_VXLAN_MIN_ID).unwrap();
    let a = setup_blocking(&plan_for(&u, &pod_a, &vnis, "sandbox-a").1).unwrap();
    let record = serde_json::to_string(&a).unwrap();
    drop((vnis, a));

    // The adaptor restarts: the allocator comes back from its file.
    let vnis = VniAllocator::open(&path, DEFAULT_VXLAN_MIN_ID).unwrap();
    let (_, b_plan) = plan_for(&u, &pod_b, &vnis, "sandbox-b");
    assert_ne!(b_plan.vni, 555_000, "a live VNI was handed out again");

    // What upstream does after a restart (count from the minimum again) is refused by the
    // kernel, and the refusal leaves the live tunnel alone.
    let stale =
        WorkerTunnel { vni: 555_000, temp_interface: "caavx555000".into(), ..b_plan.clone() };
    let err = setup_blocking(&stale).unwrap_err();
    assert!(matches!(err, PodNetError::VniInUse { vni: 555_000, .. }), "{err}");
    assert!(pod_a.ip(&["link"]).contains("vxlan1"));
    assert!(u.worker.nft_tables().contains("caa-vxlan-555000"));
    assert!(!pod_b.ip(&["link"]).contains("vxlan1"));

    let b = setup_blocking(&b_plan).unwrap();

    // StopVM of A after the restart, from the persisted record; twice.
    let restored: WorkerTunnel = serde_json::from_str(&record).unwrap();
    teardown_blocking(&restored).unwrap();
    teardown_blocking(&restored).unwrap();
    assert!(!pod_a.ip(&["link"]).contains("vxlan1"));
    assert!(!pod_a.tc(&["qdisc", "show", "dev", "eth0"]).contains("ingress"));
    let tables = u.worker.nft_tables();
    assert!(
        !tables.contains("caa-vxlan-555000") && tables.contains(&format!("caa-vxlan-{}", b.vni)),
        "{tables}"
    );
    assert!(pod_b.ip(&["link"]).contains("vxlan1"), "B is untouched");
    assert!(vnis.release_owner("sandbox-a").unwrap().is_some());

    teardown_blocking(&b).unwrap();
    assert!(!u.worker.nft_tables().contains("caa-vxlan"));
}

#[test]
fn teardown_after_the_namespaces_are_gone_cleans_the_host_side() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", "0a:58:0a:f4:01:07", false);
    let podns = u.add_vm_podns();
    let state = tempfile::tempdir().unwrap();
    let vnis = VniAllocator::open(state.path().join("vni.json"), DEFAULT_VXLAN_MIN_ID).unwrap();
    let (net, plan) = plan_for(&u, &pod, &vnis, "s");
    let worker = setup_blocking(&plan).unwrap();
    let vm_opts = VmOptions { root_netns: u.vm.path(), ..VmOptions::default() };
    let vm = vm_setup_blocking(&net, &podns.path(), &vm_opts).unwrap();

    pod.delete();
    podns.delete();
    teardown_blocking(&worker).unwrap();
    vm_teardown_blocking(&vm).unwrap();
    assert!(!u.worker.nft_tables().contains("caa-vxlan"));
    assert!(!u.vm.nft_tables().contains("caa-vxlan"));
    assert!(!u.vm.ip(&["link"]).contains("caavx"));
}

#[test]
fn a_failed_setup_removes_what_it_made() {
    if !enabled() {
        return;
    }
    let u = Underlay::create();
    let pod = u.add_pod("vp0", "0a:58:0a:f4:01:07", false);
    let state = tempfile::tempdir().unwrap();
    let vnis = VniAllocator::open(state.path().join("vni.json"), DEFAULT_VXLAN_MIN_ID).unwrap();
    // A pod interface that is not there: the device is made and moved, then tc fails.
    let plan = WorkerTunnel { pod_interface: "eth9".into(), ..plan_for(&u, &pod, &vnis, "s").1 };
    let err = setup_blocking(&plan).unwrap_err();
    assert!(
        matches!(err, PodNetError::NoSuchInterface { ref name, .. } if name == "eth9"),
        "{err}"
    );
    assert!(!pod.ip(&["link"]).contains("vxlan1"));
    assert!(!u.worker.ip(&["link"]).contains("caavx"));
    assert!(!u.worker.nft_tables().contains("caa-vxlan"));
}
