//! Orphan cleanup in harder cases: malformed create results, determinate errors after an
//! announced instance, deletes during restarts, deletes retried after a restart, and creates
//! still running at shutdown.

use std::time::Duration;

use caa_plugin_host::{
    CallError, Orphan, RestartPolicy, Supervisor, SupervisorStatus, signal_group,
};
use caa_plugin_proto::ErrorCode;
use nix::sys::signal::Signal;

use crate::support::{Fake, create_params, fast_restarts, wait_until, within};

async fn orphans(sup: &Supervisor, at_least: usize) -> Vec<Orphan> {
    within(sup.orphans_changed().wait_for(|n| *n >= at_least)).await.unwrap();
    sup.take_orphans()
}

#[tokio::test]
async fn undecodable_create_result_deletes_the_announced_instance() {
    let fake = Fake::new();
    let sup =
        within(Supervisor::start_with(fake.spec("progress_then_bad_result"), fast_restarts()))
            .await
            .unwrap();
    let err = within(sup.create_instance(create_params("op-bad"), None)).await.unwrap_err();
    assert!(matches!(err, CallError::Decode { .. }), "{err:?}");
    assert!(err.is_indeterminate());
    assert_eq!(err.instance_id(), Some("i-announced"));
    let orphans = orphans(&sup, 1).await;
    assert_eq!((orphans[0].instance_id.as_str(), orphans[0].cleaned), ("i-announced", true));
    assert_eq!(fake.calls_of("deleteInstance")[0]["params"]["instanceId"], "i-announced");
    within(sup.shutdown()).await;
}

#[tokio::test]
async fn determinate_error_after_an_announced_instance_deletes_it() {
    let fake = Fake::new();
    let sup = within(Supervisor::start_with(fake.spec("progress_then_capacity"), fast_restarts()))
        .await
        .unwrap();
    let err = within(sup.create_instance(create_params("op-cap"), None)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CapacityUnavailable));
    assert!(!err.is_indeterminate());
    let orphans = orphans(&sup, 1).await;
    assert_eq!((orphans[0].instance_id.as_str(), orphans[0].cleaned), ("i-cap", true));
    within(sup.shutdown()).await;
}

#[tokio::test]
async fn cleanup_waits_for_a_slow_restart() {
    let fake = Fake::new();
    // Calls give up on a restart at once, and the restart takes a while: the delete must keep
    // trying within its budget instead of failing with "unavailable".
    let policy = RestartPolicy {
        initial_backoff: Duration::from_millis(300),
        max_backoff: Duration::from_secs(1),
        restart_wait: Duration::from_millis(10),
        ..fast_restarts()
    };
    let sup = within(Supervisor::start_with(fake.spec("progress_then_crash_once"), policy))
        .await
        .unwrap();
    let err = within(sup.create_instance(create_params("op-slow"), None)).await.unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    let orphans = orphans(&sup, 1).await;
    assert_eq!(
        (orphans[0].instance_id.as_str(), orphans[0].cleaned),
        ("i-orphan", true),
        "{orphans:?}"
    );
    within(sup.shutdown()).await;
}

#[tokio::test]
async fn failed_cleanup_is_retried_after_the_next_start() {
    let fake = Fake::new();
    let sup =
        within(Supervisor::start_with(fake.spec("no_ips,delete_fails_in_first"), fast_restarts()))
            .await
            .unwrap();
    let SupervisorStatus::Running { pid: first } = sup.status() else {
        panic!("{:?}", sup.status())
    };
    within(sup.create_instance(create_params("op-retry"), None)).await.unwrap_err();
    let failed = orphans(&sup, 1).await;
    assert_eq!((failed[0].instance_id.as_str(), failed[0].cleaned), ("i-noip", false));
    assert!(failed[0].error.as_deref().unwrap().contains("credentials expired"), "{failed:?}");

    signal_group(first, Signal::SIGKILL);
    let cleaned = orphans(&sup, 2).await;
    assert_eq!((cleaned[0].instance_id.as_str(), cleaned[0].cleaned), ("i-noip", true));
    let deletes = fake.calls_of("deleteInstance");
    assert_eq!(deletes.len(), 2);
    assert_ne!(deletes[1]["pid"], first, "retried on the restarted plugin");
    within(sup.shutdown()).await;
}

#[tokio::test]
async fn shutdown_cancels_creates_in_flight_and_deletes_what_they_left() {
    let fake = Fake::new();
    let sup =
        within(Supervisor::start_with(fake.spec("cancellable"), fast_restarts())).await.unwrap();
    let create = tokio::spawn({
        let sup = sup.clone();
        async move { sup.create_instance(create_params("op-drain"), None).await }
    });
    wait_until("the create reached the plugin", || !fake.calls_of("createInstance").is_empty())
        .await;
    within(sup.shutdown()).await;
    assert_eq!(sup.status(), SupervisorStatus::Stopped);

    let err = within(create).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RequestCancelled), "{err:?}");
    assert_eq!(err.instance_id(), Some("i-cancelled"));
    let orphans = sup.take_orphans();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!((orphans[0].instance_id.as_str(), orphans[0].cleaned), ("i-cancelled", true));
    let kinds: Vec<String> =
        fake.calls().iter().map(|c| c["kind"].as_str().unwrap_or("").to_owned()).collect();
    let pos = |k: &str| kinds.iter().position(|x| x == k).unwrap();
    assert!(pos("$/cancel") < pos("deleteInstance") && pos("deleteInstance") < pos("teardown"));

    let err = within(sup.create_instance(create_params("op-late"), None)).await.unwrap_err();
    assert!(matches!(err, CallError::Unavailable { .. }), "{err:?}");
}
