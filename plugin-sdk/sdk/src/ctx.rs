//! The per-call context a handler receives: operation id, deadline, cancellation and progress
//! reporting. Progress that names an instance id is remembered so that the SDK can put it into
//! the answer it gives on the handler's behalf (cancel grace expired, deadline, panic).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use caa_plugin_proto::method::Progress;
use caa_plugin_proto::{Notification, ProgressParams, RequestId};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;

/// Per-operation state shared by every request carrying the same operation id.
#[derive(Debug, Default)]
pub(crate) struct OpState {
    /// Cancelled by `$/cancel` for this operation (not by the drain).
    pub(crate) cancel: CancellationToken,
    /// The last instance id announced with `$/progress`.
    pub(crate) instance_id: Mutex<Option<String>>,
}

impl OpState {
    pub(crate) fn instance_id(&self) -> Option<String> {
        self.instance_id.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Per-call context. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ctx {
    inner: Arc<CtxInner>,
}

#[derive(Debug)]
struct CtxInner {
    operation_id: String,
    request_id: RequestId,
    deadline: Instant,
    op: Arc<OpState>,
    /// Cancelled when the SDK drains on shutdown.
    drain: CancellationToken,
    outbox: Outbox,
}

impl Ctx {
    pub(crate) fn new(
        operation_id: String,
        request_id: RequestId,
        deadline: Instant,
        op: Arc<OpState>,
        drain: CancellationToken,
        outbox: Outbox,
    ) -> Ctx {
        Ctx { inner: Arc::new(CtxInner { operation_id, request_id, deadline, op, drain, outbox }) }
    }

    /// A context not attached to any connection (progress goes nowhere), for unit tests of
    /// providers.
    pub fn detached(operation_id: &str, budget: Duration) -> Ctx {
        Ctx::new(
            operation_id.to_owned(),
            RequestId::Num(0),
            Instant::now() + budget,
            Arc::default(),
            CancellationToken::new(),
            Outbox::default(),
        )
    }

    /// The operation id (correlation id, cancel handle, idempotency key).
    pub fn operation_id(&self) -> &str {
        &self.inner.operation_id
    }

    /// When the host expects an answer (`params.deadlineMs` after the request arrived).
    pub fn deadline(&self) -> Instant {
        self.inner.deadline
    }

    /// Time left until [`Ctx::deadline`], zero once it passed.
    pub fn remaining(&self) -> Duration {
        self.inner.deadline.saturating_duration_since(Instant::now())
    }

    /// Resolves when `$/cancel` arrived for this operation or the SDK is draining for shutdown.
    pub async fn cancelled(&self) {
        tokio::select! {
            () = self.inner.op.cancel.cancelled() => {}
            () = self.inner.drain.cancelled() => {}
        }
    }

    /// Whether [`Ctx::cancelled`] would resolve now.
    pub fn is_cancelled(&self) -> bool {
        self.inner.op.cancel.is_cancelled() || self.inner.drain.is_cancelled()
    }

    /// Sends `$/progress`. An `instance_id` is remembered and reported in answers the SDK gives
    /// for this operation (cancel, deadline, panic), so the host can clean up.
    pub fn progress(&self, stage: &str, instance_id: Option<&str>, message: Option<&str>) {
        if let Some(id) = instance_id {
            *self.inner.op.instance_id.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(id.to_owned());
        }
        let params = ProgressParams {
            operation_id: self.inner.operation_id.clone(),
            stage: stage.to_owned(),
            instance_id: instance_id.map(str::to_owned),
            message: message.map(str::to_owned),
            percentage: None,
        };
        self.inner
            .outbox
            .send(caa_plugin_proto::envelope::notification_line(Progress::NAME, &params));
    }

    /// The last instance id announced for this operation.
    pub fn announced_instance_id(&self) -> Option<String> {
        self.inner.op.instance_id()
    }

    /// Fault injection for the mock provider: writes raw bytes as one line on the protocol
    /// stream.
    #[doc(hidden)]
    pub fn fault_send_raw_line(&self, line: Vec<u8>) {
        self.inner.outbox.send(line);
    }

    /// Fault injection for the mock provider: the JSON-RPC id of the request being handled.
    #[doc(hidden)]
    pub fn fault_request_id(&self) -> RequestId {
        self.inner.request_id.clone()
    }
}
