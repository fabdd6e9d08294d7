//! The `lifecycle` suite: how a plugin process starts and ends — EOF drains and exits 0,
//! teardown, SIGTERM answers in-flight work, the plugin follows its parent's death, and it leaves
//! nothing behind in its process group (docs/plugin-protocol.md, "Shutdown").

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;

use super::raw::RawSession;
use super::{Check, Outcome, Target, check, ensure};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(eof_alone_exits_zero),
        check!(teardown_then_eof_exits_zero),
        check!(sigterm_answers_in_flight_work_and_exits),
        check!(a_burst_of_pings_gets_only_protocol_lines),
        check!(plugin_exits_when_its_parent_dies),
        check!(no_process_left_in_the_group),
    ]
}

const EXIT: Duration = Duration::from_secs(10);

async fn eof_alone_exits_zero(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    s.initialize(&t.config).await?;
    s.close_stdin();
    let status = s.wait_exit(EXIT).await;
    ensure!(
        status.is_some_and(|s| s.success()),
        "expected exit 0 within {EXIT:?} after EOF, got {status:?}"
    );
    Ok(Outcome::Pass)
}

async fn teardown_then_eof_exits_zero(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    s.initialize(&t.config).await?;
    let resp = s.request(2, "teardown", json!({})).await?;
    ensure!(resp.get("result").is_some(), "teardown failed: {resp}");
    s.close_stdin();
    let status = s.wait_exit(EXIT).await;
    ensure!(
        status.is_some_and(|s| s.success()),
        "expected exit 0 after teardown and EOF, got {status:?}"
    );
    Ok(Outcome::Pass)
}

async fn sigterm_answers_in_flight_work_and_exits(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    s.initialize(&t.config).await?;
    let params = json!({
        "operationId": "conformance-sigterm", "deadlineMs": 8000, "podName": "term", "podNamespace": "default",
        "sandboxId": "5167e4a100000000", "userData": "#cloud-config\n", "spec": {},
        "tags": {"caa/sandbox-id": "5167e4a100000000"},
    });
    s.request_nowait(3, "createInstance", params).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.signal(Signal::SIGTERM);
    let resp = s.response(&json!(3)).await?;
    ensure!(
        resp.get("result").is_some() || resp.get("error").is_some(),
        "in-flight create not answered: {resp}"
    );
    let status = s.wait_exit(Duration::from_secs(15)).await;
    ensure!(status.is_some_and(|s| s.success()), "expected exit 0 after SIGTERM, got {status:?}");
    Ok(Outcome::Pass)
}

async fn a_burst_of_pings_gets_only_protocol_lines(t: &Target) -> anyhow::Result<Outcome> {
    // 200 pings in a row: every one answered, nothing but JSON-RPC on stdout.
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    s.initialize(&t.config).await?;
    for id in 100..300 {
        let pong = s.request(id, "$/ping", json!({})).await?;
        ensure!(pong.get("result").is_some(), "ping {id} failed: {pong}");
    }
    s.close_stdin();
    let status = s.wait_exit(EXIT).await;
    ensure!(status.is_some_and(|s| s.success()), "exit after pings: {status:?}");
    ensure!(s.bad_lines.is_empty(), "non-protocol lines on stdout: {:?}", s.bad_lines);
    Ok(Outcome::Pass)
}

async fn plugin_exits_when_its_parent_dies(t: &Target) -> anyhow::Result<Outcome> {
    // sh keeps our stdin pipe open for the plugin, backgrounds it, prints its pid and becomes
    // `sleep`: killing that process orphans the plugin while its stdin stays open, so only the
    // parent watchdog can end it.
    let plugin = t.plugin.to_string_lossy().into_owned();
    let script = r#"exec 3<&0; "$0" <&3 3<&- >/dev/null & echo $!; exec sleep 60"#;
    let mut s =
        RawSession::start(std::path::Path::new("/bin/sh"), &["-c", script, &plugin]).await?;
    let line = s.next_raw_line().await?;
    let pid: i32 =
        line.trim().parse().map_err(|_| anyhow::anyhow!("no pid from the wrapper: {line:?}"))?;
    s.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": super::raw::initialize_params(&t.config)}))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.signal(Signal::SIGKILL);
    let started = Instant::now();
    while started.elapsed() < EXIT {
        if !alive(pid) {
            return Ok(Outcome::Pass);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    anyhow::bail!("plugin pid {pid} still running {EXIT:?} after its parent died")
}

/// Whether `pid` runs (a zombie waiting for a reaper counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z")
        }
        Err(_) => false,
    }
}

async fn no_process_left_in_the_group(t: &Target) -> anyhow::Result<Outcome> {
    let mut s = RawSession::start(&t.plugin, &[]).await?;
    s.initialize(&t.config).await?;
    let pgid = Pid::from_raw(s.pid as i32);
    s.close_stdin();
    let status = s.wait_exit(EXIT).await;
    ensure!(status.is_some(), "plugin did not exit after EOF");
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(killpg(pgid, None).is_err(), "processes remain in the plugin's process group {pgid}");
    Ok(Outcome::Pass)
}
