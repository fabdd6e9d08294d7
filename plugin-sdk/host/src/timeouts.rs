//! Time budgets: the per-plugin [`Timeouts`] table (§6.4, §6.8, §6.9 of the protocol design) and
//! [`CallPolicy`], which gives each protocol method its default budget and operation id.

use std::time::Duration;

use caa_plugin_proto::Method;
use caa_plugin_proto::method::{
    CreateInstance, DeleteInstance, Initialize, ListInstances, Ping, Teardown, VerifyConfig,
};

use crate::client::CallOptions;

/// Budgets for one plugin. All are configurable per plugin in the daemon's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `initialize` (`--describe` has its own fixed 10 s).
    pub start: Duration,
    /// `verifyConfig`.
    pub verify: Duration,
    /// Added to a create's `deadlineMs` before the host gives up.
    pub create_grace: Duration,
    /// After `$/cancel`, how long to wait for the cancelled call's answer.
    pub cancel_grace: Duration,
    /// `deleteInstance`, retries included.
    pub delete: Duration,
    /// `listInstances`.
    pub list: Duration,
    /// `teardown` at shutdown.
    pub teardown: Duration,
    /// One `$/ping`.
    pub ping: Duration,
    /// Time between pings.
    pub ping_interval: Duration,
    /// Consecutive failed pings after which the plugin is killed.
    pub ping_failures: u32,
    /// After stdin is closed at shutdown, how long to wait for the exit.
    pub exit_wait: Duration,
    /// After SIGTERM, how long to wait before SIGKILL.
    pub term_wait: Duration,
    /// At supervisor shutdown, how long creates in flight (cancelled) and their orphan deletes
    /// may take before the plugin is stopped.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            start: Duration::from_secs(10),
            verify: Duration::from_secs(60),
            create_grace: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(30),
            delete: Duration::from_secs(300),
            list: Duration::from_secs(60),
            teardown: Duration::from_secs(30),
            ping: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            ping_failures: 3,
            exit_wait: Duration::from_secs(10),
            term_wait: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How the host calls one protocol method by default.
pub trait CallPolicy: Method {
    /// The default options: budget, and the operation id for operations.
    fn options(params: &Self::Params, timeouts: &Timeouts) -> CallOptions;

    /// Whether a timeout (after `$/cancel` and its grace) means the plugin hangs and is killed.
    const HANG_IS_CRASH: bool = false;

    /// The params to send after the call `waited` for a concurrency slot: `deadlineMs` less the
    /// wait, so that the host's deadline stays `deadlineMs` + grace counted from the send.
    /// `None` when the method has no deadline (the params go out unchanged).
    fn after_queue(_params: &Self::Params, _waited: Duration) -> Option<Self::Params> {
        None
    }
}

fn less(deadline_ms: u64, waited: Duration) -> u64 {
    deadline_ms.saturating_sub(u64::try_from(waited.as_millis()).unwrap_or(u64::MAX))
}

impl CallPolicy for Initialize {
    fn options(_: &Self::Params, t: &Timeouts) -> CallOptions {
        CallOptions::new(t.start)
    }
}

impl CallPolicy for VerifyConfig {
    fn options(p: &Self::Params, t: &Timeouts) -> CallOptions {
        CallOptions::new(t.verify).operation(p.operation_id.clone())
    }

    fn after_queue(p: &Self::Params, waited: Duration) -> Option<Self::Params> {
        Some(Self::Params { deadline_ms: less(p.deadline_ms, waited), ..p.clone() })
    }
}

impl CallPolicy for CreateInstance {
    fn options(p: &Self::Params, t: &Timeouts) -> CallOptions {
        CallOptions::new(Duration::from_millis(p.deadline_ms) + t.create_grace)
            .operation(p.operation_id.clone())
    }

    const HANG_IS_CRASH: bool = true;

    fn after_queue(p: &Self::Params, waited: Duration) -> Option<Self::Params> {
        Some(Self::Params { deadline_ms: less(p.deadline_ms, waited), ..p.clone() })
    }
}

impl CallPolicy for DeleteInstance {
    fn options(p: &Self::Params, t: &Timeouts) -> CallOptions {
        CallOptions::new(t.delete).operation(p.operation_id.clone())
    }

    fn after_queue(p: &Self::Params, waited: Duration) -> Option<Self::Params> {
        Some(Self::Params { deadline_ms: less(p.deadline_ms, waited), ..p.clone() })
    }
}

impl CallPolicy for ListInstances {
    fn options(_: &Self::Params, t: &Timeouts) -> CallOptions {
        CallOptions::new(t.list)
    }
}

impl CallPolicy for Teardown {
    fn options(_: &Self::Params, t: &Timeouts) -> CallOptions {
        CallOptions::new(t.teardown)
    }
}

impl CallPolicy for Ping {
    fn options(_: &Self::Params, t: &Timeouts) -> CallOptions {
        CallOptions::new(t.ping)
    }
}
