//! The daemon's Prometheus metrics: a registry of lock-free counters and latency histograms for
//! the plugin calls the daemon issues and for start-up reconciliation, and the text exposition
//! (format 0.0.4) served on `GET /metrics`, written by hand. Gauges that describe live state
//! (sandboxes by state, plugin up, restarts) are sampled by the caller at scrape time.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caa_plugin_host::CallError;

/// Upper bounds (seconds) of the plugin call latency buckets: from a quick list to the
/// longest create a cloud may take.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The plugin methods the daemon times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginMethod {
    /// `createInstance`.
    CreateInstance,
    /// `deleteInstance`.
    DeleteInstance,
    /// `listInstances`.
    ListInstances,
    /// `verifyConfig`.
    VerifyConfig,
}

impl PluginMethod {
    /// Every method, in exposition order.
    pub const ALL: [PluginMethod; 4] = [
        PluginMethod::CreateInstance,
        PluginMethod::DeleteInstance,
        PluginMethod::ListInstances,
        PluginMethod::VerifyConfig,
    ];

    /// The protocol's method name (the `method` label).
    pub fn name(self) -> &'static str {
        match self {
            PluginMethod::CreateInstance => "createInstance",
            PluginMethod::DeleteInstance => "deleteInstance",
            PluginMethod::ListInstances => "listInstances",
            PluginMethod::VerifyConfig => "verifyConfig",
        }
    }
}

/// How a plugin call ended (the `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A result.
    Ok,
    /// The plugin answered with an error.
    Error,
    /// No answer in time.
    Timeout,
    /// The plugin exited or the connection closed during the call.
    Crashed,
    /// The answer broke the protocol.
    Invalid,
    /// The plugin was not running (breaker open, shutting down).
    Unavailable,
    /// The daemon stopped waiting (its caller's deadline passed).
    Cancelled,
}

impl CallOutcome {
    /// Every outcome, in exposition order.
    pub const ALL: [CallOutcome; 7] = [
        CallOutcome::Ok,
        CallOutcome::Error,
        CallOutcome::Timeout,
        CallOutcome::Crashed,
        CallOutcome::Invalid,
        CallOutcome::Unavailable,
        CallOutcome::Cancelled,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Error => "error",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Crashed => "crashed",
            CallOutcome::Invalid => "invalid",
            CallOutcome::Unavailable => "unavailable",
            CallOutcome::Cancelled => "cancelled",
        }
    }

    /// The outcome of a finished call.
    pub fn of<T>(result: &Result<T, CallError>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Ok,
            Err(CallError::Rpc(_)) => CallOutcome::Error,
            Err(CallError::Timeout { .. }) => CallOutcome::Timeout,
            Err(CallError::Crashed { .. } | CallError::Closed { .. }) => CallOutcome::Crashed,
            Err(CallError::Decode { .. } | CallError::InvalidResult { .. }) => CallOutcome::Invalid,
            Err(CallError::Unavailable { .. }) => CallOutcome::Unavailable,
        }
    }
}

/// What start-up reconciliation did with one sandbox or instance (the `action` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileAction {
    /// A recorded sandbox was put back into service.
    Adopted,
    /// An abandoned or unrecorded instance was deleted.
    Deleted,
    /// Such an instance could not be deleted.
    Failed,
}

impl ReconcileAction {
    const ALL: [ReconcileAction; 3] =
        [ReconcileAction::Adopted, ReconcileAction::Deleted, ReconcileAction::Failed];

    fn name(self) -> &'static str {
        match self {
            ReconcileAction::Adopted => "adopted",
            ReconcileAction::Deleted => "deleted",
            ReconcileAction::Failed => "failed",
        }
    }
}

/// Live sandboxes by state, sampled at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxCounts {
    /// Registered by CreateVM, or StartVM in progress.
    pub creating: u64,
    /// StartVM succeeded (or re-adopted at start-up).
    pub running: u64,
    /// StopVM in progress, or StartVM failed and the shim's StopVM is awaited.
    pub stopping: u64,
}

/// The sampled gauges of one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Sandboxes by state.
    pub sandboxes: SandboxCounts,
    /// Whether the plugin runs.
    pub plugin_up: bool,
    /// Successful plugin restarts since start.
    pub plugin_restarts: u64,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS`]; larger values only in `count`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The registry. Share it behind an `Arc`; every update is one or two relaxed atomic adds.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: [[AtomicU64; CallOutcome::ALL.len()]; PluginMethod::ALL.len()],
    latency: [Histogram; PluginMethod::ALL.len()],
    reconciled: [AtomicU64; ReconcileAction::ALL.len()],
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts one finished plugin call and its latency.
    pub fn observe_call(&self, method: PluginMethod, outcome: CallOutcome, elapsed: Duration) {
        self.calls[method as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.latency[method as usize].observe(elapsed);
    }

    /// Awaits `call`, counting it under `method`; a call dropped before it ends counts as
    /// [`CallOutcome::Cancelled`].
    pub async fn timed<T>(
        &self,
        method: PluginMethod,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let mut timer = CallTimer { metrics: self, method, started: Instant::now(), done: false };
        let result = call.await;
        timer.done = true;
        self.observe_call(method, CallOutcome::of(&result), timer.started.elapsed());
        result
    }

    /// Calls of `method` that ended with `outcome` so far.
    pub fn calls(&self, method: PluginMethod, outcome: CallOutcome) -> u64 {
        self.calls[method as usize][outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts `n` reconciliation actions.
    pub fn reconciled(&self, action: ReconcileAction, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.reconciled[action as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text for this registry and the sampled `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let s = gauges.sandboxes;
        header(&mut out, "caa_sandboxes", "gauge", "Live sandboxes on this node by state.");
        for (state, n) in
            [("creating", s.creating), ("running", s.running), ("stopping", s.stopping)]
        {
            let _ = writeln!(out, "caa_sandboxes{{state=\"{state}\"}} {n}");
        }
        header(&mut out, "caa_plugin_up", "gauge", "Whether the provider plugin is running.");
        let _ = writeln!(out, "caa_plugin_up {}", u8::from(gauges.plugin_up));
        header(
            &mut out,
            "caa_plugin_restarts_total",
            "counter",
            "Provider plugin restarts after a crash.",
        );
        let _ = writeln!(out, "caa_plugin_restarts_total {}", gauges.plugin_restarts);
        header(
            &mut out,
            "caa_plugin_calls_total",
            "counter",
            "Provider plugin calls issued by the daemon, by method and result.",
        );
        for method in PluginMethod::ALL {
            for outcome in CallOutcome::ALL {
                let _ = writeln!(
                    out,
                    "caa_plugin_calls_total{{method=\"{}\",result=\"{}\"}} {}",
                    method.name(),
                    outcome.name(),
                    self.calls(method, outcome)
                );
            }
        }
        header(
            &mut out,
            "caa_plugin_call_duration_seconds",
            "histogram",
            "Latency of provider plugin calls issued by the daemon.",
        );
        for method in PluginMethod::ALL {
            self.render_histogram(&mut out, method);
        }
        header(
            &mut out,
            "caa_reconciled_instances_total",
            "counter",
            "Sandboxes and instances handled by start-up reconciliation, by action.",
        );
        for action in ReconcileAction::ALL {
            let n = self.reconciled[action as usize].load(Ordering::Relaxed);
            let _ =
                writeln!(out, "caa_reconciled_instances_total{{action=\"{}\"}} {n}", action.name());
        }
        out
    }

    fn render_histogram(&self, out: &mut String, method: PluginMethod) {
        let h = &self.latency[method as usize];
        let name = "caa_plugin_call_duration_seconds";
        let method = method.name();
        // Read the count first: concurrent observations then never make a bucket exceed it.
        let count = h.count.load(Ordering::Relaxed);
        let mut cumulative = 0;
        for (le, bucket) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
            cumulative = (cumulative + bucket.load(Ordering::Relaxed)).min(count);
            let _ = writeln!(out, "{name}_bucket{{method=\"{method}\",le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{method=\"{method}\",le=\"+Inf\"}} {count}");
        let sum = Duration::from_nanos(h.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        let _ = writeln!(out, "{name}_sum{{method=\"{method}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{method=\"{method}\"}} {count}");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Counts a call whose future was dropped before it finished.
struct CallTimer<'a> {
    metrics: &'a Metrics,
    method: PluginMethod,
    started: Instant,
    done: bool,
}

impl Drop for CallTimer<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.metrics.observe_call(self.method, CallOutcome::Cancelled, self.started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests;
