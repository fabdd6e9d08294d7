//! A daemon assembled in-process for lifecycle tests: the real `caa-provider-mock` plugin under
//! a supervisor, a state directory, a pods directory and the ttrpc server on a socket in a
//! tempdir, with the real agent proxy (plain TCP) and, standing in for the pod VM, the real
//! forwarder (in-process, on loopback) in front of the test kata agent.
//! Calls go through the generated ttrpc client, as the Kata shim's would.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use caa_adaptor::agent_proxy::{AgentProxies, AgentTls, WorkerInterceptor};
use caa_adaptor::hypervisor::HypervisorServer;
use caa_adaptor::pod_network::PodNetworking;
use caa_adaptor::sandbox::{ManagerSettings, SandboxManager};
use caa_adaptor::state::StateStore;
use caa_kata_protos::hypervisor::{
    CreateVMRequest, HypervisorClient, StartVMRequest, StopVMRequest,
};
use caa_kata_protos::podvminfo::{GetInfoRequest, PodVmInfoClient};
use caa_kata_protos::ttrpc::r#async::Client;
use caa_kata_protos::ttrpc::{self, context};
use caa_plugin_host::{PluginCommand, PluginSpec, Supervisor};

/// The mock plugin binary, built on first use when `cargo test -p caa-adaptor` ran alone.
pub(crate) fn mock_plugin() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let path = dir.join("caa-provider-mock");
    BUILD.call_once(|| {
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = std::process::Command::new(cargo)
                .args(["build", "-p", "caa-provider-mock"])
                .status()
                .expect("running cargo build for the mock plugin");
            assert!(status.success(), "building caa-provider-mock failed");
        }
    });
    path
}

pub(crate) struct Daemon {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) manager: SandboxManager,
    pub(crate) supervisor: Supervisor,
    server: Option<HypervisorServer>,
    _vm: Option<(caa_forwarder::Forwarder, caa_test_agent::TestAgent)>,
    pub(crate) socket: PathBuf,
}

pub(crate) struct Options {
    pub(crate) mock_config: BTreeMap<String, serde_json::Value>,
    pub(crate) forwarder_up: bool,
    pub(crate) proxy_timeout: Duration,
    pub(crate) node: Option<String>,
    /// Pod networking with tunnels in this namespace (the worker's); `None`: disabled.
    pub(crate) host_netns: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mock_config: BTreeMap::new(),
            forwarder_up: true,
            proxy_timeout: Duration::from_secs(5),
            node: Some("node-1".to_owned()),
            host_netns: None,
        }
    }
}

impl Daemon {
    pub(crate) async fn start(opts: Options) -> Daemon {
        Daemon::start_in(tempfile::tempdir().unwrap(), opts).await
    }

    /// Starts a daemon over an existing directory (a restart keeps state and mock state file).
    pub(crate) async fn start_in(dir: tempfile::TempDir, opts: Options) -> Daemon {
        let (vm, port) = pod_vm(dir.path(), opts.forwarder_up).await;
        let mut spec = PluginSpec::new("mock", PluginCommand::new(mock_plugin()));
        spec.config = opts.mock_config;
        spec.config.insert(
            "stateFile".to_owned(),
            serde_json::json!(dir.path().join("mock-state.json").display().to_string()),
        );
        let supervisor = Supervisor::start(spec).await.expect("starting the mock plugin");
        let settings = ManagerSettings {
            pods_dir: dir.path().join("pods"),
            forwarder_port: port,
            proxy_timeout: opts.proxy_timeout,
            node_name: opts.node,
            provider: "mock".to_owned(),
            initdata: None,
            scratch_space: false,
            default_start_budget: Duration::from_secs(60),
            max_user_data_bytes: None,
            pod_network: opts.host_netns.map(|ns| {
                let net = caa_adaptor::config::NetworkConfig::default();
                Arc::new(PodNetworking::open(&dir.path().join("state"), &net, Some(ns)).unwrap())
            }),
        };
        let store = StateStore::open(dir.path().join("state")).unwrap();
        let proxies = AgentProxies::new(AgentTls::Disabled, WorkerInterceptor::default());
        let manager = SandboxManager::new(settings, supervisor.clone(), store, Arc::new(proxies));
        manager.reconcile().await;
        let socket = dir.path().join("hypervisor.sock");
        let server =
            HypervisorServer::start(manager.clone(), &socket, None).await.expect("serving");
        Daemon { dir, manager, supervisor, server: Some(server), _vm: vm, socket }
    }

    pub(crate) async fn client(&self) -> (HypervisorClient, PodVmInfoClient) {
        let c = Client::connect(&format!("unix://{}", self.socket.display())).await.unwrap();
        (HypervisorClient::new(c.clone()), PodVmInfoClient::new(c))
    }

    /// Instances the mock plugin holds.
    pub(crate) async fn instances(&self) -> Vec<String> {
        let list = self.supervisor.list_instances(BTreeMap::new()).await.unwrap();
        list.instances.into_iter().map(|i| i.instance_id).collect()
    }

    /// Durable records on disk.
    pub(crate) fn records(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("state"))
            .map(|d| {
                d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".json")).count()
            })
            .unwrap_or(0)
    }

    /// Stops serving and the plugin; returns the directory for a restart.
    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.supervisor.shutdown().await;
        self.dir
    }
}

/// The pod VM side on loopback: the forwarder (plain TCP) and the test agent. Without it, a
/// port nothing listens on.
async fn pod_vm(
    dir: &Path,
    up: bool,
) -> (Option<(caa_forwarder::Forwarder, caa_test_agent::TestAgent)>, u16) {
    if !up {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        return (None, unused.local_addr().unwrap().port());
    }
    let vm = dir.join("vm");
    std::fs::create_dir_all(&vm).unwrap();
    std::fs::write(vm.join("apf.json"), r#"{"pod-network":{}}"#).unwrap();
    let agent = caa_test_agent::TestAgent::start(&vm.join("agent.sock")).await.unwrap();
    let args = [
        "apf".to_owned(),
        "-disable-tls".to_owned(),
        "-listen=127.0.0.1:0".to_owned(),
        format!("-config={}", vm.join("apf.json").display()),
        format!("-kata-agent-socket={}", vm.join("agent.sock").display()),
    ];
    let options = caa_forwarder::cli::Options::parse_go(args.map(Into::into)).unwrap();
    let forwarder =
        caa_forwarder::Forwarder::start(&options, &caa_forwarder::podnet::PodNetworking::Disabled)
            .await
            .unwrap();
    let port = forwarder.local_addr().port();
    (Some((forwarder, agent)), port)
}

pub(crate) fn create_request(id: &str, pod: &str) -> CreateVMRequest {
    let annotations = HashMap::from([
        ("io.kubernetes.cri.sandbox-name".to_owned(), pod.to_owned()),
        ("io.kubernetes.cri.sandbox-namespace".to_owned(), "default".to_owned()),
        ("io.katacontainers.config.hypervisor.default_vcpus".to_owned(), "2".to_owned()),
        ("io.katacontainers.config.hypervisor.default_memory".to_owned(), "4096".to_owned()),
        ("io.katacontainers.config.hypervisor.cc_init_data".to_owned(), String::new()),
    ]);
    CreateVMRequest {
        id: id.to_owned(),
        annotations,
        networkNamespacePath: "/var/run/netns/cni-test".to_owned(),
        ..Default::default()
    }
}

pub(crate) fn start_request(id: &str) -> StartVMRequest {
    StartVMRequest { id: id.to_owned(), ..Default::default() }
}

pub(crate) fn stop_request(id: &str) -> StopVMRequest {
    StopVMRequest { id: id.to_owned(), ..Default::default() }
}

pub(crate) fn info_request(pod: &str, wait: bool) -> GetInfoRequest {
    GetInfoRequest {
        PodName: pod.to_owned(),
        PodNamespace: "default".to_owned(),
        Wait: wait,
        ..Default::default()
    }
}

/// Shim-like deadline for StartVM.
pub(crate) fn deadline(d: Duration) -> context::Context {
    context::with_timeout(i64::try_from(d.as_nanos()).unwrap())
}

/// The status code and message of a failed call.
pub(crate) fn status<T: std::fmt::Debug>(r: ttrpc::Result<T>) -> (caa_kata_protos::Code, String) {
    match r {
        Err(ttrpc::Error::RpcStatus(s)) => (s.code(), s.message.clone()),
        other => panic!("expected an rpc status, got {other:?}"),
    }
}

/// Polls `cond` until it holds (bounded, to turn a hang into a failure).
pub(crate) async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}
