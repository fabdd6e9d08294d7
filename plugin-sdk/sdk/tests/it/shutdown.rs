//! Shutdown paths: a drain lets in-flight work finish before cancelling it, and a host that
//! stopped reading gets its in-flight handlers cancelled (so they roll back) before `serve`
//! ends.

use std::time::Duration;

use caa_plugin_sdk::{ServeOptions, ServeOutcome, serve};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{
    Client, HANG_GUARD, ROLLED_BACK, Scripted, create_line, init_line, opts, request,
};

#[tokio::test]
async fn shutdown_lets_in_flight_work_finish_within_the_drain_timeout() {
    let options = ServeOptions { drain_timeout: Duration::from_secs(2), ..opts(&[]) };
    let mut c = Client::start::<Scripted>(options);
    assert_eq!(c.call(&init_line(json!({"zone": "z"}))).await["result"]["protocolVersion"], 1);
    // Watches ctx.cancelled() while it works: the start of the drain must not cancel it.
    c.send(&create_line(2, "op-drain", "drain-slow", 60_000)).await;
    assert_eq!(c.recv().await["params"]["stage"], "requested");
    c.shut_down();
    let answer = c.recv_answer().await;
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["result"]["instanceId"], "i-1", "{answer}");
    let (_, outcome) = c.finish().await;
    assert_eq!(outcome, ServeOutcome::Shutdown);
}

#[tokio::test]
async fn write_failure_cancels_in_flight_handlers_before_serve_ends() {
    let (mut to_plugin, plugin_in) = tokio::io::duplex(1 << 16);
    let (plugin_out, from_plugin) = tokio::io::duplex(1 << 16);
    let serve = tokio::spawn(serve::<Scripted, _, _>(
        plugin_in,
        plugin_out,
        opts(&[]),
        std::future::pending(),
    ));
    let mut lines = BufReader::new(from_plugin).lines();
    for line in
        [init_line(json!({"zone": "z"})), create_line(2, "op-write-fail", "cooperative", 60_000)]
    {
        to_plugin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        let got = tokio::time::timeout(HANG_GUARD, lines.next_line()).await.unwrap().unwrap();
        let got: Value = serde_json::from_str(&got.expect("plugin output")).unwrap();
        assert!(got["result"]["protocolVersion"] == 1 || got["method"] == "$/progress", "{got}");
    }
    // The host stops reading; the next write (the ping's answer) fails.
    drop(lines);
    let ping = format!("{}\n", request(3, "$/ping", json!({})));
    to_plugin.write_all(ping.as_bytes()).await.unwrap();
    let outcome = tokio::time::timeout(HANG_GUARD, serve).await.expect("hang").expect("join");
    assert_eq!(outcome.expect("serve"), ServeOutcome::WriteError);
    // The cooperative create saw the cancel and rolled back before serve returned.
    assert!(ROLLED_BACK.lock().unwrap().iter().any(|op| op == "op-write-fail"));
}
