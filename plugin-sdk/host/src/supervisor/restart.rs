//! The restart loop: waits for the plugin to die, restarts it with exponential backoff, and
//! opens the circuit breaker after too many crashes within the window.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Current, Inner, SupervisorStatus};
use crate::plugin::Plugin;

pub(super) async fn restart_loop(inner: Arc<Inner>, first: Arc<Plugin>) {
    let policy = inner.policy;
    let name = inner.spec.name.clone();
    let mut crashes: VecDeque<Instant> = VecDeque::new();
    let mut plugin = first;
    loop {
        let status = plugin.wait_exit().await;
        if inner.stopping.load(Ordering::SeqCst) || plugin.is_stopping() {
            return;
        }
        let mut last_words = plugin.stderr_tail();
        drop(plugin);
        let mut attempt = 0;
        plugin = loop {
            let now = Instant::now();
            crashes.push_back(now);
            while crashes.front().is_some_and(|t| now.duration_since(*t) > policy.breaker_window) {
                crashes.pop_front();
            }
            if crashes.len() >= policy.breaker_crashes {
                let shown = &last_words[last_words.len().saturating_sub(5)..];
                let reason = format!(
                    "crashed {} times within {:?} (last: {status}); restarts paused for {:?}; last stderr lines: {}",
                    crashes.len(),
                    policy.breaker_window,
                    policy.breaker_cooldown,
                    shown.join(" | ")
                );
                tracing::error!(plugin = %name, %reason, "plugin circuit breaker open");
                inner.set(SupervisorStatus::Unavailable { reason }, None);
                tokio::time::sleep(policy.breaker_cooldown).await;
                crashes.clear();
            }
            attempt += 1;
            inner.set(SupervisorStatus::Restarting { attempt }, None);
            let exponent =
                u32::try_from(crashes.len().saturating_sub(1)).unwrap_or(u32::MAX).min(16);
            let backoff =
                policy.initial_backoff.saturating_mul(1 << exponent).min(policy.max_backoff);
            tracing::warn!(plugin = %name, attempt, ?backoff, "restarting plugin");
            tokio::time::sleep(backoff).await;
            if inner.stopping.load(Ordering::SeqCst) {
                return;
            }
            match Plugin::start(&inner.spec).await {
                Ok(p) => break Arc::new(p),
                Err(e) => {
                    let text = crate::error_chain(&e);
                    tracing::error!(plugin = %name, attempt, error = %text, "plugin restart failed");
                    last_words = vec![text];
                }
            }
        };
        tracing::info!(plugin = %name, pid = plugin.pid(), "plugin restarted");
        inner.restarts.fetch_add(1, Ordering::Relaxed);
        inner.set(SupervisorStatus::Running { pid: plugin.pid() }, Some(plugin.clone()));
        super::Supervisor { inner: inner.clone() }.retry_orphans();
    }
}

impl Inner {
    fn set(&self, status: SupervisorStatus, plugin: Option<Arc<Plugin>>) {
        self.current.send_if_modified(|current| {
            if self.stopping.load(Ordering::SeqCst) {
                return false;
            }
            *current = Current { status, plugin };
            true
        });
    }
}
