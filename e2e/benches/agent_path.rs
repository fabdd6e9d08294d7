//! What the agent path costs: unary calls and 1 MiB payloads through the adaptor's agent proxy
//! and the forwarder (TLS on, loopback), against the same calls made directly to the test agent.
//! Run: `cargo bench -p caa-e2e --bench agent_path` (prints a table; no assertions).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caa_adaptor::agent_proxy::{AgentProxies, AgentTls, WorkerInterceptor};
use caa_adaptor::config::TlsConfig;
use caa_adaptor::sandbox::{AgentConnector, AgentTarget};
use caa_kata_protos::ttrpc::{self, r#async::Client};
use caa_test_agent::{ECHO_METHOD, TEST_SERVICE, TestAgent};

const UNARY_CALLS: usize = 20_000;
const BIG_CALLS: usize = 400;
const MIB: usize = 1 << 20;

async fn call(client: &Client, method: &str, payload: &[u8]) {
    let mut req = ttrpc::Request::new();
    req.service = if method == "CopyFile" { "grpc.AgentService" } else { TEST_SERVICE }.to_owned();
    req.method = method.to_owned();
    req.payload = payload.to_vec();
    req.timeout_nano = 30_000_000_000;
    client.request(req).await.expect("call");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// p50 and p99 of sequential small calls.
async fn unary(client: &Client) -> (Duration, Duration) {
    for _ in 0..1000 {
        call(client, ECHO_METHOD, b"warm").await;
    }
    let mut samples = Vec::with_capacity(UNARY_CALLS);
    for _ in 0..UNARY_CALLS {
        let t = Instant::now();
        call(client, ECHO_METHOD, b"ping").await;
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// MiB/s of 1 MiB CopyFile-sized requests, 4 callers at once.
async fn throughput(client: &Client) -> f64 {
    let payload = Arc::new(vec![0x5a_u8; MIB]);
    let t = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, payload) = (client.clone(), payload.clone());
            tokio::spawn(async move {
                for _ in 0..BIG_CALLS / 4 {
                    call(&client, "CopyFile", &payload).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    BIG_CALLS as f64 / t.elapsed().as_secs_f64()
}

async fn connect(path: &Path) -> Client {
    Client::connect(&format!("unix://{}", path.display())).await.expect("connect")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent_sock = dir.path().join("agent.sock");
    let _agent = TestAgent::start(&agent_sock).await.expect("test agent");

    // The adaptor side in auto-TLS mode, and the VM's apf.json from it.
    let tls = AgentTls::from_config(&TlsConfig::default(), dir.path()).expect("tls");
    let proxies = AgentProxies::new(tls, WorkerInterceptor::default());
    let name = "podvm-bench-00000000";
    let vm = proxies.vm_tls(name).expect("vm tls");
    let apf = caa_userdata::ForwarderConfig {
        tls_server_cert: vm.server_cert,
        tls_server_key: vm.server_key,
        tls_client_ca: vm.client_ca,
        ..Default::default()
    };
    let apf_path = dir.path().join("apf.json");
    std::fs::write(&apf_path, apf.to_json().expect("apf json")).expect("write apf.json");
    let args = [
        "apf".to_owned(),
        "-listen=127.0.0.1:0".to_owned(),
        format!("-config={}", apf_path.display()),
        format!("-kata-agent-socket={}", agent_sock.display()),
    ];
    let options = caa_forwarder::cli::Options::parse_go(args.map(Into::into)).expect("options");
    let forwarder =
        caa_forwarder::Forwarder::start(&options, &caa_forwarder::podnet::PodNetworking::Disabled)
            .await
            .expect("forwarder");
    let proxy_sock = dir.path().join("agent.ttrpc");
    let target = AgentTarget {
        sandbox_id: "bench",
        socket: &proxy_sock,
        endpoint: forwarder.local_addr(),
        instance_name: name,
    };
    proxies
        .connect(target, tokio::time::Instant::now() + Duration::from_secs(10))
        .await
        .expect("proxy connects");

    let direct = connect(&agent_sock).await;
    let relayed = connect(&proxy_sock).await;
    let (d50, d99) = unary(&direct).await;
    let (r50, r99) = unary(&relayed).await;
    let d_mib = throughput(&direct).await;
    let r_mib = throughput(&relayed).await;
    let line = |what: &str, p50: Duration, p99: Duration, mib: f64| {
        eprintln!(
            "{what:<28} p50 {:>7.1} µs  p99 {:>7.1} µs  1 MiB requests {mib:>7.0} MiB/s",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    };
    eprintln!("agent_path: {UNARY_CALLS} sequential unary calls, {BIG_CALLS} x 1 MiB (4 callers)");
    line("direct to the test agent", d50, d99, d_mib);
    line("proxy + forwarder (TLS)", r50, r99, r_mib);
    eprintln!(
        "added latency p50 {:.1} µs, throughput {:.0} % of direct",
        (r50.as_secs_f64() - d50.as_secs_f64()) * 1e6,
        100.0 * r_mib / d_mib
    );
    forwarder.shutdown().await;
}
