//! Wire compatibility with an independent ttrpc implementation: the Go `ttrpc-go-probe`
//! (containerd/ttrpc from Debian packages) plays the Kata shim against our generated server.
//! Runs only with `CAA_TEST_GO_PROBE=1`; then a probe that cannot be built or run fails.

use caa_e2e::canned::{self, Seen};
use caa_e2e::go_probe::{build_probe, gate_open, hex, output_text as text, run_probe, unhex};
use caa_kata_protos::podvminfo::{GetInfoRequest, GetInfoResponse};
use caa_kata_protos::protobuf::Message;

const SANDBOX: &str = "sandbox-go-probe";
/// The probe's StartVM deadline, like the shim's default remote hypervisor timeout.
const START_TIMEOUT_NANOS: i64 = 600_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_shim_probe_drives_the_rust_server() {
    if !gate_open() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = build_probe(dir.path()).await;
    let running = canned::start(dir.path()).await;
    let sock = running.sock.to_str().unwrap().to_owned();

    // The full lifecycle the shim runs, one connection per call.
    let out = run_probe(&bin, &["hv-client", "-sock", &sock, "-id", SANDBOX, "-op", "all"]).await;
    assert!(out.status.success(), "hv-client failed: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let agent = canned::agent_socket(SANDBOX);
    for line in [
        format!("Version -> {:?}", canned::VERSION),
        format!("CreateVM -> agentSocketPath={agent:?}"),
        "StartVM -> ok".to_string(),
        "StopVM -> ok".to_string(),
    ] {
        assert!(stdout.contains(&line), "missing {line:?} in: {}", text(&out));
    }

    let seen = running.canned.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let (Seen::Version(version), 0) = &seen[0] else { panic!("{:?}", seen[0]) };
    assert_eq!(version.version, "0.0.1");
    let (Seen::Create(create), 0) = &seen[1] else { panic!("{:?}", seen[1]) };
    assert_eq!(create.id, SANDBOX);
    assert_eq!(create.networkNamespacePath, "/var/run/netns/cni-probe");
    assert_eq!(create.annotations.len(), 9, "{:?}", create.annotations);
    let (name, namespace) = canned::POD;
    assert_eq!(create.annotations["io.kubernetes.cri.sandbox-name"], name);
    assert_eq!(create.annotations["io.kubernetes.cri.sandbox-namespace"], namespace);
    assert_eq!(create.annotations["io.katacontainers.config.hypervisor.default_memory"], "2048");
    let (Seen::Start(start), timeout) = &seen[2] else { panic!("{:?}", seen[2]) };
    assert_eq!(start.id, SANDBOX);
    // Go sends the time left until its 600 s deadline: a little under 600 s.
    let floor = START_TIMEOUT_NANOS - 60_000_000_000;
    assert!((floor..=START_TIMEOUT_NANOS).contains(timeout), "timeout_nano {timeout}");
    let (Seen::Stop(stop), 0) = &seen[3] else { panic!("{:?}", seen[3]) };
    assert_eq!(stop.id, SANDBOX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_clients_see_statuses_and_podvminfo() {
    if !gate_open() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = build_probe(dir.path()).await;
    let running = canned::start(dir.path()).await;
    let sock = running.sock.to_str().unwrap().to_owned();

    // A handler's status reaches the Go client with code and message intact.
    let out =
        run_probe(&bin, &["hv-client", "-sock", &sock, "-id", canned::FAIL_ID, "-op", "start"])
            .await;
    assert!(!out.status.success(), "{}", text(&out));
    let expected = format!("error: code=9(FailedPrecondition) msg={:?}", canned::FAIL_MESSAGE);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected), "{}", text(&out));

    // PodVMInfo answers under its exact wire name `podvminfo.PodVMInfo`.
    let (name, namespace) = canned::POD;
    let req = GetInfoRequest {
        PodName: name.into(),
        PodNamespace: namespace.into(),
        ..Default::default()
    };
    let payload = hex(&req.write_to_bytes().unwrap());
    let call = ["raw-call", "-sock", &sock, "-service", caa_kata_protos::PODVMINFO_SERVICE];
    let out =
        run_probe(&bin, &[&call[..], &["-method", "GetInfo", "-payload-hex", &payload]].concat())
            .await;
    assert!(out.status.success(), "GetInfo failed: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reply = stdout.trim().strip_prefix("OK payload=").expect("an OK line from raw-call");
    let got = GetInfoResponse::parse_from_bytes(&unhex(reply)).unwrap();
    assert_eq!(got.VMID, canned::VMID);

    // An unknown pod: NOT_FOUND with the lookup's message.
    let ghost = GetInfoRequest { PodName: "ghost".into(), ..Default::default() };
    let payload = hex(&ghost.write_to_bytes().unwrap());
    let out =
        run_probe(&bin, &[&call[..], &["-method", "GetInfo", "-payload-hex", &payload]].concat())
            .await;
    let expected = r#"error: code=5(NotFound) msg="VM ID for :ghost was not found""#;
    assert!(String::from_utf8_lossy(&out.stderr).contains(expected), "{}", text(&out));
}
