//! Host ↔ plugin benchmark over real pipes to the real mock plugin process: round trip of a
//! trivial call (p50, p99), throughput with 64 calls in flight over one process, and the time
//! to spawn and initialize a plugin. Prints numbers; run with
//! `cargo bench -p caa-provider-mock --bench host_roundtrip` (release build).

#![allow(clippy::print_stdout)] // a benchmark binary reports on stdout

use std::sync::Arc;
use std::time::{Duration, Instant};

use caa_plugin_host::{CallOptions, Client, ClientOptions, Plugin, PluginCommand, PluginSpec};
use caa_plugin_proto::method::{Initialize, Ping};
use caa_plugin_proto::{Empty, InitializeParams, PeerInfo};

const MOCK: &str = env!("CARGO_BIN_EXE_caa-provider-mock");

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn init_params() -> InitializeParams {
    InitializeParams {
        protocol_versions: caa_plugin_proto::PROTOCOL_VERSIONS.to_vec(),
        host: PeerInfo { name: "bench".to_owned(), version: None, sdk: None },
        host_pid: Some(std::process::id()),
        provider: Some("mock".to_owned()),
        log_level: None,
        config: Default::default(),
        host_capabilities: None,
    }
}

/// Spawn + initialize over the raw client (what the host does per start, minus `--describe`).
async fn spawn_and_initialize() -> Duration {
    let started = Instant::now();
    let spawned = PluginCommand::new(MOCK).name("mock").spawn().expect("spawn");
    let client = Client::new(spawned.stdout, spawned.stdin, ClientOptions::default());
    client
        .call::<Initialize>(&init_params(), CallOptions::new(Duration::from_secs(10)))
        .await
        .expect("initialize");
    let took = started.elapsed();
    client.close_input();
    let mut child = spawned.child;
    let _ = child.wait().await;
    took
}

/// The floor: a blocking round trip of one short line through `cat` (two pipes, two processes,
/// no runtime, no JSON).
fn pipe_floor() {
    use std::io::{BufRead, BufReader, Write};
    #[allow(clippy::disallowed_methods)]
    let mut cat = std::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cat");
    let mut input = cat.stdin.take().expect("stdin");
    let mut output = BufReader::new(cat.stdout.take().expect("stdout"));
    let mut line = String::new();
    let mut rtts = Vec::with_capacity(20_000);
    for i in 0..22_000 {
        let started = Instant::now();
        input.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n").expect("write");
        line.clear();
        output.read_line(&mut line).expect("read");
        if i >= 2000 {
            rtts.push(started.elapsed());
        }
    }
    drop(input);
    let _ = cat.wait();
    rtts.sort();
    println!(
        "floor: line echo through cat (20000): p50 {} p99 {}",
        micros(percentile(&rtts, 0.5)),
        micros(percentile(&rtts, 0.99))
    );
}

fn main() {
    pipe_floor();
    // The host's runtime decides most of the round trip: each cross-thread wake-up costs tens of
    // microseconds on these VMs, so both flavours are measured.
    let current =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    println!("== host on a current-thread runtime");
    current.block_on(measure());
    drop(current);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("== host on a multi-thread runtime (2 workers)");
    multi.block_on(measure());
}

/// The async floor: the same echo through `cat`, but written and read with tokio pipes from one
/// task on the runtime under test (epoll readiness, no JSON, no tasks, no plugin logic).
async fn async_pipe_floor() {
    use tokio::io::AsyncWriteExt;
    #[allow(clippy::disallowed_methods)]
    let mut cat = tokio::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cat");
    let mut input = cat.stdin.take().expect("stdin");
    let mut output = caa_plugin_wire::LineReader::new(cat.stdout.take().expect("stdout"), 1 << 20);
    let mut rtts = Vec::with_capacity(20_000);
    for i in 0..22_000 {
        let started = Instant::now();
        input.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n").await.expect("write");
        output.next_frame().await.expect("read").expect("line");
        if i >= 2000 {
            rtts.push(started.elapsed());
        }
    }
    drop(input);
    let _ = cat.wait().await;
    rtts.sort();
    println!(
        "async floor: line echo through cat (20000): p50 {} p99 {}",
        micros(percentile(&rtts, 0.5)),
        micros(percentile(&rtts, 0.99))
    );
}

async fn measure() {
    async_pipe_floor().await;
    let mut starts = Vec::new();
    for _ in 0..50 {
        starts.push(spawn_and_initialize().await);
    }
    starts.sort();
    println!(
        "spawn+initialize (50 runs): p50 {} p99 {}",
        micros(percentile(&starts, 0.5)),
        micros(percentile(&starts, 0.99))
    );

    let spec = PluginSpec::new("mock", PluginCommand::new(MOCK));
    let mut full = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let plugin = Plugin::start(&spec).await.expect("start");
        full.push(started.elapsed());
        plugin.shutdown().await.expect("shutdown");
    }
    full.sort();
    println!("Plugin::start incl. --describe (20 runs): p50 {}", micros(percentile(&full, 0.5)));

    let plugin = Arc::new(Plugin::start(&spec).await.expect("start"));
    for _ in 0..2000 {
        plugin.call::<Ping>(&Empty {}).await.expect("warm-up ping");
    }
    let mut rtts = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let started = Instant::now();
        plugin.call::<Ping>(&Empty {}).await.expect("ping");
        rtts.push(started.elapsed());
    }
    rtts.sort();
    println!(
        "$/ping round trip (20000 sequential): p50 {} p99 {} max {}",
        micros(percentile(&rtts, 0.5)),
        micros(percentile(&rtts, 0.99)),
        micros(*rtts.last().expect("samples"))
    );

    let per_task = 4000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let plugin = plugin.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                plugin.call::<Ping>(&Empty {}).await.expect("ping");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let took = started.elapsed();
    let calls = 64 * per_task;
    println!(
        "throughput (64 in flight, {calls} calls): {:.0} calls/s",
        calls as f64 / took.as_secs_f64()
    );
    if let Ok(plugin) = Arc::try_unwrap(plugin) {
        plugin.shutdown().await.expect("shutdown");
    }
}
