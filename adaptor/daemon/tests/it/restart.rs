//! Restarting the adaptor: live sandboxes are re-adopted (StopVM still works), a StartVM that
//! died half-way has its instance deleted, and instances of this node that no record knows are
//! removed.

use std::time::Duration;

use caa_kata_protos::ttrpc::context;

use crate::daemon::{Daemon, Options, create_request, deadline, start_request, stop_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_sandbox_is_readopted_and_stops_after_a_restart() {
    let d = Daemon::start(Options::default()).await;
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_request("sb-keep", "web")).await.unwrap();
    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-keep")).await.unwrap();
    let dir = d.stop().await;

    let d = Daemon::start_in(dir, Options::default()).await;
    assert_eq!(d.instances().await.len(), 1, "a restart must not delete a live sandbox's VM");
    assert_eq!(d.manager.len(), 1);
    let (hv, _) = d.client().await;
    hv.stop_vm(context::with_timeout(0), &stop_request("sb-keep")).await.unwrap();
    assert!(d.instances().await.is_empty());
    assert_eq!(d.records(), 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_made_start_is_cleaned_up_on_restart() {
    let d = Daemon::start(Options::default()).await;
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_request("sb-half", "web")).await.unwrap();
    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-half")).await.unwrap();
    // Pretend the adaptor died between the create and the end of StartVM.
    let state = d.dir.path().join("state/sb-half.json");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("\"running\"") || text.contains("Running"), "{text}");
    let creating =
        text.replace("\"running\"", "\"creating\"").replace("\"Running\"", "\"Creating\"");
    std::fs::write(&state, creating).unwrap();
    let dir = d.stop().await;

    let d = Daemon::start_in(dir, Options::default()).await;
    assert!(d.instances().await.is_empty(), "the half-made instance is deleted");
    assert_eq!(d.records(), 0);
    assert_eq!(d.manager.len(), 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_of_this_node_without_a_record_is_deleted_on_restart() {
    let d = Daemon::start(Options::default()).await;
    let (hv, _) = d.client().await;
    hv.create_vm(context::with_timeout(0), &create_request("sb-lost", "web")).await.unwrap();
    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-lost")).await.unwrap();
    std::fs::remove_file(d.dir.path().join("state/sb-lost.json")).unwrap();
    let dir = d.stop().await;

    let d = Daemon::start_in(dir, Options::default()).await;
    assert!(d.instances().await.is_empty());
    d.stop().await;
}
