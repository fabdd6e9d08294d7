//! The serve loop of one connection: reads NDJSON lines, answers protocol errors itself, hands
//! requests to [`dispatch`](crate::dispatch) (each runs in its own task), applies notifications
//! in arrival order, and drains on EOF or shutdown. Generic over `AsyncRead`/`AsyncWrite`, so
//! tests drive it over `tokio::io::duplex`.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caa_plugin_proto::envelope::error_line;
use caa_plugin_proto::method::{Cancel, SetLogLevel};
use caa_plugin_proto::{
    CancelParams, Describe, ErrorCode, Incoming, LogLevel, Notification, PROTOCOL_VERSIONS,
    RpcError, SetLogLevelParams,
};
use caa_plugin_wire::{Frame, LineReader, spawn_writer};
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::inflight::InFlight;
use crate::outbox::Outbox;
use crate::parent::ParentWatch;
use crate::provider::Provider;
use crate::replay::ReplayCache;

/// Looks an environment variable up.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Applies a log level.
pub type LogLevelHook = Arc<dyn Fn(LogLevel) + Send + Sync>;

/// Tuning of [`serve`].
#[derive(Clone)]
pub struct ServeOptions {
    /// Longest accepted line in bytes; longer lines get -32600.
    pub max_line_bytes: usize,
    /// How long a handler may keep running after `$/cancel` before the SDK answers -32800.
    pub cancel_grace: Duration,
    /// How long a handler may run past its deadline before the SDK answers `deadlineExceeded`.
    pub deadline_grace: Duration,
    /// How long in-flight work may run normally after a shutdown began (SIGTERM, parent gone).
    /// Then its handlers are cancelled, and after `cancel_grace` more the SDK answers for those
    /// still running.
    pub drain_timeout: Duration,
    /// Environment lookup for config options.
    pub env: EnvLookup,
    /// Deadline of calls whose params carry none (or `deadlineMs: 0`).
    pub default_deadline: Duration,
    /// Watch the parent process (and `initialize.hostPid`) every 2 s and drain when it is gone.
    pub watch_parent: bool,
    /// Applies `initialize.logLevel` and `$/setLogLevel`.
    pub on_log_level: Option<LogLevelHook>,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            max_line_bytes: caa_plugin_proto::DEFAULT_MAX_LINE_BYTES,
            cancel_grace: Duration::from_secs(5),
            deadline_grace: Duration::from_secs(5),
            // 5 s to finish normally plus `cancel_grace` (5 s) to roll back: a plugin answers
            // everything and exits within the host's 10 s SIGTERM window.
            drain_timeout: Duration::from_secs(5),
            env: Arc::new(|name| std::env::var(name).ok()),
            default_deadline: Duration::from_secs(60),
            watch_parent: false,
            on_log_level: None,
        }
    }
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("max_line_bytes", &self.max_line_bytes)
            .field("cancel_grace", &self.cancel_grace)
            .field("deadline_grace", &self.deadline_grace)
            .field("drain_timeout", &self.drain_timeout)
            .field("default_deadline", &self.default_deadline)
            .field("watch_parent", &self.watch_parent)
            .finish_non_exhaustive()
    }
}

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeOutcome {
    /// The input ended and in-flight work was answered.
    Eof,
    /// The shutdown future resolved and in-flight work was drained.
    Shutdown,
    /// The parent process went away and in-flight work was drained.
    ParentGone,
    /// The output could not be written (the host is gone); in-flight handlers were cancelled
    /// at once so that they could roll back.
    WriteError,
}

/// Failures of the SDK itself.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// Reading the protocol stream failed.
    #[error("reading the protocol stream")]
    Read(#[source] io::Error),
    /// Setting up the protocol file descriptors failed.
    #[error("setting up stdio for the protocol")]
    Stdio(#[source] io::Error),
    /// Starting the async runtime failed.
    #[error("starting the async runtime")]
    Runtime(#[source] io::Error),
}

/// Where the connection is in its lifecycle.
#[derive(Debug)]
pub(crate) enum Phase<P> {
    New,
    Initializing,
    Ready(Arc<P>),
}

/// Everything shared by the read loop and the request tasks.
#[derive(Debug)]
pub(crate) struct Conn<P> {
    pub(crate) opts: ServeOptions,
    pub(crate) describe: Describe,
    pub(crate) outbox: Outbox,
    pub(crate) inflight: Arc<InFlight>,
    pub(crate) replay: Arc<ReplayCache>,
    pub(crate) phase: Mutex<Phase<P>>,
    pub(crate) torn_down: AtomicBool,
    /// Cancelled when the drain begins: new requests are refused from then on.
    pub(crate) drain: CancellationToken,
    /// Cancelled when the drain runs out of time (or the host is gone): every `Ctx` sees it as
    /// a cancel, and the supervisors answer for handlers still running after `cancel_grace`.
    pub(crate) shutdown: CancellationToken,
    /// `initialize.hostCapabilities.progress`; true when the host did not say.
    pub(crate) send_progress: AtomicBool,
    pub(crate) parent: ParentWatch,
    /// The running `initialize`; the read loop reads no further line until it has answered, so
    /// requests pipelined after `initialize` find the provider ready.
    pub(crate) pending_init: Mutex<Option<JoinHandle<()>>>,
}

/// Serves one connection until EOF (drain: finish in-flight work, write responses, return) or
/// until `shutdown` resolves (then reject new requests with -32600, give in-flight work
/// `drain_timeout` to finish normally, then cancel it and, after `cancel_grace`, answer what is
/// left: -32800, or -32603 for a create that announced no instance). A failed write is treated
/// like `shutdown`, except that handlers are cancelled at once: nobody reads their results.
pub async fn serve<P, R, W>(
    reader: R,
    writer: W,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ServeOutcome, SdkError>
where
    P: Provider,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (sender, mut writer_task) = spawn_writer(writer);
    let max_line_bytes = opts.max_line_bytes;
    let watch_parent = opts.watch_parent;
    let conn = Arc::new(Conn::<P> {
        describe: describe_filled::<P>(),
        outbox: Outbox::new(sender),
        inflight: Arc::default(),
        replay: Arc::default(),
        phase: Mutex::new(Phase::New),
        torn_down: AtomicBool::new(false),
        drain: CancellationToken::new(),
        shutdown: CancellationToken::new(),
        send_progress: AtomicBool::new(true),
        parent: ParentWatch::new(),
        pending_init: Mutex::new(None),
        opts,
    });
    let mut reader = LineReader::new(reader, max_line_bytes);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut parent_tick = tokio::time::interval(Duration::from_secs(2));
    let mut reading = true;
    let mut draining: Option<ServeOutcome> = None;
    // When the drain runs out of time and handlers get cancelled.
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut writer_failed = false;
    let mut read_error = None;
    let mut pending_init: Option<JoinHandle<()>> = None;

    while reading || !tasks.is_empty() || pending_init.is_some() {
        tokio::select! {
            frame = reader.next_frame(), if reading && pending_init.is_none() => match frame {
                Ok(Some(Frame::Line(line))) => {
                    conn.handle_line(&line, &mut tasks);
                    pending_init = conn.pending_init.lock().unwrap_or_else(|e| e.into_inner()).take();
                }
                Ok(Some(Frame::TooLong { len })) => {
                    tracing::warn!(len, "dropping an oversized line");
                    let error = RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("line too long: {len} bytes, the limit is {max_line_bytes}"),
                    );
                    conn.outbox.send(error_line(None, &error));
                }
                Ok(None) => {
                    tracing::debug!(in_flight = tasks.len(), "input closed, draining");
                    reading = false;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the protocol stream failed");
                    read_error = Some(e);
                    reading = false;
                }
            },
            () = &mut shutdown, if draining.is_none() => {
                drain_deadline = Some(conn.begin_drain(&mut draining, ServeOutcome::Shutdown));
            }
            _ = parent_tick.tick(), if watch_parent && draining.is_none() => {
                if conn.parent.gone() {
                    tracing::warn!("parent process is gone");
                    drain_deadline = Some(conn.begin_drain(&mut draining, ServeOutcome::ParentGone));
                }
            }
            () = async { tokio::time::sleep_until(drain_deadline.expect("guarded")).await },
                if drain_deadline.is_some() && !conn.shutdown.is_cancelled() =>
            {
                tracing::warn!(in_flight = tasks.len(), "drain timeout: cancelling in-flight requests");
                conn.shutdown.cancel();
            }
            joined = async { pending_init.as_mut().expect("guarded").await }, if pending_init.is_some() => {
                pending_init = None;
                if let Err(e) = joined {
                    tracing::error!(error = %e, "initialize task failed");
                }
            }
            Some(joined) = tasks.join_next() => {
                if let Err(e) = joined {
                    tracing::error!(error = %e, "request supervisor failed");
                }
            }
            written = &mut writer_task, if !writer_failed => {
                tracing::error!(result = ?written.map(|r| r.map_err(|e| e.to_string())), "protocol writer stopped: the host is gone");
                writer_failed = true;
                // As on SIGTERM, but nobody will read a result: cancel the handlers now so that
                // they roll back; their supervisors end within `cancel_grace`.
                reading = false;
                if draining.is_none() {
                    conn.begin_drain(&mut draining, ServeOutcome::WriteError);
                }
                conn.shutdown.cancel();
            }
        }
        if (draining.is_some() || writer_failed) && tasks.is_empty() && pending_init.is_none() {
            break;
        }
    }

    if writer_failed {
        // The writer task has ended; there is nothing left to flush.
        conn.outbox.close();
        return Ok(ServeOutcome::WriteError);
    }
    conn.outbox.close();
    drop(conn);
    let flushed = tokio::time::timeout(Duration::from_secs(10), writer_task).await;
    let write_ok = matches!(flushed, Ok(Ok(Ok(()))));
    if let Some(e) = read_error {
        return Err(SdkError::Read(e));
    }
    if !write_ok {
        return Ok(ServeOutcome::WriteError);
    }
    Ok(draining.unwrap_or(ServeOutcome::Eof))
}

/// `P::describe()` with the SDK's defaults filled in (`protocolVersions`, `plugin.sdk`).
pub fn describe_filled<P: Provider>() -> Describe {
    let mut describe = P::describe();
    if describe.protocol_versions.is_empty() {
        describe.protocol_versions = PROTOCOL_VERSIONS.to_vec();
    }
    if describe.plugin.sdk.is_none() {
        describe.plugin.sdk =
            Some(concat!("caa-plugin-sdk-rust/", env!("CARGO_PKG_VERSION")).to_owned());
    }
    describe
}

impl<P: Provider> Conn<P> {
    /// Refuses new requests from now on; returns when in-flight handlers get cancelled.
    fn begin_drain(
        &self,
        draining: &mut Option<ServeOutcome>,
        why: ServeOutcome,
    ) -> tokio::time::Instant {
        tracing::info!(reason = ?why, "shutting down: draining in-flight requests");
        *draining = Some(why);
        self.drain.cancel();
        tokio::time::Instant::now() + self.opts.drain_timeout
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    pub(crate) fn is_torn_down(&self) -> bool {
        self.torn_down.load(Ordering::SeqCst)
    }

    /// Classifies one line and answers or routes it.
    fn handle_line(self: &Arc<Self>, line: &[u8], tasks: &mut JoinSet<()>) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match Incoming::parse(line) {
            Err(e) => {
                tracing::warn!(error = %e, "dropping a line that is not JSON");
                let error = RpcError::new(ErrorCode::ParseError, format!("parse error: {e}"));
                self.outbox.send(error_line(None, &error));
            }
            Ok(Incoming::Invalid { id, error }) => {
                tracing::warn!(error = %error.message, "dropping an invalid message");
                self.outbox.send(error_line(id.as_ref(), &error));
            }
            Ok(Incoming::Result { id, .. }) | Ok(Incoming::Error { id: Some(id), .. }) => {
                tracing::debug!(%id, "ignoring a response: this plugin sends no requests");
            }
            Ok(Incoming::Error { id: None, error }) => {
                tracing::warn!(code = error.code, message = %error.message, "the host reported a protocol error");
            }
            Ok(Incoming::Notification { method, params }) => {
                self.handle_notification(method, params);
            }
            Ok(Incoming::Request { id, method, params }) => {
                self.handle_request(id, method, params, tasks);
            }
        }
    }

    /// Applies a notification; runs in the read loop, so notifications keep their order.
    fn handle_notification(&self, method: &str, params: Option<&RawValue>) {
        if !matches!(*self.phase.lock().unwrap_or_else(|e| e.into_inner()), Phase::Ready(_)) {
            tracing::debug!(method, "dropping a notification that arrived before initialize");
            return;
        }
        let raw = params.map_or("{}", RawValue::get);
        match method {
            Cancel::NAME => match serde_json::from_str::<CancelParams>(raw) {
                Ok(p) => {
                    if self.inflight.cancel(&p.operation_id) {
                        tracing::info!(operation_id = %p.operation_id, reason = ?p.reason, "operation cancelled");
                    } else {
                        tracing::debug!(operation_id = %p.operation_id, "cancel for an operation that is not running");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ignoring $/cancel with invalid params"),
            },
            SetLogLevel::NAME => match serde_json::from_str::<SetLogLevelParams>(raw) {
                Ok(p) => self.set_log_level(p.level),
                Err(e) => tracing::warn!(error = %e, "ignoring $/setLogLevel with invalid params"),
            },
            other => tracing::debug!(method = other, "ignoring an unknown notification"),
        }
    }

    pub(crate) fn set_log_level(&self, level: LogLevel) {
        if let Some(apply) = &self.opts.on_log_level {
            apply(level);
        }
    }
}
