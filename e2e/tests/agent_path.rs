//! The agent path end to end on loopback, with TLS on: a ttrpc client playing the Kata shim →
//! the real `cloud-api-adaptor` (mock plugin, instance IP 127.0.0.1) → its agent proxy → the
//! real `agent-protocol-forwarder` binary, started with the apf.json the adaptor rendered for
//! the VM → the test kata agent. Checks both sides' rewrites, pass-through of a method nobody
//! knows, a forwarder restart, a forwarder with the wrong certificate, and StopVM's teardown.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use caa_e2e::binaries;
use caa_e2e::daemon::DaemonProcess;
use caa_e2e::kata::{create_request, no_deadline, start_request, stop_request, with_deadline};
use caa_kata_protos::agent::{
    CheckRequest, CreateContainerRequest, CreateSandboxRequest, HealthCheckResponse, Spec,
};
use caa_kata_protos::hypervisor::HypervisorClient;
use caa_kata_protos::protobuf::{Message, MessageField};
use caa_kata_protos::ttrpc::{self, r#async::Client};
use caa_test_agent::{FUTURE_METHOD, TestAgent};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The forwarder binary as the pod VM runs it.
struct Forwarder(Child);

impl Forwarder {
    fn start(config: &Path, port: u16, agent: &Path, log: &Path) -> Forwarder {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(binaries::forwarder())
            .arg("-config")
            .arg(config)
            .args(["-listen", &format!("127.0.0.1:{port}")])
            .arg("-kata-agent-socket")
            .arg(agent)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        // Listening within a second or two.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Forwarder(child)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn call(
    client: &Client,
    service: &str,
    method: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> ttrpc::Result<Vec<u8>> {
    let mut req = ttrpc::Request::new();
    req.service = service.to_owned();
    req.method = method.to_owned();
    req.payload = payload;
    req.timeout_nano = timeout.as_nanos() as i64;
    client.request(req).await.map(|r| r.payload)
}

async fn check(client: &Client, timeout: Duration) -> ttrpc::Result<()> {
    let req = CheckRequest::new().write_to_bytes().unwrap();
    let answer = call(client, "grpc.Health", "Check", req, timeout).await?;
    let answer = HealthCheckResponse::parse_from_bytes(&answer).unwrap();
    assert_eq!(answer.status.value(), 1, "SERVING");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_reaches_the_agent_through_proxy_and_forwarder_with_tls() {
    let port = free_port();
    let daemon = DaemonProcess::builder().with_tls().forwarder_port(port).start();
    let work = tempfile::tempdir().unwrap();
    let agent_sock = work.path().join("agent.sock");
    let agent = TestAgent::start(&agent_sock).await.unwrap();
    let hv = Client::connect(&format!("unix://{}", daemon.socket().display())).await.unwrap();
    let hv = HypervisorClient::new(hv);

    let id = "agentpath1";
    let created = hv.create_vm(no_deadline(), &create_request(id, "web")).await.unwrap();
    let agent_socket = PathBuf::from(&created.agentSocketPath);
    let apf = daemon.pods_dir().join(id).join("apf.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&apf).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the debug apf.json holds the VM's private key");
    let apf_text = std::fs::read_to_string(&apf).unwrap();
    assert!(apf_text.contains("tls-server-cert") && apf_text.contains("tls-client-ca"));

    let mut forwarder = Forwarder::start(&apf, port, &agent_sock, &work.path().join("apf1.log"));
    hv.start_vm(with_deadline(Duration::from_secs(60)), &start_request(id)).await.unwrap();

    let shim = Client::connect(&format!("unix://{}", agent_socket.display())).await.unwrap();
    check(&shim, Duration::from_secs(30)).await.unwrap();

    let mut sandbox = CreateSandboxRequest::new();
    sandbox.sandbox_id = id.to_owned();
    sandbox.dns = vec!["nameserver 10.96.0.10".to_owned()];
    call(
        &shim,
        "grpc.AgentService",
        "CreateSandbox",
        sandbox.write_to_bytes().unwrap(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let mut container = CreateContainerRequest::new();
    container.container_id = "c1".to_owned();
    let mut spec = Spec::new();
    spec.Annotations
        .insert("io.katacontainers.config.hypervisor.default_gpus".to_owned(), "1".to_owned());
    container.OCI = MessageField::some(spec);
    call(
        &shim,
        "grpc.AgentService",
        "CreateContainer",
        container.write_to_bytes().unwrap(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let future =
        call(&shim, "grpc.AgentService", FUTURE_METHOD, b"hello".to_vec(), Duration::from_secs(30))
            .await
            .unwrap();
    assert_eq!(future, b"future:hello");

    // The Go ttrpc client (containerd/ttrpc, as in the Kata shim) through the same socket.
    if caa_e2e::go_probe::gate_open() {
        let build = tempfile::tempdir().unwrap();
        let probe = caa_e2e::go_probe::build_probe(build.path()).await;
        let sock = agent_socket.display().to_string();
        let payload = caa_e2e::go_probe::hex(b"from-go");
        let args = [
            "raw-call",
            "-sock",
            &sock,
            "-service",
            "grpc.AgentService",
            "-method",
            FUTURE_METHOD,
            "-payload-hex",
            &payload,
            "-md",
            "k=v",
            "-n",
            "3",
        ];
        let out = caa_e2e::go_probe::run_probe(&probe, &args).await;
        assert!(out.status.success(), "{}", caa_e2e::go_probe::output_text(&out));
        let from_go: Vec<_> =
            agent.requests().into_iter().filter(|r| r.method == FUTURE_METHOD).collect();
        assert_eq!(from_go.len(), 4, "one Rust call and three Go calls reach the agent");
        assert_eq!(from_go[3].payload().unwrap(), b"from-go");
        assert!(from_go[3].metadata.contains(&("k".to_owned(), "v".to_owned())));
    }

    let seen = agent.requests();
    let got_sandbox = seen.iter().find(|r| r.method == "CreateSandbox").unwrap();
    let got_sandbox =
        CreateSandboxRequest::parse_from_bytes(&got_sandbox.payload().unwrap()).unwrap();
    assert!(got_sandbox.dns.is_empty(), "the forwarder clears the DNS list");
    assert_eq!(got_sandbox.sandbox_id, id);
    let got = seen.iter().find(|r| r.method == "CreateContainer").unwrap();
    let got = CreateContainerRequest::parse_from_bytes(&got.payload().unwrap()).unwrap();
    assert_eq!(
        got.OCI.Annotations.get("cdi.k8s.io/peer-pods").map(String::as_str),
        Some("nvidia.com/gpu=all"),
        "the worker-side proxy adds the CDI annotation"
    );
    let netns: Vec<_> =
        got.OCI.Linux.Namespaces.iter().map(|n| (n.Type.as_str(), n.Path.as_str())).collect();
    assert_eq!(netns, vec![("network", "/run/netns/podns")], "the forwarder joins the pod netns");

    // The forwarder dies and comes back: the next health check waits for the reconnection.
    drop(forwarder);
    let restart_apf = apf.clone();
    let (sock2, log2) = (agent_sock.clone(), work.path().join("apf2.log"));
    let restarted = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        Forwarder::start(&restart_apf, port, &sock2, &log2)
    });
    check(&shim, Duration::from_secs(30)).await.expect("health check across a forwarder restart");
    forwarder = restarted.join().unwrap();

    // A forwarder whose certificate comes from another CA is refused: nothing reaches the agent.
    drop(forwarder);
    let rogue_ca = caa_tls::CaService::ephemeral().unwrap();
    let rogue_id = rogue_ca.issue_server(INSTANCE_NAME).unwrap();
    let mut rogue: serde_json::Value = serde_json::from_str(&apf_text).unwrap();
    rogue["tls-server-cert"] = rogue_id.cert_pem.clone().into();
    rogue["tls-server-key"] = rogue_id.key_pem().to_owned().into();
    let rogue_apf = work.path().join("rogue.json");
    std::fs::write(&rogue_apf, rogue.to_string()).unwrap();
    let rogue_fwd = Forwarder::start(&rogue_apf, port, &agent_sock, &work.path().join("rogue.log"));
    let before = agent.requests().len();
    let refused = check(&shim, Duration::from_secs(3)).await;
    assert!(refused.is_err(), "a forwarder with a foreign certificate must not be trusted");
    assert_eq!(agent.requests().len(), before);
    drop(rogue_fwd);
    let log = std::fs::read_to_string(work.path().join("rogue.log")).unwrap();
    assert!(log.contains("TLS handshake refused"), "rogue forwarder log: {log}");

    // Back to the real one, then StopVM tears the proxy down.
    let _forwarder = Forwarder::start(&apf, port, &agent_sock, &work.path().join("apf3.log"));
    check(&shim, Duration::from_secs(30)).await.unwrap();
    hv.stop_vm(no_deadline(), &stop_request(id)).await.unwrap();
    assert!(check(&shim, Duration::from_secs(5)).await.is_err(), "the proxy is gone after StopVM");
    assert!(tokio::net::UnixStream::connect(&agent_socket).await.is_err());
    agent.stop().await;
}

/// The instance name the adaptor gives sandbox `agentpath1` of pod `web` (`podvm-<pod>-<sid[:8]>`),
/// which the VM certificate must carry.
const INSTANCE_NAME: &str = "podvm-web-agentpat";
