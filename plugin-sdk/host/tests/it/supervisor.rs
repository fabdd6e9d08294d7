//! Supervision: restarts after crashes, the circuit breaker, and cleanup of instances that failed
//! creates may have left behind.

use caa_plugin_host::{CallError, Supervisor, SupervisorStatus};

use crate::support::{Fake, create_params, fast_restarts, wait_until, within};

#[tokio::test]
async fn restarts_after_a_crash_and_creates_again() {
    let fake = Fake::new();
    let sup = within(Supervisor::start_with(fake.spec("crash_on_create_once"), fast_restarts()))
        .await
        .unwrap();
    let SupervisorStatus::Running { pid: first } = sup.status() else {
        panic!("{:?}", sup.status())
    };
    assert_eq!(sup.restarts(), 0);
    let err = within(sup.create_instance(create_params("op-first"), None)).await.unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    wait_until(
        "restarted",
        || matches!(sup.status(), SupervisorStatus::Running { pid } if pid != first),
    )
    .await;
    assert_eq!(sup.restarts(), 1);
    let created = within(sup.create_instance(create_params("op-second"), None)).await.unwrap();
    assert_eq!(created.ips, vec!["10.0.0.1"]);
    assert_eq!(fake.calls_of("initialize").len(), 2);
    within(sup.shutdown()).await;
    assert_eq!(sup.status(), SupervisorStatus::Stopped);
}

#[tokio::test]
async fn breaker_opens_after_repeated_crashes_and_calls_fail_fast() {
    let fake = Fake::new();
    let sup =
        within(Supervisor::start_with(fake.spec("die_after_init"), fast_restarts())).await.unwrap();
    wait_until("breaker open", || matches!(sup.status(), SupervisorStatus::Unavailable { .. }))
        .await;
    let err = within(sup.create_instance(create_params("op-breaker"), None)).await.unwrap_err();
    let CallError::Unavailable { plugin, reason } = &err else { panic!("{err:?}") };
    assert_eq!(plugin, "fake");
    assert!(reason.contains("crashed 3 times") && reason.contains("dying now"), "{reason}");
    // No more restarts while the breaker is open: 1 start + 2 restarts.
    assert_eq!(fake.calls_of("initialize").len(), 3);
    within(sup.shutdown()).await;
}

#[tokio::test]
async fn crash_mid_create_deletes_the_announced_instance_on_the_restarted_plugin() {
    let fake = Fake::new();
    let sup =
        within(Supervisor::start_with(fake.spec("progress_then_crash_once"), fast_restarts()))
            .await
            .unwrap();
    let SupervisorStatus::Running { pid: first } = sup.status() else {
        panic!("{:?}", sup.status())
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let err = within(sup.create_instance(create_params("op-orphan"), Some(tx))).await.unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    assert_eq!(err.instance_id(), Some("i-orphan"));
    let progress = rx.recv().await.unwrap();
    assert_eq!(
        (progress.stage.as_str(), progress.instance_id.as_deref()),
        ("instanceCreated", Some("i-orphan"))
    );

    within(sup.orphans_changed().wait_for(|n| *n >= 1)).await.unwrap();
    let orphans = sup.take_orphans();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].instance_id, "i-orphan");
    assert_eq!(orphans[0].operation_id, "op-orphan");
    assert_eq!(orphans[0].sandbox_id, "sandbox-op-orphan");
    assert!(orphans[0].cleaned, "{:?}", orphans[0].error);
    let deletes = fake.calls_of("deleteInstance");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["params"]["instanceId"], "i-orphan");
    assert_ne!(deletes[0]["pid"], first, "the delete went to the restarted plugin");
    within(sup.shutdown()).await;
}

#[tokio::test]
async fn create_without_addresses_is_an_error_and_its_instance_is_deleted() {
    let fake = Fake::new();
    let sup = within(Supervisor::start_with(fake.spec("no_ips"), fast_restarts())).await.unwrap();
    let err = within(sup.create_instance(create_params("op-noip"), None)).await.unwrap_err();
    assert!(err.to_string().contains("plugin returned no IP addresses"), "{err}");
    assert_eq!(err.instance_id(), Some("i-noip"));
    within(sup.orphans_changed().wait_for(|n| *n >= 1)).await.unwrap();
    let orphans = sup.take_orphans();
    assert_eq!(orphans.len(), 1);
    assert!(orphans[0].cleaned && orphans[0].instance_id == "i-noip");
    assert_eq!(fake.calls_of("deleteInstance")[0]["params"]["instanceId"], "i-noip");
    within(sup.shutdown()).await;
}

#[tokio::test]
async fn create_abandoned_by_its_caller_is_deleted_when_it_succeeds() {
    let fake = Fake::new();
    let sup =
        within(Supervisor::start_with(fake.spec("slow_create"), fast_restarts())).await.unwrap();
    // The caller gives up long before the plugin answers (its future is dropped).
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        sup.create_instance(create_params("op-gone"), None),
    )
    .await;
    assert!(gave_up.is_err(), "the create should still be running");
    within(sup.orphans_changed().wait_for(|n| *n >= 1)).await.unwrap();
    let orphans = sup.take_orphans();
    assert_eq!(
        (orphans[0].instance_id.as_str(), orphans[0].cleaned),
        ("i-op-gone", true),
        "{orphans:?}"
    );
    let deletes = fake.calls_of("deleteInstance");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["params"]["instanceId"], "i-op-gone");
    within(sup.shutdown()).await;
}
