//! Daemon benchmarks over the real `cloud-api-adaptor` binary and the real mock plugin, driven
//! through ttrpc like the Kata shim (a new connection per call): the per-sandbox overhead of
//! CreateVM + StartVM + StopVM with a zero-latency plugin, and 1,000 sandboxes started at once
//! with a 1 s create latency (wall time and the daemon's peak RSS). State lives on tmpfs
//! (`/dev/shm`), as it does under `/run` on a node. Run with
//! `cargo bench -p caa-adaptor --bench sandboxes`.

#![allow(clippy::print_stdout)] // a benchmark binary reports on stdout

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caa_kata_protos::hypervisor::{
    CreateVMRequest, HypervisorClient, StartVMRequest, StopVMRequest,
};
use caa_kata_protos::ttrpc::r#async::Client;
use caa_kata_protos::ttrpc::context;

const DAEMON: &str = env!("CARGO_BIN_EXE_cloud-api-adaptor");

/// The release mock plugin next to the daemon, built if missing.
fn plugin_dir() -> PathBuf {
    let dir = Path::new(DAEMON).parent().expect("target dir").to_path_buf();
    if !dir.join("caa-provider-mock").exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let ok = Command::new(cargo)
            .args(["build", "--release", "-p", "caa-provider-mock"])
            .status()
            .expect("cargo");
        assert!(ok.success(), "building the mock plugin failed");
    }
    dir
}

struct Daemon {
    child: Child,
    dir: PathBuf,
    socket: String,
}

impl Daemon {
    fn start(tag: &str, forwarder_port: u16, latency: &str) -> Daemon {
        let dir = PathBuf::from(format!("/dev/shm/cb-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bench dir");
        let socket = dir.join("hv.sock");
        let child = Command::new(DAEMON)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CAA_PLUGIN_DIR", plugin_dir())
            .env("CAA_STATE_DIR", dir.join("state"))
            .env("FORWARDER_PORT", forwarder_port.to_string())
            .env("MOCK_LATENCY_MS", latency)
            .env("RUST_LOG", "warn")
            .args(["mock", "-disable-tls", "-socket"])
            .arg(&socket)
            .arg("-pods-dir")
            .arg(dir.join("p"))
            .args(["-probe-port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the daemon");
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon { child, dir, socket: format!("unix://{}", socket.display()) }
    }

    async fn client(&self) -> HypervisorClient {
        HypervisorClient::new(Client::connect(&self.socket).await.expect("connect"))
    }

    /// Peak resident set size (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn create(id: &str) -> CreateVMRequest {
    let annotations = HashMap::from([
        ("io.kubernetes.cri.sandbox-name".to_owned(), format!("pod-{id}")),
        ("io.kubernetes.cri.sandbox-namespace".to_owned(), "bench".to_owned()),
    ]);
    CreateVMRequest { id: id.to_owned(), annotations, ..Default::default() }
}

/// A forwarder stand-in that accepts and drops every connection.
async fn forwarder() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });
    port
}

async fn lifecycle(d: &Daemon, id: &str) {
    let ctx = || context::with_timeout(0);
    d.client().await.create_vm(ctx(), &create(id)).await.expect("CreateVM");
    let start = StartVMRequest { id: id.to_owned(), ..Default::default() };
    d.client()
        .await
        .start_vm(context::with_timeout(600_000_000_000), &start)
        .await
        .expect("StartVM");
    let stop = StopVMRequest { id: id.to_owned(), ..Default::default() };
    d.client().await.stop_vm(ctx(), &stop).await.expect("StopVM");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let port = forwarder().await;

    let d = Daemon::start("seq", port, "");
    for i in 0..20 {
        lifecycle(&d, &format!("warm{i:04}")).await;
    }
    let mut samples = Vec::new();
    for i in 0..300 {
        let started = Instant::now();
        lifecycle(&d, &format!("seq{i:05}")).await;
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "CreateVM+StartVM+StopVM, zero-latency plugin (300 sequential): p50 {:.2} ms p99 {:.2} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3
    );
    drop(d);

    let n = 1000;
    let d = Daemon::start("par", port, "createInstance=1000");
    let ids: Vec<String> = (0..n).map(|i| format!("par{i:05}")).collect();
    for id in &ids {
        d.client().await.create_vm(context::with_timeout(0), &create(id)).await.expect("CreateVM");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in &ids {
        // Each shim dials its own connection, concurrently with the others.
        let socket = d.socket.clone();
        let start = StartVMRequest { id: id.clone(), ..Default::default() };
        tasks.push(tokio::spawn(async move {
            let client = HypervisorClient::new(Client::connect(&socket).await?);
            client.start_vm(context::with_timeout(600_000_000_000), &start).await
        }));
    }
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(_))) {
            failed += 1;
        }
    }
    let wall = started.elapsed();
    println!(
        "{n} StartVM at once, 1 s plugin create latency: wall {:.3} s, {failed} failed, daemon peak RSS {:.1} MiB",
        wall.as_secs_f64(),
        d.peak_rss_mib()
    );
    for id in &ids {
        let stop = StopVMRequest { id: id.clone(), ..Default::default() };
        let _ = d.client().await.stop_vm(context::with_timeout(0), &stop).await;
    }
}
