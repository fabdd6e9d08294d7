//! Runs the real `caa-ctl` binary against an in-test ttrpc server and checks what arrived on
//! the wire, what was printed and the exit status.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use caa_ctl::annotations::{self, SHIM_KEYS};
use caa_e2e::canned::{self, Seen};
use caa_kata_protos::hypervisor::{StartVMRequest, StopVMRequest};

const START_VM_NANOS: i64 = 600_000_000_000;

/// Runs `caa-ctl --socket <sock> <args>` with REMOTE_HYPERVISOR_ENDPOINT unset.
async fn ctl(sock: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_caa-ctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .env_remove("REMOTE_HYPERVISOR_ENDPOINT")
        .output()
        .await
        .expect("running caa-ctl")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap().trim_end().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_vm_sends_the_nine_shim_keys_overrides_and_netns() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let initdata = dir.path().join("initdata.toml");
    std::fs::write(&initdata, "algorithm = \"sha256\"\n").unwrap();
    let args = [
        "create-vm",
        "sb-1",
        "--pod",
        "web-0",
        "--vcpus",
        "2",
        "--memory",
        "4096",
        "--instance-type",
        "t3.small",
        "--initdata-file",
        initdata.to_str().unwrap(),
        "--netns",
        "/var/run/netns/cni-1",
        "--annotation",
        "io.katacontainers.config.hypervisor.image=override",
        "--annotation",
        "example.com/extra=a=b",
    ];
    let out = ctl(&running.sock, &args).await;
    assert_eq!(stdout(&out), canned::agent_socket("sb-1"));

    let seen = running.canned.seen();
    let [(Seen::Create(req), timeout)] = seen.as_slice() else { panic!("{seen:?}") };
    assert_eq!(*timeout, 0, "the shim sends CreateVM without a deadline");
    assert_eq!(req.id, "sb-1");
    assert_eq!(req.networkNamespacePath, "/var/run/netns/cni-1");
    let mut expected: HashMap<String, String> =
        SHIM_KEYS.iter().map(|k| (k.to_string(), String::new())).collect();
    for (key, value) in [
        (annotations::SANDBOX_NAME, "web-0"),
        (annotations::SANDBOX_NAMESPACE, "default"),
        (annotations::DEFAULT_VCPUS, "2"),
        (annotations::DEFAULT_MEMORY, "4096"),
        (annotations::DEFAULT_GPUS, "0"),
        (annotations::MACHINE_TYPE, "t3.small"),
        (annotations::CC_INIT_DATA, "algorithm = \"sha256\"\n"),
        (annotations::IMAGE, "override"),
        ("example.com/extra", "a=b"),
    ] {
        expected.insert(key.to_string(), value.to_string());
    }
    assert_eq!(req.annotations, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_vm_defaults_are_empty_or_zero_and_json_prints_the_response() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let out =
        ctl(&running.sock, &["--json", "create-vm", "sb-2", "--pod", "p", "--namespace", "ns"])
            .await;
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed, serde_json::json!({ "agentSocketPath": canned::agent_socket("sb-2") }));

    let seen = running.canned.seen();
    let [(Seen::Create(req), _)] = seen.as_slice() else { panic!("{seen:?}") };
    assert_eq!(req.annotations.len(), 9);
    assert_eq!(req.annotations[annotations::SANDBOX_NAMESPACE], "ns");
    for key in [annotations::DEFAULT_VCPUS, annotations::DEFAULT_MEMORY, annotations::DEFAULT_GPUS]
    {
        assert_eq!(req.annotations[key], "0", "{key}");
    }
    for key in [
        annotations::MACHINE_TYPE,
        annotations::IMAGE,
        annotations::CC_INIT_DATA,
        annotations::DEFAULT_GPU_MODEL,
    ] {
        assert_eq!(req.annotations[key], "", "{key}");
    }
    assert_eq!(req.networkNamespacePath, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_vm_carries_the_shim_deadline_or_the_given_one() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    assert_eq!(stdout(&ctl(&running.sock, &["start-vm", "sb-1"]).await), "started sb-1");
    assert_eq!(
        stdout(&ctl(&running.sock, &["start-vm", "sb-2", "--timeout", "1m30s"]).await),
        "started sb-2"
    );

    let seen = running.canned.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let start = |id: &str| Seen::Start(StartVMRequest { id: id.into(), ..Default::default() });
    assert_eq!(seen[0].0, start("sb-1"));
    // The client sends what remains of its deadline: close to, never above, what was set.
    assert!(
        seen[0].1 > START_VM_NANOS - 60_000_000_000 && seen[0].1 <= START_VM_NANOS,
        "{}",
        seen[0].1
    );
    assert_eq!(seen[1].0, start("sb-2"));
    assert!(seen[1].1 > 30_000_000_000 && seen[1].1 <= 90_000_000_000, "{}", seen[1].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_vm_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    assert_eq!(stdout(&ctl(&running.sock, &["stop-vm", "sb-1"]).await), "stopped sb-1");
    assert_eq!(stdout(&ctl(&running.sock, &["version"]).await), canned::VERSION);
    let json = stdout(&ctl(&running.sock, &["version", "--json"]).await);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::json!({ "version": canned::VERSION })
    );

    let seen = running.canned.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], (Seen::Stop(StopVMRequest { id: "sb-1".into(), ..Default::default() }), 0));
    let (Seen::Version(req), 0) = &seen[1] else { panic!("{seen:?}") };
    assert_eq!(req.version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_info_waits_when_asked_and_reports_not_found_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let args = ["get-info", "--pod", "web-0", "--namespace", "shop", "--wait", "--timeout", "5s"];
    assert_eq!(stdout(&ctl(&running.sock, &args).await), canned::VMID);

    let missing = ctl(&running.sock, &["get-info", "--pod", "web-0"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing),
        "caa-ctl: GetInfo: NOT_FOUND: VM ID for default:web-0 was not found\n"
    );

    let seen = running.canned.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (Seen::Info(req), timeout) = &seen[0] else { panic!("{seen:?}") };
    assert_eq!(
        (req.PodName.as_str(), req.PodNamespace.as_str(), req.Wait),
        ("web-0", "shop", true)
    );
    assert!(*timeout > 0 && *timeout <= 5_000_000_000, "{timeout}");
    let (Seen::Info(req), 0) = &seen[1] else { panic!("{seen:?}") };
    assert!(!req.Wait);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_exits_1_with_method_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let out = ctl(&running.sock, &["start-vm", canned::FAIL_ID]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let expected = format!("caa-ctl: StartVM: FAILED_PRECONDITION: {}\n", canned::FAIL_MESSAGE);
    assert_eq!(stderr(&out), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_fails_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let out = ctl(&running.sock, &["start-vm", canned::HANG_ID, "--timeout", "200ms"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "caa-ctl: StartVM: DEADLINE_EXCEEDED: no response within 200ms\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_socket_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    let out = ctl(&sock, &["version"]).await;
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    let prefix = format!("caa-ctl: Version: cannot connect to {}: ", sock.display());
    assert!(message.starts_with(&prefix), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_caa-ctl"))
        .arg("version")
        .env("REMOTE_HYPERVISOR_ENDPOINT", format!("unix://{}", running.sock.display()))
        .output()
        .await
        .unwrap();
    assert_eq!(stdout(&out), canned::VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_without_calling() {
    let dir = tempfile::tempdir().unwrap();
    let running = canned::start(dir.path()).await;
    for args in [
        &["create-vm", "sb-1"][..],
        &["create-vm", "sb-1", "--pod", "p", "--annotation", "no-equals"],
        &["start-vm", "sb-1", "--timeout", "10"],
        &["reboot-vm", "sb-1"],
    ] {
        let out = ctl(&running.sock, args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    assert!(running.canned.seen().is_empty());
}
