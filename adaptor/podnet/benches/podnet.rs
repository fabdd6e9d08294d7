//! Pod networking cost on this machine: time to set up and tear down the tunnel of one sandbox
//! (worker side and VM side, N sandboxes in a row), and TCP throughput through the tunnel next
//! to the plain underlay. Needs root; runs only with `CAA_TEST_NETNS=1`.
//!
//! `CAA_TEST_NETNS=1 cargo bench -p caa-podnet --bench podnet` (env `PODNET_BENCH_N`,
//! `PODNET_BENCH_MIB` override the sandbox count and transfer size).

use std::io::Write;
use std::time::{Duration, Instant};

use caa_podnet::{
    DEFAULT_VXLAN_MIN_ID, InspectOptions, VmOptions, VniAllocator, WorkerTunnel, inspect_blocking,
    setup_blocking, teardown_blocking, vm_setup_blocking, vm_teardown_blocking,
};

use caa_test_support::netns::traffic;
use caa_test_support::netns::{POD_IP, Underlay, VM_IP, enabled};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Per-phase durations of every sandbox.
#[derive(Debug, Default)]
struct Phases {
    inspect: Vec<Duration>,
    worker_setup: Vec<Duration>,
    vm_setup: Vec<Duration>,
    vm_teardown: Vec<Duration>,
    worker_teardown: Vec<Duration>,
    total: Vec<Duration>,
}

fn timed<T>(into: &mut Vec<Duration>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let v = f();
    into.push(start.elapsed());
    v
}

fn line(out: &mut impl Write, name: &str, samples: &[Duration]) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let _ = writeln!(
        out,
        "{name:<28} mean {mean:7.2} ms   p50 {:7.2}   p95 {:7.2}   max {:7.2}",
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );
}

fn main() {
    if !enabled() {
        return;
    }
    let n = env_usize("PODNET_BENCH_N", 50);
    let mib = env_usize("PODNET_BENCH_MIB", 200);
    let mut out = std::io::stdout();
    let u = Underlay::create();
    let state = tempfile::tempdir().expect("tempdir");
    let vnis = VniAllocator::open(state.path().join("vni.json"), DEFAULT_VXLAN_MIN_ID).unwrap();
    let vm_opts = VmOptions { root_netns: u.vm.path(), ..VmOptions::default() };
    let vm_ips = [VM_IP.parse().unwrap()];

    let mut p = Phases::default();
    for i in 0..n {
        let pod = u.add_pod(&format!("vp{i}"), "0a:58:0a:f4:01:07", false);
        let podns = u.add_vm_podns();
        let owner = format!("sandbox-{i}");
        let mut opts = InspectOptions::new(vnis.allocate(&owner).unwrap());
        opts.host_netns = u.worker.path();
        let start = Instant::now();
        let net = timed(&mut p.inspect, || inspect_blocking(&pod.path(), &opts).unwrap());
        let plan = WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &vm_ips).unwrap();
        let w = timed(&mut p.worker_setup, || setup_blocking(&plan).unwrap());
        let v =
            timed(&mut p.vm_setup, || vm_setup_blocking(&net, &podns.path(), &vm_opts).unwrap());
        timed(&mut p.vm_teardown, || vm_teardown_blocking(&v).unwrap());
        timed(&mut p.worker_teardown, || teardown_blocking(&w).unwrap());
        p.total.push(start.elapsed());
        vnis.release_owner(&owner).unwrap();
    }
    let _ = writeln!(out, "tunnel lifecycle, {n} sandboxes in a row (worker + VM side):");
    line(&mut out, "inspect", &p.inspect);
    line(&mut out, "worker setup", &p.worker_setup);
    line(&mut out, "vm setup", &p.vm_setup);
    line(&mut out, "vm teardown", &p.vm_teardown);
    line(&mut out, "worker teardown", &p.worker_teardown);
    line(&mut out, "total per sandbox", &p.total);

    // Throughput: one live tunnel, then the plain underlay between the same namespaces.
    let pod = u.add_pod("vpt", "0a:58:0a:f4:01:07", true);
    let podns = u.add_vm_podns();
    let mut opts = InspectOptions::new(vnis.allocate("throughput").unwrap());
    opts.host_netns = u.worker.path();
    let net = inspect_blocking(&pod.path(), &opts).unwrap();
    let plan = WorkerTunnel::plan(&pod.path(), &u.worker.path(), &net, &vm_ips).unwrap();
    let w = setup_blocking(&plan).unwrap();
    let v = vm_setup_blocking(&net, &podns.path(), &vm_opts).unwrap();
    let bytes = mib * 1024 * 1024;
    let tunnel = traffic::throughput(&u.worker.path(), &podns.path(), POD_IP, 5100, bytes);
    let plain = traffic::throughput(&u.worker.path(), &u.vm.path(), VM_IP, 5101, bytes);
    vm_teardown_blocking(&v).unwrap();
    teardown_blocking(&w).unwrap();
    let _ = writeln!(out, "TCP throughput, {mib} MiB one way, worker -> VM:");
    let _ = writeln!(out, "  through the tunnel (pod IP, MTU {})  {tunnel:8.1} MiB/s", v.mtu);
    let _ = writeln!(out, "  plain underlay (veth, MTU 1500)      {plain:8.1} MiB/s");
    let _ = writeln!(out, "  tunnel / plain                       {:8.2}", tunnel / plain);
}
