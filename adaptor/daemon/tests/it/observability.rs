//! What operators and upstream's tooling read from the daemon: the `/metrics` text after a
//! lifecycle driven through the ttrpc API, `/startup`, and the upstream-format log line of
//! CreateVM that upstream's e2e suite parses.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caa_adaptor::logging::upstream::UpstreamFormat;
use caa_adaptor::probe::ProbeServer;
use caa_adaptor::sandbox::CreateVm;
use caa_kata_protos::ttrpc::context;
use caa_test_support::LogCapture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::daemon::{Daemon, Options, create_request, deadline, start_request, stop_request};

/// One HTTP GET; returns the status line and the body.
async fn get(probe: &ProbeServer, path: &str) -> (String, String) {
    let mut conn = tokio::net::TcpStream::connect(probe.local_addr()).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_one_lifecycle() {
    let d = Daemon::start(Options::default()).await;
    let ready = Arc::new(AtomicBool::new(true));
    let probe = ProbeServer::start(0, ready, d.manager.clone()).await.unwrap();
    assert_eq!(get(&probe, "/startup").await, ("HTTP/1.1 200 OK".to_owned(), "ok\n".to_owned()));
    assert_eq!(get(&probe, "/nothing").await.0, "HTTP/1.1 404 Not Found");
    let (hv, _) = d.client().await;

    hv.create_vm(context::with_timeout(0), &create_request("sb-metrics", "web")).await.unwrap();
    let (status, text) = get(&probe, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(value(&text, "caa_sandboxes{state=\"creating\"}"), Some(1), "{text}");

    hv.start_vm(deadline(Duration::from_secs(30)), &start_request("sb-metrics")).await.unwrap();
    let (_, text) = get(&probe, "/metrics").await;
    assert_eq!(value(&text, "caa_sandboxes{state=\"creating\"}"), Some(0), "{text}");
    assert_eq!(value(&text, "caa_sandboxes{state=\"running\"}"), Some(1), "{text}");

    hv.stop_vm(context::with_timeout(0), &stop_request("sb-metrics")).await.unwrap();
    let (_, text) = get(&probe, "/metrics").await;
    for (series, expected) in [
        ("caa_sandboxes{state=\"creating\"}", 0),
        ("caa_sandboxes{state=\"running\"}", 0),
        ("caa_sandboxes{state=\"stopping\"}", 0),
        ("caa_plugin_up", 1),
        ("caa_plugin_restarts_total", 0),
        ("caa_plugin_calls_total{method=\"createInstance\",result=\"ok\"}", 1),
        ("caa_plugin_calls_total{method=\"createInstance\",result=\"error\"}", 0),
        ("caa_plugin_calls_total{method=\"deleteInstance\",result=\"ok\"}", 1),
        ("caa_plugin_calls_total{method=\"verifyConfig\",result=\"ok\"}", 0),
        ("caa_plugin_call_duration_seconds_bucket{method=\"createInstance\",le=\"600\"}", 1),
        ("caa_plugin_call_duration_seconds_bucket{method=\"createInstance\",le=\"+Inf\"}", 1),
        ("caa_plugin_call_duration_seconds_count{method=\"createInstance\"}", 1),
        ("caa_plugin_call_duration_seconds_count{method=\"deleteInstance\"}", 1),
        ("caa_reconciled_instances_total{action=\"adopted\"}", 0),
        ("caa_reconciled_instances_total{action=\"deleted\"}", 0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    // Start-up reconciliation listed this node's instances (the mock can list).
    assert_eq!(
        value(&text, "caa_plugin_calls_total{method=\"listInstances\",result=\"ok\"}"),
        Some(1),
        "{text}"
    );
    let sum = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("caa_plugin_call_duration_seconds_sum{method=\"createInstance\"} ")
        })
        .unwrap();
    assert!(sum.parse::<f64>().unwrap() > 0.0, "{sum}");
    assert!(text.contains("# TYPE caa_plugin_call_duration_seconds histogram\n"));
    drop(probe);
    d.stop().await;
}

fn leap_day() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_709_251_199) // 2024-02-29 23:59:59 UTC
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_log_format_renders_the_create_sandbox_line_the_e2e_suite_parses() {
    let d = Daemon::start(Options::default()).await;
    let id = "0123456789abcdef".repeat(4);
    let request = create_request(&id, "web");
    let capture = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_ansi(false)
        .event_format(UpstreamFormat::with_clock(leap_day))
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    d.manager
        .create_vm(CreateVm {
            id: request.id.clone(),
            annotations: request.annotations.clone(),
            netns: request.networkNamespacePath.clone(),
        })
        .await
        .unwrap();
    drop(guard);
    let text = capture.text();
    let line =
        text.lines().find(|l| l.contains("create a sandbox")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        line,
        format!(
            "2024/02/29 23:59:59 [adaptor/cloud] create a sandbox {id} for pod web in namespace \
             default (netns: /var/run/netns/cni-test) sandbox_id={id}"
        )
    );
    d.manager.stop_vm(&id).await.unwrap();
    d.stop().await;
}
