//! One plugin process: handshake, calls, stdout pollution, crashes, hangs and shutdown.

use std::time::Duration;

use caa_plugin_host::client::PROGRESS_PER_CALL;
use caa_plugin_host::{CallError, CallOptions, Plugin};
use caa_plugin_proto::method::{CreateInstance, DeleteInstance, Ping};
use caa_plugin_proto::{DeleteInstanceParams, Empty, ErrorCode};

use crate::support::{Fake, create_params, process_exists, wait_until, within};

#[tokio::test]
async fn initialize_and_calls_round_trip() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec(""))).await.unwrap();
    assert_eq!(plugin.info().plugin.name, "fake");
    assert_eq!(plugin.info().capabilities.max_concurrent_requests, 4);

    let created =
        within(plugin.call::<CreateInstance>(&create_params("op-round-trip"))).await.unwrap();
    assert_eq!(created.instance_id, "i-op-round");
    assert_eq!(created.ips, vec!["10.0.0.1"]);
    let params = DeleteInstanceParams {
        operation_id: "op-del".into(),
        instance_id: created.instance_id,
        sandbox_id: None,
        deadline_ms: 1000,
    };
    assert!(within(plugin.call::<DeleteInstance>(&params)).await.unwrap().deleted);
    within(plugin.call::<Ping>(&Empty {})).await.unwrap();

    let init = &fake.calls_of("initialize")[0]["params"];
    assert_eq!(init["provider"], "fake");
    assert_eq!(init["protocolVersions"], serde_json::json!([1]));
    assert_eq!(init["hostPid"], std::process::id());

    let pid = plugin.pid();
    let status = within(plugin.shutdown()).await.unwrap();
    assert_eq!(status, "exit status: 0");
    assert_eq!(fake.calls_of("teardown").len(), 1);
    assert_eq!(fake.calls_of("eof").len(), 1, "stdin was closed");
    assert!(!process_exists(pid));
}

#[tokio::test]
async fn non_json_stdout_line_is_skipped_and_counted() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("garbage"))).await.unwrap();
    let first =
        within(plugin.call::<CreateInstance>(&create_params("op-garbage-1"))).await.unwrap();
    assert_eq!(first.instance_id, "i-op-garba");
    assert_eq!(plugin.client().garbage_lines(), 1);
    within(plugin.call::<CreateInstance>(&create_params("op-garbage-2"))).await.unwrap();
    assert_eq!(plugin.client().garbage_lines(), 2);
    assert!(!plugin.client().protocol_violation());
}

#[tokio::test]
async fn stdout_flood_is_a_protocol_violation_and_the_plugin_is_killed() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("spew"))).await.unwrap();
    // The answer races with the kill; what matters is the verdict on the connection.
    let _ = within(plugin.call::<CreateInstance>(&create_params("op-spew"))).await;
    let status = within(plugin.wait_exit()).await;
    assert_eq!(status, "signal: 9 (SIGKILL)");
    assert!(plugin.client().protocol_violation());
    assert!(plugin.client().garbage_lines() > 100);
}

#[tokio::test]
async fn second_answer_to_one_request_is_dropped() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("twice"))).await.unwrap();
    let first = within(plugin.call::<CreateInstance>(&create_params("op-aaaaaaaa"))).await.unwrap();
    assert_eq!(first.instance_id, "i-op-aaaaa");
    // The duplicate answer of the first call must not be taken for the second call's answer.
    let second =
        within(plugin.call::<CreateInstance>(&create_params("op-bbbbbbbb"))).await.unwrap();
    assert_eq!(second.instance_id, "i-op-bbbbb");
    within(plugin.call::<Ping>(&Empty {})).await.unwrap();
}

#[tokio::test]
async fn response_with_unknown_id_is_dropped() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("unknown_id"))).await.unwrap();
    let created =
        within(plugin.call::<CreateInstance>(&create_params("op-unknown"))).await.unwrap();
    assert_eq!(created.instance_id, "i-op-unkno");
    within(plugin.call::<Ping>(&Empty {})).await.unwrap();
}

#[tokio::test]
async fn plugin_exiting_mid_call_is_a_crash_with_status_and_stderr() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("crash_on_create"))).await.unwrap();
    let err = within(plugin.call::<CreateInstance>(&create_params("op-crash"))).await.unwrap_err();
    let CallError::Crashed { status, stderr_tail, plugin: name, pid, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status, "exit status: 3");
    assert_eq!(stderr_tail.last().map(String::as_str), Some("boom: last words"));
    assert_eq!((name.as_str(), *pid), ("fake", plugin.pid()));
    assert!(err.is_indeterminate());
    assert!(err.to_string().contains("boom: last words"), "{err}");
    assert_eq!(plugin.exited().as_deref(), Some("exit status: 3"));
}

#[tokio::test]
async fn hung_create_times_out_after_cancel_and_reports_the_announced_instance() {
    let fake = Fake::new();
    let mut spec = fake.spec("hang");
    spec.timeouts.create_grace = Duration::from_millis(100);
    spec.timeouts.cancel_grace = Duration::from_millis(300);
    let plugin = within(Plugin::start(&spec)).await.unwrap();
    let mut params = create_params("op-hang");
    params.deadline_ms = 200;
    let err = within(plugin.call::<CreateInstance>(&params)).await.unwrap_err();
    let CallError::Timeout { method, instance_id, .. } = &err else { panic!("{err:?}") };
    assert_eq!(method, "createInstance");
    assert_eq!(instance_id.as_deref(), Some("i-hang"));
    assert_eq!(err.instance_id(), Some("i-hang"));
    wait_until("the plugin saw $/cancel", || !fake.calls_of("$/cancel").is_empty()).await;
    assert_eq!(fake.calls_of("$/cancel")[0]["params"]["operationId"], "op-hang");
    // A create hanging past its hard deadline means a hung plugin: it is killed.
    let status = within(plugin.wait_exit()).await;
    assert!(status.contains("signal: 9"), "{status}");
}

#[tokio::test]
async fn stderr_lines_are_kept_in_the_tail() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec(""))).await.unwrap();
    wait_until("stderr was drained", || {
        plugin.stderr_tail().iter().any(|l| l == "[WARN] stderr hello")
    })
    .await;
    assert_eq!(plugin.stderr_tail()[0], "[INFO] fake plugin starting");
}

#[tokio::test]
async fn shutdown_kills_a_plugin_that_ignores_sigterm_and_reaps_it() {
    let fake = Fake::new();
    let mut spec = fake.spec("ignore_term");
    spec.timeouts.exit_wait = Duration::from_millis(300);
    spec.timeouts.term_wait = Duration::from_millis(300);
    let plugin = within(Plugin::start(&spec)).await.unwrap();
    let pid = plugin.pid();
    let status = within(plugin.shutdown()).await.unwrap();
    assert_eq!(status, "signal: 9 (SIGKILL)");
    assert_eq!(fake.calls_of("eof").len(), 1, "stdin was closed before the signals");
    // Reaped: no zombie entry remains.
    assert!(!process_exists(pid));
}

#[tokio::test]
async fn error_with_foreign_data_still_answers_the_call() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("odd_error_data"))).await.unwrap();
    let err = within(plugin.call::<CreateInstance>(&create_params("op-odd"))).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CapacityUnavailable), "{err:?}");
    assert_eq!(err.instance_id(), Some("i-odd"), "the readable part of data is kept");
    assert_eq!(plugin.client().garbage_lines(), 0);

    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("string_error_data"))).await.unwrap();
    let err = within(plugin.call::<CreateInstance>(&create_params("op-str"))).await.unwrap_err();
    let CallError::Rpc(rpc) = &err else { panic!("{err:?}") };
    assert_eq!((rpc.code, rpc.message.as_str(), &rpc.data), (4, "no capacity", &None));
}

#[tokio::test]
async fn blank_stdout_lines_are_ignored() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("blank"))).await.unwrap();
    within(plugin.call::<CreateInstance>(&create_params("op-blank"))).await.unwrap();
    assert_eq!(plugin.client().garbage_lines(), 0);
}

#[tokio::test]
async fn request_from_the_plugin_is_pollution_and_not_answered() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("request"))).await.unwrap();
    within(plugin.call::<CreateInstance>(&create_params("op-request"))).await.unwrap();
    assert_eq!(plugin.client().garbage_lines(), 1);
    // A reply would have been queued before this ping.
    within(plugin.call::<Ping>(&Empty {})).await.unwrap();
    assert!(fake.calls().iter().all(|c| !c["kind"].is_null()), "{:?}", fake.calls());
}

#[tokio::test]
async fn progress_flood_is_capped_but_new_instance_ids_get_through() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("progress_flood"))).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = CallOptions::new(Duration::from_secs(10)).operation("op-flood").progress(tx);
    within(plugin.call_with::<CreateInstance>(&create_params("op-flood"), opts)).await.unwrap();
    let mut received = Vec::new();
    while let Some(p) = within(rx.recv()).await {
        received.push(p);
    }
    assert_eq!(received.len(), PROGRESS_PER_CALL + 1);
    assert_eq!(received.last().unwrap().instance_id.as_deref(), Some("i-late"));
    // The forced note past the cap and the note for no running operation.
    assert_eq!(plugin.client().garbage_lines(), 2);
}

#[tokio::test]
async fn time_queued_for_a_slot_is_taken_off_the_deadline_sent() {
    let fake = Fake::new();
    let plugin = within(Plugin::start(&fake.spec("serial,slow_create"))).await.unwrap();
    assert_eq!(plugin.info().capabilities.max_concurrent_requests, 1);
    let (a, b) = (create_params("op-queue-a"), create_params("op-queue-b"));
    // Polled in order: the first takes the only slot, the second queues behind it.
    let (ra, rb) = within(async {
        tokio::join!(plugin.call::<CreateInstance>(&a), plugin.call::<CreateInstance>(&b))
    })
    .await;
    ra.unwrap();
    rb.unwrap();
    let deadlines: Vec<u64> = fake
        .calls_of("createInstance")
        .iter()
        .map(|c| c["params"]["deadlineMs"].as_u64().unwrap())
        .collect();
    // The second waited at least the first's 0.5 s in the plugin.
    assert!(deadlines[1] <= 4_500 && deadlines[0] > deadlines[1], "{deadlines:?}");
}
