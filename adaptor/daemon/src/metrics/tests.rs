//! The exposition text: families announced before their samples, labels and values as
//! Prometheus' text format 0.0.4 wants them, and histograms cumulative up to `+Inf`.

use std::time::Duration;

use caa_plugin_host::CallError;

use super::*;

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn renders_gauges_counters_and_histograms() {
    let m = Metrics::new();
    m.observe_call(PluginMethod::CreateInstance, CallOutcome::Ok, Duration::from_millis(200));
    m.observe_call(PluginMethod::CreateInstance, CallOutcome::Ok, Duration::from_millis(3));
    m.observe_call(PluginMethod::DeleteInstance, CallOutcome::Error, Duration::from_secs(700));
    m.reconciled(ReconcileAction::Adopted, 2);
    let gauges = Gauges {
        sandboxes: SandboxCounts { creating: 1, running: 3, stopping: 0 },
        plugin_up: true,
        plugin_restarts: 4,
    };
    let text = m.render(&gauges);
    let l = lines(&text);
    for expected in [
        "# TYPE caa_sandboxes gauge",
        "caa_sandboxes{state=\"creating\"} 1",
        "caa_sandboxes{state=\"running\"} 3",
        "caa_sandboxes{state=\"stopping\"} 0",
        "caa_plugin_up 1",
        "# TYPE caa_plugin_restarts_total counter",
        "caa_plugin_restarts_total 4",
        "caa_plugin_calls_total{method=\"createInstance\",result=\"ok\"} 2",
        "caa_plugin_calls_total{method=\"deleteInstance\",result=\"error\"} 1",
        "caa_plugin_calls_total{method=\"verifyConfig\",result=\"cancelled\"} 0",
        "# TYPE caa_plugin_call_duration_seconds histogram",
        "caa_plugin_call_duration_seconds_bucket{method=\"createInstance\",le=\"0.005\"} 1",
        "caa_plugin_call_duration_seconds_bucket{method=\"createInstance\",le=\"0.1\"} 1",
        "caa_plugin_call_duration_seconds_bucket{method=\"createInstance\",le=\"0.25\"} 2",
        "caa_plugin_call_duration_seconds_bucket{method=\"createInstance\",le=\"600\"} 2",
        "caa_plugin_call_duration_seconds_bucket{method=\"createInstance\",le=\"+Inf\"} 2",
        "caa_plugin_call_duration_seconds_sum{method=\"createInstance\"} 0.203",
        "caa_plugin_call_duration_seconds_count{method=\"createInstance\"} 2",
        "caa_plugin_call_duration_seconds_bucket{method=\"deleteInstance\",le=\"600\"} 0",
        "caa_plugin_call_duration_seconds_bucket{method=\"deleteInstance\",le=\"+Inf\"} 1",
        "caa_plugin_call_duration_seconds_sum{method=\"deleteInstance\"} 700",
        "caa_reconciled_instances_total{action=\"adopted\"} 2",
        "caa_reconciled_instances_total{action=\"deleted\"} 0",
        "caa_reconciled_instances_total{action=\"failed\"} 0",
    ] {
        assert!(l.contains(&expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn every_sample_follows_its_family_header_and_parses() {
    let m = Metrics::new();
    m.observe_call(PluginMethod::ListInstances, CallOutcome::Timeout, Duration::from_secs(1));
    let text = m.render(&Gauges::default());
    assert!(text.ends_with('\n'));
    let mut family = String::new();
    let mut typed = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            family = rest.split(' ').next().unwrap().to_owned();
            typed = false;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(name, family);
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            typed = true;
            continue;
        }
        assert!(typed, "sample before its TYPE line: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "value of {line}");
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with(&family), "{name} outside family {family}");
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').unwrap();
                assert!(k.chars().all(|c| c.is_ascii_lowercase()), "{line}");
                assert!(v.len() >= 2 && v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
    }
}

#[test]
fn histogram_buckets_are_cumulative_up_to_the_count() {
    let m = Metrics::new();
    for ms in [1, 7, 7, 90, 4_000, 61_000] {
        m.observe_call(PluginMethod::CreateInstance, CallOutcome::Ok, Duration::from_millis(ms));
    }
    let text = m.render(&Gauges::default());
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.starts_with("caa_plugin_call_duration_seconds_bucket{method=\"createInstance\"")
        })
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), LATENCY_BUCKETS.len() + 1);
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(counts, [1, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6]);
}

#[tokio::test]
async fn timed_calls_count_their_outcome_and_dropped_calls_count_as_cancelled() {
    let m = Metrics::new();
    let ok: Result<u8, CallError> = m.timed(PluginMethod::VerifyConfig, async { Ok(1) }).await;
    assert_eq!(ok.unwrap(), 1);
    let err: Result<u8, CallError> = m
        .timed(PluginMethod::VerifyConfig, async {
            Err(CallError::Unavailable { plugin: "mock".into(), reason: "stopped".into() })
        })
        .await;
    assert!(err.is_err());
    let never =
        m.timed(PluginMethod::CreateInstance, std::future::pending::<Result<u8, CallError>>());
    assert!(tokio::time::timeout(Duration::from_millis(1), never).await.is_err());
    assert_eq!(m.calls(PluginMethod::VerifyConfig, CallOutcome::Ok), 1);
    assert_eq!(m.calls(PluginMethod::VerifyConfig, CallOutcome::Unavailable), 1);
    assert_eq!(m.calls(PluginMethod::CreateInstance, CallOutcome::Cancelled), 1);
}
