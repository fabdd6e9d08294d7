//! Fixtures: the fake Python plugin in a tempdir, short budgets, and polling helpers.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use caa_plugin_host::{PluginCommand, PluginSpec, RestartPolicy, Timeouts};
use caa_plugin_proto::CreateInstanceParams;
use caa_test_support::LogCapture;

const SCRIPT: &str = include_str!("fake_plugin.py");

/// The upper bound for anything a test waits for.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// A fake plugin script plus its state directory.
pub(crate) struct Fake {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
}

impl Fake {
    pub(crate) fn new() -> Fake {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("caa-provider-fake");
        std::fs::write(&path, format!("#!{} -u\n{SCRIPT}", python3().display())).unwrap();
        set_mode(&path, 0o755);
        Fake { dir, path }
    }

    pub(crate) fn state(&self) -> &Path {
        self.dir.path()
    }

    /// A spec running the script in `mode` with short budgets.
    pub(crate) fn spec(&self, mode: &str) -> PluginSpec {
        let command = PluginCommand::new(&self.path)
            .env("FAKE_MODE", mode)
            .env("FAKE_STATE", self.state().to_str().unwrap())
            .env("FAKE_NAME", "fake");
        let mut spec = PluginSpec::new("fake", command);
        spec.timeouts = Timeouts {
            start: Duration::from_secs(10),
            exit_wait: Duration::from_secs(5),
            term_wait: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            delete: Duration::from_secs(10),
            ..Timeouts::default()
        };
        spec
    }

    /// Every message the plugin processes received, in order.
    pub(crate) fn calls(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.state().join("calls.jsonl")).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub(crate) fn calls_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.calls().into_iter().filter(|c| c["kind"] == kind).collect()
    }
}

pub(crate) fn fast_restarts() -> RestartPolicy {
    RestartPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        breaker_crashes: 3,
        breaker_window: Duration::from_secs(60),
        breaker_cooldown: Duration::from_secs(600),
        restart_wait: LIMIT,
    }
}

/// The real interpreter (not a pyenv-style shell shim, which would add its own variables).
pub(crate) fn python3() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = std::process::Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .expect("python3 on PATH");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
}

/// Installs one global subscriber capturing every event of the test binary at TRACE. Called
/// before a test emits anything: a per-test scoped subscriber loses events to tracing's
/// callsite-interest cache when other test threads register the same callsites concurrently.
pub(crate) fn init_logs() {
    LOGS.get_or_init(|| {
        let captured = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    });
}

/// Everything logged by any test so far.
pub(crate) fn logs() -> String {
    init_logs();
    LOGS.get().unwrap().text()
}

static LOGS: OnceLock<LogCapture> = OnceLock::new();

pub(crate) fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub(crate) fn create_params(operation_id: &str) -> CreateInstanceParams {
    CreateInstanceParams {
        operation_id: operation_id.to_owned(),
        deadline_ms: 5_000,
        pod_name: "nginx".to_owned(),
        pod_namespace: "default".to_owned(),
        sandbox_id: format!("sandbox-{operation_id}"),
        user_data: "#cloud-config\n".to_owned(),
        user_data_format: Some("cloud-config".to_owned()),
        spec: Default::default(),
        tags: Default::default(),
    }
}

/// Awaits `fut`, failing the test after [`LIMIT`].
pub(crate) async fn within<F: Future>(fut: F) -> F::Output {
    init_logs();
    tokio::time::timeout(LIMIT, fut).await.expect("test step did not finish within the limit")
}

/// Polls `cond` until it holds, failing the test after [`LIMIT`].
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process exists (a zombie counts as existing).
pub(crate) fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
