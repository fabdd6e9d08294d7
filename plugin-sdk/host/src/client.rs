//! The JSON-RPC client side of one plugin connection, over any `AsyncRead`/`AsyncWrite` pair.
//! One reader task routes responses to waiting calls and `$/progress` to per-operation
//! subscribers, and tolerates stdout pollution (logged, counted, and a protocol violation past
//! 100 lines a minute). Timeouts of operations send `$/cancel` and wait a grace period for the
//! answer, which may carry the id of a VM that has to be cleaned up.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use caa_plugin_proto::envelope::{notification_line, request_line};
use caa_plugin_proto::method::Cancel;
use caa_plugin_proto::{CancelParams, Method, Notification, ProgressParams, RequestId, RpcError};
use caa_plugin_wire::{LineSender, spawn_writer};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::call_error::CallError;

mod inbound;

/// Non-protocol stdout lines tolerated per minute before the connection counts as violated.
pub const GARBAGE_PER_MINUTE: usize = 100;

/// Longest excerpt of a non-protocol line that is logged.
const GARBAGE_EXCERPT: usize = 200;

/// `$/progress` notifications passed to one call's subscriber. Later ones are dropped with a
/// warning, except those announcing a new instance id (which also count as pollution then).
pub const PROGRESS_PER_CALL: usize = 256;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest accepted stdout line in bytes.
    pub max_line_bytes: usize,
    /// The provider name, for logs and errors.
    pub name: String,
    /// The plugin's pid, for logs and errors (0 when there is no process).
    pub pid: u32,
    /// After a timed-out operation was cancelled, how long to wait for its answer.
    pub cancel_grace: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            max_line_bytes: caa_plugin_proto::DEFAULT_MAX_LINE_BYTES,
            name: String::new(),
            pid: 0,
            cancel_grace: Duration::from_secs(30),
        }
    }
}

/// Per-call settings.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// How long to wait for the answer (before `$/cancel` and the grace period).
    pub timeout: Duration,
    /// The call's `operationId`: enables `$/cancel` on timeout and progress routing.
    pub operation_id: Option<String>,
    /// Where `$/progress` for this operation goes.
    pub progress: Option<mpsc::UnboundedSender<ProgressParams>>,
}

impl CallOptions {
    /// A call with a timeout and no operation.
    pub fn new(timeout: Duration) -> CallOptions {
        CallOptions { timeout, operation_id: None, progress: None }
    }

    /// Sets the operation id.
    pub fn operation(mut self, operation_id: impl Into<String>) -> CallOptions {
        self.operation_id = Some(operation_id.into());
        self
    }

    /// Sets the progress subscriber.
    pub fn progress(mut self, tx: mpsc::UnboundedSender<ProgressParams>) -> CallOptions {
        self.progress = Some(tx);
        self
    }
}

type Reply = Result<Box<RawValue>, RpcError>;

/// One call's progress subscriber.
#[derive(Debug)]
struct Subscriber {
    call: i64,
    tx: mpsc::UnboundedSender<ProgressParams>,
    forwarded: usize,
    warned: bool,
}

/// Calls sharing one `operationId` (a create retried while the first call still runs): each
/// keeps its own subscriber; the announced instance id is shared.
#[derive(Debug, Default)]
struct Operation {
    progress: Vec<Subscriber>,
    instance_id: Option<String>,
    calls: usize,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    sender: Option<LineSender>,
    pending: HashMap<i64, oneshot::Sender<Reply>>,
    operations: HashMap<String, Operation>,
    garbage_window: VecDeque<Instant>,
}

#[derive(Debug)]
struct Shared {
    opts: ClientOptions,
    next_id: AtomicI64,
    state: Mutex<State>,
    closed: watch::Sender<bool>,
    violated: watch::Sender<bool>,
    garbage_total: AtomicU64,
}

/// Owned by every [`Client`] clone; when the last one goes, input is closed and reading stops.
#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().sender = None;
        self.reader.abort();
    }
}

/// A connection to one plugin. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl Client {
    /// Starts the reader and writer tasks over `reader` (plugin stdout) and `writer` (stdin).
    pub fn new<R, W>(reader: R, writer: W, opts: ClientOptions) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, _writer_task) = spawn_writer(writer);
        let shared = Arc::new(Shared {
            opts,
            next_id: AtomicI64::new(1),
            state: Mutex::new(State { sender: Some(sender), ..State::default() }),
            closed: watch::Sender::new(false),
            violated: watch::Sender::new(false),
            garbage_total: AtomicU64::new(0),
        });
        let reader = tokio::spawn(inbound::read_loop(shared.clone(), reader));
        Client { handle: Arc::new(Handle { shared, reader }) }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Calls a method and decodes its result.
    pub async fn call<M: Method>(
        &self,
        params: &M::Params,
        opts: CallOptions,
    ) -> Result<M::Result, CallError> {
        let (raw, announced) = self.call_inner(M::NAME, params, opts).await?;
        serde_json::from_str(raw.get()).map_err(|e| decode_error(M::NAME, &raw, &e, announced))
    }

    /// Calls a method by name with untyped params (for the `caa-plugin` CLI).
    pub async fn call_raw(
        &self,
        method: &str,
        params: serde_json::Value,
        opts: CallOptions,
    ) -> Result<serde_json::Value, CallError> {
        let (raw, announced) = self.call_inner(method, &params, opts).await?;
        serde_json::from_str(raw.get()).map_err(|e| decode_error(method, &raw, &e, announced))
    }

    /// Sends a notification.
    pub fn notify<N: Notification>(&self, params: &N::Params) -> Result<(), CallError> {
        let line = notification_line(N::NAME, params);
        if self.shared().send(line) { Ok(()) } else { Err(self.shared().closed_error(None)) }
    }

    /// Sends `$/cancel` for an operation. Errors are ignored: a closed connection cancels anyway.
    pub fn cancel(&self, operation_id: &str, reason: &str) {
        tracing::debug!(plugin = %self.shared().opts.name, pid = self.shared().opts.pid, operation_id, reason, "cancelling plugin operation");
        let params =
            CancelParams { operation_id: operation_id.to_owned(), reason: Some(reason.to_owned()) };
        let _ = self.notify::<Cancel>(&params);
    }

    /// Resolves when the connection is closed (plugin stdout EOF, read error, or [`Client::close`]).
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shared().closed.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.shared().lock().closed
    }

    /// Resolves when the plugin polluted stdout past [`GARBAGE_PER_MINUTE`].
    pub fn violated(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shared().violated.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    /// Non-protocol stdout lines seen so far.
    pub fn garbage_lines(&self) -> u64 {
        self.shared().garbage_total.load(Ordering::Relaxed)
    }

    /// Whether the plugin wrote more than [`GARBAGE_PER_MINUTE`] non-protocol lines in a minute.
    pub fn protocol_violation(&self) -> bool {
        *self.shared().violated.borrow()
    }

    /// Closes the plugin's stdin after the queued lines are written (the plugin then drains and
    /// exits). Calls still waiting keep waiting for their answers.
    pub fn close_input(&self) {
        self.shared().lock().sender = None;
    }

    /// Marks the connection closed: every waiting call fails with [`CallError::Closed`] and new
    /// calls fail at once. Used when the process has exited.
    pub fn close(&self) {
        self.shared().close();
    }

    async fn call_inner<P: Serialize>(
        &self,
        method: &str,
        params: &P,
        opts: CallOptions,
    ) -> Result<(Box<RawValue>, Option<String>), CallError> {
        let shared = self.shared();
        let start = Instant::now();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let line = request_line(&RequestId::Num(id), method, params);
        let (tx, mut rx) = oneshot::channel();
        let guard = CallGuard { shared, id, operation_id: opts.operation_id.clone() };
        {
            let mut st = shared.lock();
            if let Some(op) = &opts.operation_id {
                let entry = st.operations.entry(op.clone()).or_default();
                entry.calls += 1;
                if let Some(tx) = &opts.progress {
                    entry.progress.push(Subscriber {
                        call: id,
                        tx: tx.clone(),
                        forwarded: 0,
                        warned: false,
                    });
                }
            }
            if st.closed {
                drop(st);
                return Err(shared.closed_error(guard.instance_id()));
            }
            st.pending.insert(id, tx);
            let sent = st.sender.as_ref().is_some_and(|s| s.send(line));
            if !sent {
                drop(st);
                return Err(shared.closed_error(guard.instance_id()));
            }
        }
        let timeout_error = |guard: &CallGuard<'_>| CallError::Timeout {
            method: method.to_owned(),
            plugin: shared.opts.name.clone(),
            pid: shared.opts.pid,
            elapsed: start.elapsed(),
            instance_id: guard.instance_id(),
        };
        let outcome = match tokio::time::timeout(opts.timeout, &mut rx).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let Some(op) = &opts.operation_id else { return Err(timeout_error(&guard)) };
                tracing::warn!(plugin = %shared.opts.name, pid = shared.opts.pid, method, operation_id = %op, "plugin call timed out; sending $/cancel");
                self.cancel(op, "host deadline passed");
                match tokio::time::timeout(shared.opts.cancel_grace, &mut rx).await {
                    Ok(outcome) => outcome,
                    Err(_) => return Err(timeout_error(&guard)),
                }
            }
        };
        match outcome {
            Ok(Ok(raw)) => Ok((raw, guard.instance_id())),
            Ok(Err(rpc)) => Err(CallError::Rpc(rpc)),
            Err(_) => Err(shared.closed_error(guard.instance_id())),
        }
    }
}

/// A result that does not decode. For a create it may still name a VM: the result's
/// `instanceId` when readable, else the one announced by `$/progress`.
fn decode_error(
    method: &str,
    raw: &RawValue,
    e: &serde_json::Error,
    announced: Option<String>,
) -> CallError {
    let from_result = serde_json::from_str::<serde_json::Value>(raw.get())
        .ok()
        .and_then(|v| v.get("instanceId")?.as_str().map(str::to_owned));
    CallError::Decode {
        method: method.to_owned(),
        message: e.to_string(),
        instance_id: from_result.or(announced),
    }
}

/// Removes a call's bookkeeping however the call ends (including when its future is dropped).
struct CallGuard<'a> {
    shared: &'a Shared,
    id: i64,
    operation_id: Option<String>,
}

impl CallGuard<'_> {
    fn instance_id(&self) -> Option<String> {
        let op = self.operation_id.as_ref()?;
        self.shared.lock().operations.get(op)?.instance_id.clone()
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.pending.remove(&self.id);
        if let Some(op) = &self.operation_id
            && let Some(entry) = st.operations.get_mut(op)
        {
            entry.calls -= 1;
            entry.progress.retain(|s| s.call != self.id);
            if entry.calls == 0 {
                st.operations.remove(op);
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, line: Vec<u8>) -> bool {
        self.lock().sender.as_ref().is_some_and(|s| s.send(line))
    }

    fn closed_error(&self, instance_id: Option<String>) -> CallError {
        CallError::Closed { plugin: self.opts.name.clone(), instance_id }
    }

    fn close(&self) {
        let pending = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.pending)
        };
        // Dropping the senders fails the waiting calls with `Closed`.
        drop(pending);
        self.closed.send_replace(true);
    }
}
