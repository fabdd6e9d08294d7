//! The aws plugin's cost against moto on this machine: binary size, spawn + `initialize` time
//! (which includes DescribeImages and DescribeInstanceTypes), RSS after `initialize`, and
//! createInstance / deleteInstance latency one at a time and sixteen in flight. moto answers
//! in a few ms, so the latencies are the plugin's and the SDK's own overhead plus moto's Python,
//! not EC2's. Needs moto (`pip install 'moto[ec2,server]'`).
//!
//! `cargo bench -p caa-provider-aws --bench moto` (env `AWS_BENCH_N` overrides the count).

#[path = "../tests/it/moto.rs"]
mod moto;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caa_plugin_proto::method::{CreateInstance, DeleteInstance};
use caa_plugin_proto::{CreateInstanceParams, DeleteInstanceParams, tags};

use moto::{BIN, Moto};

fn params(i: usize) -> CreateInstanceParams {
    let sandbox = format!("bench{i:06}");
    CreateInstanceParams {
        operation_id: format!("op-{sandbox}"),
        deadline_ms: 60_000,
        pod_name: "bench".to_owned(),
        pod_namespace: "default".to_owned(),
        sandbox_id: sandbox.clone(),
        user_data: "#cloud-config\n".to_owned(),
        user_data_format: Some("cloud-config".to_owned()),
        spec: Default::default(),
        tags: BTreeMap::from([(tags::SANDBOX_ID.to_owned(), sandbox)]),
    }
}

fn delete_params(id: &str) -> DeleteInstanceParams {
    DeleteInstanceParams {
        operation_id: format!("delete-{id}"),
        instance_id: id.to_owned(),
        sandbox_id: None,
        deadline_ms: 60_000,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pick = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    format!(
        "{name:<22} p50 {:7.1} ms   p95 {:7.1} ms   max {:7.1} ms",
        pick(0.5),
        pick(0.95),
        pick(1.0)
    )
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(moto) = Moto::start().await else { return };
    let n: usize = std::env::var("AWS_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut out = Vec::new();
    let size = std::fs::metadata(BIN).map(|m| m.len()).unwrap_or(0);
    out.push(format!("binary {BIN}: {:.1} MiB", size as f64 / (1 << 20) as f64));

    // The first plugin pays moto's lazy backend load; measure a second one.
    drop(moto.plugin(&[]).await);
    let started = Instant::now();
    let p = moto.plugin(&[]).await;
    out.push(format!("spawn + initialize: {:.1} ms", ms(started.elapsed())));
    out.push(format!("RSS after initialize: {:.1} MiB", rss_kib(p.pid()) as f64 / 1024.0));

    let (mut creates, mut deletes) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t = Instant::now();
        let vm = p.call::<CreateInstance>(&params(i)).await.expect("create");
        creates.push(t.elapsed());
        let t = Instant::now();
        p.call::<DeleteInstance>(&delete_params(&vm.instance_id)).await.expect("delete");
        deletes.push(t.elapsed());
    }
    out.push(summary("createInstance", creates));
    out.push(summary("deleteInstance", deletes));

    let t = Instant::now();
    let all: Vec<CreateInstanceParams> = (0..16).map(|i| params(n + i)).collect();
    let calls = all.iter().map(|params| p.call::<CreateInstance>(params));
    let results = futures_util::future::join_all(calls).await;
    let wall = t.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    out.push(format!("16 creates in flight: {:.1} ms wall", ms(wall)));
    out.push(format!("RSS after the runs: {:.1} MiB", rss_kib(p.pid()) as f64 / 1024.0));
    p.shutdown().await.expect("shutdown");
    let mut stdout = std::io::stdout().lock();
    for line in out {
        let _ = std::io::Write::write_all(&mut stdout, format!("{line}\n").as_bytes());
    }
}
