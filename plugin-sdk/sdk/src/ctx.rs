//! The per-call context a handler receives: operation id, deadline, cancellation and progress
//! reporting. Progress that names an instance id is remembered so that the SDK can put it into
//! the answer it gives on the handler's behalf (cancel grace expired, deadline, panic). The
//! context also holds the request's reply state, so that no progress follows the response and
//! a handler that finishes after the SDK answered for it knows it was abandoned.

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

/// Where a request is between its start and its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// The handler runs; the SDK may answer for it.
    Running,
    /// The handler returned; its own answer will be sent.
    Completed,
    /// The response is queued; nothing more goes out for this request.
    Answered,
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
    /// Cancelled when the shutdown drain times out (not when it begins: in-flight work first
    /// gets `drain_timeout` to finish normally).
    shutdown: CancellationToken,
    /// Whether `$/progress` goes out (the host did not refuse it in `initialize`).
    send_progress: bool,
    /// Guards the reply: progress is sent under this lock and the response is queued under it,
    /// so no progress can follow the response.
    reply: Mutex<Reply>,
    outbox: Outbox,
}

impl Ctx {
    pub(crate) fn new(
        operation_id: String,
        request_id: RequestId,
        deadline: Instant,
        op: Arc<OpState>,
        shutdown: CancellationToken,
        send_progress: bool,
        outbox: Outbox,
    ) -> Ctx {
        Ctx {
            inner: Arc::new(CtxInner {
                operation_id,
                request_id,
                deadline,
                op,
                shutdown,
                send_progress,
                reply: Mutex::new(Reply::Running),
                outbox,
            }),
        }
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
            true,
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

    /// Resolves when `$/cancel` arrived for this operation, or when the shutdown drain ran out of
    /// time (SIGTERM, parent gone, or the host stopped reading). The start of a drain does not
    /// cancel: work in flight first gets the drain timeout to finish normally.
    pub async fn cancelled(&self) {
        tokio::select! {
            () = self.inner.op.cancel.cancelled() => {}
            () = self.inner.shutdown.cancelled() => {}
        }
    }

    /// Whether [`Ctx::cancelled`] would resolve now.
    pub fn is_cancelled(&self) -> bool {
        self.inner.op.cancel.is_cancelled() || self.inner.shutdown.is_cancelled()
    }

    /// Sends `$/progress`. An `instance_id` is remembered and reported in answers the SDK gives
    /// for this operation (cancel, deadline, panic), so the host can clean up.
    ///
    /// Nothing is sent when the host declined progress in `initialize`
    /// (`hostCapabilities.progress: false`; the id is still remembered), nor once this request
    /// was answered (the SDK may have answered for a handler that overran): progress never
    /// follows the response.
    pub fn progress(&self, stage: &str, instance_id: Option<&str>, message: Option<&str>) {
        if let Some(id) = instance_id {
            *self.inner.op.instance_id.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(id.to_owned());
        }
        let reply = self.lock_reply();
        if *reply == Reply::Answered {
            if let Some(id) = instance_id {
                tracing::error!(
                    instance_id = id,
                    stage,
                    "progress named an instance after the request was answered; \
                     the instance may be leaked"
                );
            }
            return;
        }
        if !self.inner.send_progress {
            return;
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
        drop(reply);
    }

    fn lock_reply(&self) -> std::sync::MutexGuard<'_, Reply> {
        self.inner.reply.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handler is done: from now on the SDK sends the handler's own answer and no longer
    /// answers for it. False when the SDK already answered for it (the handler was abandoned
    /// and its outcome reaches nobody).
    pub(crate) fn complete(&self) -> bool {
        let mut reply = self.lock_reply();
        match *reply {
            Reply::Running | Reply::Completed => {
                *reply = Reply::Completed;
                true
            }
            Reply::Answered => false,
        }
    }

    /// Queues the response of this request (built by `line`, under the reply lock so that no
    /// progress can slip in after it). With `on_behalf` (the SDK answers for a handler that
    /// still runs) nothing is sent, and false returned, when the handler already completed: its
    /// own answer is on the way.
    pub(crate) fn answer(&self, on_behalf: bool, line: impl FnOnce() -> Vec<u8>) -> bool {
        let mut reply = self.lock_reply();
        match (*reply, on_behalf) {
            (Reply::Answered, _) | (Reply::Completed, true) => false,
            _ => {
                *reply = Reply::Answered;
                self.inner.outbox.send(line());
                true
            }
        }
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
