//! The Go ttrpc probe (containerd/ttrpc, as in the Kata shim) plays the shim against the real
//! daemon and the real mock plugin: a full CreateVM → StartVM → StopVM lifecycle makes exactly
//! one instance and leaves none, and a failing StartVM reaches the Go client as a non-OK status
//! with upstream's message prefix and leaves nothing. Runs only with `CAA_TEST_GO_PROBE=1`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use caa_e2e::daemon::eventually;
use caa_e2e::go_probe::{build_probe, error_message, gate_open, output_text, run_probe};
use caa_e2e::{DaemonProcess, MockInstance};

/// Polls the mock's state file until stopped; returns every instance ever seen, by id.
fn watch_instances(
    file: PathBuf,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<BTreeMap<String, MockInstance>> {
    tokio::spawn(async move {
        let mut seen = BTreeMap::new();
        loop {
            let done = stop.load(Ordering::SeqCst);
            for instance in caa_e2e::state::mock_instances(&file) {
                seen.entry(instance.instance_id.clone()).or_insert(instance);
            }
            if done {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_shim_runs_a_full_lifecycle_against_the_daemon() {
    if !gate_open() {
        return;
    }
    let build = tempfile::tempdir().unwrap();
    let bin = build_probe(build.path()).await;
    // Create latency keeps the instance visible long enough for the watcher to see it.
    let daemon = DaemonProcess::builder()
        .env("MOCK_LATENCY_MS", "createInstance=300,deleteInstance=100")
        .start();
    let sock = daemon.socket().display().to_string();
    let sid = "go-shim-lifecycle-01";

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_instances(daemon.mock_state_file(), stop.clone());
    let out = run_probe(&bin, &["hv-client", "-sock", &sock, "-id", sid, "-op", "all"]).await;
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.await.unwrap();

    let log = || daemon.log_tail(40);
    assert!(out.status.success(), "hv-client failed: {}\n{}", output_text(&out), log());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let agent = daemon.pods_dir().join(sid).join("agent.ttrpc");
    for line in [
        "Version -> \"".to_owned(),
        format!("CreateVM -> agentSocketPath={:?}", agent.display().to_string()),
        "StartVM -> ok".to_owned(),
        "StopVM -> ok".to_owned(),
    ] {
        assert!(stdout.contains(&line), "missing {line:?} in: {}", output_text(&out));
    }
    assert_eq!(seen.len(), 1, "exactly one instance is created: {seen:#?}");
    let instance = seen.values().next().unwrap();
    assert_eq!(instance.sandbox_id, sid);
    assert!(instance.name.starts_with("podvm-probe-pod-"), "{instance:?}");
    assert!(daemon.mock_instances().is_empty(), "{:#?}", daemon.mock_instances());
    assert!(daemon.state_files().is_empty(), "{:?}", daemon.state_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_shim_sees_a_failed_start_as_a_status_and_nothing_leaks() {
    if !gate_open() {
        return;
    }
    let build = tempfile::tempdir().unwrap();
    let bin = build_probe(build.path()).await;
    let daemon =
        DaemonProcess::builder().env("MOCK_ERRORS", "createInstance=capacityUnavailable").start();
    let sock = daemon.socket().display().to_string();
    let sid = "go-shim-failing-01";
    let hv = ["hv-client", "-sock", &sock, "-id", sid, "-op"];

    let out = run_probe(&bin, &[&hv[..], &["create"]].concat()).await;
    assert!(out.status.success(), "CreateVM failed: {}", output_text(&out));
    let out = run_probe(&bin, &[&hv[..], &["start"]].concat()).await;
    assert!(!out.status.success(), "StartVM succeeded: {}", output_text(&out));
    let (code, message) = error_message(&out)
        .unwrap_or_else(|| panic!("no status line from the probe: {}", output_text(&out)));
    eprintln!("StartVM status seen by the Go client: code={code} msg={message:?}");
    assert!(!code.starts_with("0("), "{code}");
    assert!(message.starts_with("creating an instance : "), "{message:?}");

    assert!(daemon.mock_instances().is_empty(), "{:#?}", daemon.mock_instances());
    eventually("the failed start's record is removed", Duration::from_secs(10), || {
        daemon.state_files().is_empty()
    })
    .await;
    let out = run_probe(&bin, &[&hv[..], &["stop"]].concat()).await;
    assert!(out.status.success(), "StopVM after a failed start: {}", output_text(&out));
    assert!(daemon.mock_instances().is_empty());
    assert!(daemon.state_files().is_empty(), "{:?}", daemon.state_files());
}
