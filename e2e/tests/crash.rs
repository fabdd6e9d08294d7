//! Crash safety of the real daemon with the real mock plugin, no Go needed (always runs):
//! kill -9 of the adaptor at randomized points of StartVM and StopVM followed by a restart on the
//! same state leaves no instance that belongs to no sandbox; a plugin that crashes mid-create
//! fails the StartVM with a clear error and leaks nothing; a hung plugin cannot hold a StartVM
//! past its deadline.

use std::time::Duration;

use caa_e2e::daemon::eventually;
use caa_e2e::{DaemonProcess, PluginFate, kata};
use caa_kata_protos::Code;

/// Kill points: at least 20, alternating between StartVM and StopVM.
const ITERATIONS: u64 = 24;
/// Mock latencies that open windows to kill in.
const CREATE_MS: u64 = 250;
const DELETE_MS: u64 = 150;
/// Kill points run up to this much past the plugin call's latency: far enough past a create that
/// some StartVMs complete (their sandboxes must be re-adopted), a little past a delete.
const START_EPSILON_MS: u64 = 250;
const STOP_EPSILON_MS: u64 = 60;
const START_DEADLINE: Duration = Duration::from_secs(30);

/// SplitMix64: a seeded, dependency-free generator; the seed is printed so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `CAA_E2E_SEED` when set, else a fresh one from the clock.
fn seed() -> u64 {
    if let Ok(text) = std::env::var("CAA_E2E_SEED") {
        return text.parse().unwrap_or_else(|_| panic!("CAA_E2E_SEED={text:?} is not a u64"));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::try_from(now.as_nanos() % u128::from(u64::MAX)).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    StartVm,
    StopVm,
}

/// Every instance in the mock's cloud must belong to a sandbox re-adopted in phase `running`.
fn assert_every_instance_is_owned(daemon: &DaemonProcess, context: &str) {
    let records = daemon.records();
    let unowned: Vec<_> = daemon
        .mock_instances()
        .into_iter()
        .filter(|i| {
            !records.iter().any(|r| {
                r.sandbox_id == i.sandbox_id
                    && r.is_running()
                    && r.instance_id.as_deref() == Some(i.instance_id.as_str())
            })
        })
        .collect();
    assert!(
        unowned.is_empty(),
        "{context}: instances owned by no running sandbox: {unowned:#?}\nrecords: {records:#?}\ndaemon log:\n{}",
        daemon.log_tail(60)
    );
}

/// What the kill points did, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    readopted: usize,
    reconciled: usize,
}

/// Runs kill points `range` against `daemon`: issue the call, SIGKILL after a random delay,
/// restart, check ownership, stop what was re-adopted, check that nothing is left.
async fn kill_points(
    daemon: &mut DaemonProcess,
    rng: &mut Rng,
    seed: u64,
    range: std::ops::Range<u64>,
    tally: &mut Tally,
) {
    for i in range {
        let point = if i % 2 == 0 { Point::StartVm } else { Point::StopVm };
        let fate = if rng.below(2) == 0 { PluginFate::Killed } else { PluginFate::Orphaned };
        let window = match point {
            Point::StartVm => CREATE_MS + START_EPSILON_MS,
            Point::StopVm => DELETE_MS + STOP_EPSILON_MS,
        };
        let delay = Duration::from_millis(rng.below(window + 1));
        let sid = format!("crash-{seed:016x}-{i:02}");
        let pod = format!("crash-pod-{i}");

        let hv = daemon.client().await;
        hv.create_vm(kata::no_deadline(), &kata::create_request(&sid, &pod))
            .await
            .unwrap_or_else(|e| panic!("CreateVM {sid}: {e:?}"));
        if point == Point::StopVm {
            hv.start_vm(kata::with_deadline(START_DEADLINE), &kata::start_request(&sid))
                .await
                .unwrap_or_else(|e| panic!("StartVM {sid}: {e:?}\n{}", daemon.log_tail(40)));
        }
        let call = {
            let (hv, sid) = (hv.clone(), sid.clone());
            tokio::spawn(async move {
                match point {
                    Point::StartVm => hv
                        .start_vm(kata::with_deadline(START_DEADLINE), &kata::start_request(&sid))
                        .await
                        .map(drop),
                    Point::StopVm => {
                        hv.stop_vm(kata::no_deadline(), &kata::stop_request(&sid)).await.map(drop)
                    }
                }
            })
        };
        tokio::time::sleep(delay).await;
        daemon.kill9(fate);
        let answer = match tokio::time::timeout(Duration::from_secs(5), call).await {
            Ok(Ok(Ok(()))) => "answered ok".to_owned(),
            Ok(Ok(Err(e))) => format!("failed: {e:?}"),
            Ok(Err(e)) => format!("task failed: {e}"),
            Err(_) => "no answer".to_owned(),
        };
        let before = daemon.mock_instances().len();
        daemon.restart();
        let context = format!(
            "kill point {i} (seed {seed}): kill -9 {delay:?} into {point:?}, plugin {fate:?}, call {answer}"
        );
        assert_every_instance_is_owned(daemon, &context);
        let after = daemon.mock_instances().len();
        tally.reconciled += before.saturating_sub(after);
        let records = daemon.records();
        eprintln!("{context}: {before} instance(s) before the restart, {after} re-adopted");

        let hv = daemon.client().await;
        for record in &records {
            assert!(
                record.is_running(),
                "{context}: a record left after reconciliation: {record:?}"
            );
            hv.stop_vm(kata::no_deadline(), &kata::stop_request(&record.sandbox_id))
                .await
                .unwrap_or_else(|e| panic!("{context}: StopVM of re-adopted {record:?}: {e:?}"));
            tally.readopted += 1;
        }
        let left = daemon.mock_instances();
        assert!(left.is_empty(), "{context}: instances left after StopVM: {left:#?}");
        let files = daemon.state_files();
        assert!(files.is_empty(), "{context}: state files left after StopVM: {files:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_random_points_leaves_no_unowned_instance() {
    let seed = seed();
    eprintln!("crash test seed {seed} (replay with CAA_E2E_SEED={seed}), {ITERATIONS} kill points");
    let mut rng = Rng(seed);
    let latency = format!("createInstance={CREATE_MS},deleteInstance={DELETE_MS}");
    let mut tally = Tally::default();
    // First half: as deployed, with NODE_NAME (reconciliation may also list by node tag).
    let mut daemon = DaemonProcess::builder().env("MOCK_LATENCY_MS", &latency).start();
    kill_points(&mut daemon, &mut rng, seed, 0..ITERATIONS / 2, &mut tally).await;
    drop(daemon);
    // Second half: no NODE_NAME, so only the sandbox records can lead to an instance.
    let mut daemon =
        DaemonProcess::builder().env("MOCK_LATENCY_MS", &latency).without_env("NODE_NAME").start();
    kill_points(&mut daemon, &mut rng, seed, ITERATIONS / 2..ITERATIONS, &mut tally).await;
    eprintln!(
        "crash test seed {seed}: {ITERATIONS} kill points, {} sandboxes re-adopted and stopped, {} instances deleted by reconciliation",
        tally.readopted, tally.reconciled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_crash_mid_create_fails_the_start_and_leaks_nothing() {
    let daemon = DaemonProcess::builder().env("MOCK_FAULTS", "crashMidCreate").start();
    let hv = daemon.client().await;
    let sid = "plugin-crash-01";
    hv.create_vm(kata::no_deadline(), &kata::create_request(sid, "crashing")).await.unwrap();
    let first_plugin = daemon.plugin_pids();

    let result = hv.start_vm(kata::with_deadline(START_DEADLINE), &kata::start_request(sid)).await;
    let (code, message) = kata::status(result);
    eprintln!("StartVM with a crashing plugin: {code:?} {message:?}");
    assert_ne!(code, Code::OK);
    assert!(message.starts_with("creating an instance : "), "{message:?}");

    // The supervisor restarts the plugin and deletes the instance the crashed one announced.
    eventually("the announced instance is deleted", Duration::from_secs(30), || {
        daemon.mock_instances().is_empty()
    })
    .await;
    let plugin = daemon.plugin_pids();
    assert!(!plugin.is_empty() && plugin != first_plugin, "{first_plugin:?} -> {plugin:?}");
    eventually("the sandbox record is removed", Duration::from_secs(30), || {
        daemon.state_files().is_empty()
    })
    .await;
    hv.stop_vm(kata::no_deadline(), &kata::stop_request(sid)).await.unwrap();
    assert!(daemon.mock_instances().is_empty());
    assert!(daemon.state_files().is_empty(), "{:?}", daemon.state_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_plugin_is_cut_off_by_the_start_deadline() {
    let daemon = DaemonProcess::builder().env("MOCK_FAULTS", "hang:createInstance").start();
    let hv = daemon.client().await;
    let sid = "plugin-hang-01";
    hv.create_vm(kata::no_deadline(), &kata::create_request(sid, "hanging")).await.unwrap();

    // The client gives up at the deadline itself; an RpcStatus proves the daemon answered first.
    let start = kata::start_request(sid);
    let result = hv.start_vm(kata::with_deadline(Duration::from_secs(3)), &start).await;
    let (code, message) = kata::status(result);
    eprintln!("StartVM with a hung plugin: {code:?} {message:?}");
    assert_eq!(code, Code::DEADLINE_EXCEEDED, "{message}");

    hv.stop_vm(kata::no_deadline(), &kata::stop_request(sid)).await.unwrap();
    assert!(daemon.mock_instances().is_empty(), "{:#?}", daemon.mock_instances());
    // The plugin never said whether it made an instance, and its create may still be running:
    // the record stays (phase creating) until reconciliation can look by the operation tag.
    assert_eq!(daemon.state_files().len(), 1, "the undecided start keeps its record");
    let mut daemon = daemon;
    daemon.kill9(PluginFate::Killed);
    daemon.restart();
    eventually("reconciliation removes the record", Duration::from_secs(30), || {
        daemon.state_files().is_empty()
    })
    .await;
    assert!(daemon.mock_instances().is_empty(), "{:#?}", daemon.mock_instances());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_cleanup_failed_stays_recorded_through_stop_vm() {
    // The create succeeds without an address, so StartVM fails after the instance exists; its
    // delete then fails too, and the record must keep the instance for reconciliation.
    let daemon = DaemonProcess::builder()
        .env("MOCK_FAULTS", "noIp")
        .env("MOCK_ERRORS", "deleteInstance=internalError")
        .start();
    let hv = daemon.client().await;
    let sid = "cleanup-fails-01";
    hv.create_vm(kata::no_deadline(), &kata::create_request(sid, "no-ip")).await.unwrap();
    let result = hv.start_vm(kata::with_deadline(START_DEADLINE), &kata::start_request(sid)).await;
    let (code, message) = kata::status(result);
    eprintln!("StartVM without an address: {code:?} {message:?}");
    assert_eq!(daemon.mock_instances().len(), 1);

    // The shim always follows a failed StartVM with StopVM, which must not fail.
    hv.stop_vm(kata::no_deadline(), &kata::stop_request(sid)).await.unwrap();
    eventually("the failed start's cleanup gives up", Duration::from_secs(30), || {
        std::fs::read_to_string(daemon.log_file())
            .unwrap_or_default()
            .contains("could not delete the instance of a failed start")
    })
    .await;
    let instances = daemon.mock_instances();
    let records = daemon.records();
    let unrecorded: Vec<_> = instances
        .iter()
        .filter(|i| !records.iter().any(|r| r.instance_id.as_deref() == Some(&i.instance_id)))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "instances no sandbox record knows (a restart cannot find them by record): {unrecorded:#?}\nrecords: {records:#?}\n{}",
        daemon.log_tail(30)
    );
}
