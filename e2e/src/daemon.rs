//! [`DaemonProcess`]: the real `cloud-api-adaptor` binary serving the `mock` provider from a
//! short tempdir (the pods dir must stay short: agent socket paths are bounded), configured only
//! through a cleared environment plus the variables a test sets, with a loopback TCP listener
//! standing in for the pod VM's agent-protocol-forwarder (the mock answers IP 127.0.0.1).
//! It can be killed with SIGKILL at any moment and restarted on the same state directory and mock
//! state file; dropping it kills whatever still runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caa_kata_protos::hypervisor::HypervisorClient;

use crate::procfs::{self, Proc};
use crate::state::{self, MockInstance, SandboxRecordView};
use crate::{binaries, kata};

/// The node name the daemon tags its instances with (so reconciliation can list them).
pub const NODE_NAME: &str = "e2e-node";
/// How long a (re)started daemon may take to serve, and a killed plugin to go away.
const START_LIMIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(5);

/// What happens to the provider plugin when the daemon is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginFate {
    /// SIGKILLed together with the daemon, as when a container's whole cgroup is killed.
    Killed,
    /// Left running: it sees its host gone, finishes or cancels its work and exits by itself.
    /// [`DaemonProcess::kill9`] waits for that, so two plugins never share the mock state file.
    Orphaned,
}

/// Environment and flags for a daemon; [`DaemonBuilder::start`] runs it.
#[derive(Debug, Clone, Default)]
pub struct DaemonBuilder {
    env: BTreeMap<String, String>,
    unset: Vec<String>,
    args: Vec<String>,
    tls: bool,
    pod_network: bool,
    forwarder_port: Option<u16>,
    provider: Option<String>,
}

impl DaemonBuilder {
    /// Sets an environment variable for the daemon (e.g. `MOCK_LATENCY_MS`, `PROXY_TIMEOUT`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> DaemonBuilder {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Leaves out one of the variables the harness sets by default (e.g. `NODE_NAME`, so that
    /// reconciliation can only go by the sandbox records).
    pub fn without_env(mut self, key: impl Into<String>) -> DaemonBuilder {
        self.unset.push(key.into());
        self
    }

    /// Keeps TLS to the forwarder on (by default the daemon runs with `-disable-tls`, for the
    /// plain stand-in forwarder).
    pub fn with_tls(mut self) -> DaemonBuilder {
        self.tls = true;
        self
    }

    /// Keeps pod networking on (by default the daemon runs with `-disable-pod-network`: the
    /// harness's CreateVM requests name namespaces that do not exist).
    pub fn with_pod_network(mut self) -> DaemonBuilder {
        self.pod_network = true;
        self
    }

    /// Points the daemon at a forwarder the test runs itself on `127.0.0.1:port` instead of the
    /// built-in stand-in that accepts and drops connections.
    pub fn forwarder_port(mut self, port: u16) -> DaemonBuilder {
        self.forwarder_port = Some(port);
        self
    }

    /// Runs another provider plugin than `mock` (its binary must be in the binaries dir).
    pub fn provider(mut self, name: impl Into<String>) -> DaemonBuilder {
        self.provider = Some(name.into());
        self
    }

    /// Appends a command-line argument after the built-in ones.
    pub fn arg(mut self, arg: impl Into<String>) -> DaemonBuilder {
        self.args.push(arg.into());
        self
    }

    /// Starts the daemon in a fresh tempdir and waits until its socket answers.
    pub fn start(self) -> DaemonProcess {
        let bin_dir = binaries::bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("e2e")
            .tempdir_in("/tmp")
            .expect("creating a tempdir under /tmp");
        let (forwarder, port) = match self.forwarder_port {
            Some(port) => (None, port),
            None => {
                let stand_in =
                    TcpListener::bind("127.0.0.1:0").expect("binding the forwarder stand-in");
                let port = stand_in.local_addr().expect("forwarder address").port();
                let acceptor = stand_in.try_clone().expect("cloning the forwarder listener");
                // Accept and drop, so connects never fill the backlog.
                std::thread::spawn(move || acceptor.incoming().for_each(drop));
                (Some(stand_in), port)
            }
        };
        let mut env = BTreeMap::from([
            ("CAA_PLUGIN_DIR".to_owned(), bin_dir.display().to_string()),
            ("CAA_STATE_DIR".to_owned(), dir.path().join("state").display().to_string()),
            ("MOCK_STATE_FILE".to_owned(), dir.path().join("mock.json").display().to_string()),
            ("FORWARDER_PORT".to_owned(), port.to_string()),
            ("NODE_NAME".to_owned(), NODE_NAME.to_owned()),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ]);
        for key in &self.unset {
            env.remove(key);
        }
        env.extend(self.env);
        let mut args = self.args;
        if !self.tls {
            args.insert(0, "-disable-tls".to_owned());
        }
        if !self.pod_network {
            args.insert(0, "-disable-pod-network".to_owned());
        }
        let provider = self.provider.unwrap_or_else(|| "mock".to_owned());
        let mut daemon = DaemonProcess {
            dir,
            env,
            args,
            provider,
            child: None,
            _forwarder: forwarder,
            starts: 0,
        };
        let pods = daemon.pods_dir();
        assert!(pods.as_os_str().len() <= 30, "pods dir {} is too long", pods.display());
        daemon.restart();
        daemon
    }
}

/// A running (or killed) `cloud-api-adaptor mock` process and its directories.
#[derive(Debug)]
pub struct DaemonProcess {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    provider: String,
    child: Option<Child>,
    _forwarder: Option<TcpListener>,
    starts: u32,
}

impl DaemonProcess {
    /// A builder with the defaults (no latency, no faults).
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    /// The hypervisor socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("hv.sock")
    }

    /// The state directory (one record per sandbox).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The mock plugin's state file (its instances).
    pub fn mock_state_file(&self) -> PathBuf {
        self.dir.path().join("mock.json")
    }

    /// The pods directory (`<pods-dir>/<sid>/agent.ttrpc`).
    pub fn pods_dir(&self) -> PathBuf {
        self.dir.path().join("p")
    }

    /// The daemon's combined output, across restarts.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The daemon's child processes (its provider plugin).
    pub fn plugin_pids(&self) -> Vec<u32> {
        self.pid().map(procfs::children).unwrap_or_default().iter().map(|p| p.pid).collect()
    }

    /// Instances in the mock's state file.
    pub fn mock_instances(&self) -> Vec<MockInstance> {
        state::mock_instances(&self.mock_state_file())
    }

    /// Sandbox records in the state directory.
    pub fn records(&self) -> Vec<SandboxRecordView> {
        state::records(&self.state_dir())
    }

    /// Every file in the state directory.
    pub fn state_files(&self) -> Vec<String> {
        state::state_files(&self.state_dir())
    }

    /// A fresh ttrpc connection to the daemon.
    pub async fn client(&self) -> HypervisorClient {
        kata::connect(&self.socket()).await
    }

    /// The last `lines` lines of the daemon's output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts the daemon (again) on the same directories and waits until its socket answers.
    /// Reconciliation runs before the daemon serves, so it is over when this returns.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a daemon that still runs");
        self.starts += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .expect("opening the daemon log");
        writeln!(log, "===== e2e: daemon start #{} =====", self.starts).expect("writing the log");
        let mut cmd = Command::new(binaries::adaptor());
        cmd.env_clear()
            .envs(&self.env)
            .arg(&self.provider)
            .arg("-socket")
            .arg(self.socket())
            .arg("-pods-dir")
            .arg(self.pods_dir())
            .args(["-probe-port", "0"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log);
        let child = cmd.spawn().expect("spawning cloud-api-adaptor");
        self.child = Some(child);
        self.wait_serving();
    }

    fn wait_serving(&mut self) {
        let started = Instant::now();
        loop {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("a started daemon");
            if let Some(status) = child.try_wait().expect("polling the daemon") {
                self.child = None;
                panic!("the daemon exited with {status} before serving:\n{}", self.log_tail(40));
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "the daemon did not serve within {START_LIMIT:?}:\n{}",
                self.log_tail(40)
            );
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILLs the daemon (and, with [`PluginFate::Killed`], its plugin first: the plugin is
    /// still the daemon's unreaped child then, so its pid cannot have been reused). Returns once
    /// the daemon is reaped and the plugin is gone.
    pub fn kill9(&mut self, fate: PluginFate) {
        let Some(mut child) = self.child.take() else { return };
        let plugins = procfs::children(child.id());
        if fate == PluginFate::Killed {
            for p in &plugins {
                sigkill(p);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let started = Instant::now();
        while plugins.iter().any(|p| procfs::alive(*p)) {
            assert!(
                started.elapsed() < START_LIMIT,
                "the orphaned plugin did not exit within {START_LIMIT:?}:\n{}",
                self.log_tail(40)
            );
            std::thread::sleep(POLL);
        }
    }
}

fn sigkill(p: &Proc) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(p.pid)
        && procfs::alive(*p)
    {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.kill9(PluginFate::Killed);
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`. For effects the
/// daemon completes in the background (cleanup after a failed start, plugin restarts).
pub async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
