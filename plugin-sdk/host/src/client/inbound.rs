//! Routing of everything a plugin writes to its stdout: responses to their waiting calls,
//! `$/progress` to the operation's subscribers, and pollution (including requests, which a
//! plugin may not send, and progress for no running operation) to the log and the violation
//! counter. Blank lines are ignored.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use caa_plugin_proto::method::Progress;
use caa_plugin_proto::{ErrorCode, Incoming, Notification, ProgressParams, RequestId, RpcError};
use caa_plugin_wire::{Frame, LineReader};
use serde_json::value::RawValue;
use tokio::io::AsyncRead;

use super::{GARBAGE_EXCERPT, GARBAGE_PER_MINUTE, PROGRESS_PER_CALL, Reply, Shared};

impl Shared {
    fn handle_line(&self, bytes: &[u8]) {
        let (name, pid) = (&self.opts.name, self.opts.pid);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match Incoming::parse(bytes) {
            Ok(Incoming::Result { id, result }) => self.answer(id, Ok(result.to_owned())),
            Ok(Incoming::Error { id: Some(id), error }) => self.answer(id, Err(error)),
            Ok(Incoming::Error { id: None, error }) => {
                tracing::warn!(plugin = %name, pid, error = %error, "plugin reported an error for a line it could not read");
            }
            Ok(Incoming::Notification { method, params }) => self.notification(method, params),
            Ok(Incoming::Request { id, method, .. }) => {
                // Not answered: replies would queue without bound behind a flooding plugin.
                tracing::warn!(plugin = %name, pid, %id, method, "plugin sent a request; plugins may only send notifications");
                self.count_garbage();
            }
            Ok(Incoming::Invalid { id, error }) => {
                tracing::warn!(plugin = %name, pid, error = %error, "plugin wrote an invalid JSON-RPC message to stdout");
                self.count_garbage();
                // A malformed answer to a waiting call still ends that call, rather than leaving
                // it to time out.
                if let Some(RequestId::Num(n)) = id
                    && let Some(tx) = self.lock().pending.remove(&n)
                {
                    let message = format!("plugin sent an invalid response: {}", error.message);
                    let _ = tx.send(Err(RpcError::new(ErrorCode::InternalError, message)));
                }
            }
            Err(_) => {
                let text = String::from_utf8_lossy(bytes);
                let excerpt: String = text.chars().take(GARBAGE_EXCERPT).collect();
                tracing::warn!(plugin = %name, pid, output = %excerpt, "plugin wrote a non-protocol line to stdout");
                self.count_garbage();
            }
        }
    }

    fn answer(&self, id: RequestId, reply: Reply) {
        let waiter = match id {
            RequestId::Num(n) => self.lock().pending.remove(&n),
            RequestId::Str(_) => None,
        };
        match waiter {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => {
                tracing::warn!(plugin = %self.opts.name, pid = self.opts.pid, %id, "response with an unknown id dropped");
            }
        }
    }

    fn notification(&self, method: &str, params: Option<&RawValue>) {
        let (name, pid) = (&self.opts.name, self.opts.pid);
        if method != Progress::NAME {
            tracing::debug!(plugin = %name, pid, method, "plugin notification ignored");
            return;
        }
        let progress: ProgressParams = match params.map(|p| serde_json::from_str(p.get())) {
            Some(Ok(p)) => p,
            _ => {
                tracing::warn!(plugin = %name, pid, "malformed $/progress ignored");
                self.count_garbage();
                return;
            }
        };
        tracing::debug!(
            plugin = %name, pid, operation_id = %progress.operation_id, stage = %progress.stage,
            instance_id = progress.instance_id.as_deref(), message = progress.message.as_deref(),
            "plugin progress"
        );
        let (mut capped, mut forced) = (false, false);
        {
            let mut st = self.lock();
            let Some(op) = st.operations.get_mut(&progress.operation_id) else {
                drop(st);
                tracing::warn!(plugin = %name, pid, operation_id = %progress.operation_id, "$/progress for no running operation");
                self.count_garbage();
                return;
            };
            // The id is recorded before anything may be dropped: create cleanup relies on it.
            let new_id = progress.instance_id.is_some() && progress.instance_id != op.instance_id;
            if new_id {
                op.instance_id.clone_from(&progress.instance_id);
            }
            for sub in &mut op.progress {
                if sub.forwarded >= PROGRESS_PER_CALL {
                    if !new_id {
                        capped |= !std::mem::replace(&mut sub.warned, true);
                        continue;
                    }
                    forced = true;
                }
                sub.forwarded += 1;
                let _ = sub.tx.send(progress.clone());
            }
        }
        if capped {
            tracing::warn!(plugin = %name, pid, operation_id = %progress.operation_id, "more than {PROGRESS_PER_CALL} $/progress for one call; dropping the rest");
        }
        if forced {
            self.count_garbage();
        }
    }

    fn count_garbage(&self) {
        self.garbage_total.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let over = {
            let mut st = self.lock();
            let window = &mut st.garbage_window;
            window.push_back(now);
            while window.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60)) {
                window.pop_front();
            }
            while window.len() > GARBAGE_PER_MINUTE + 1 {
                window.pop_front();
            }
            window.len() > GARBAGE_PER_MINUTE
        };
        if over && !*self.violated.borrow() {
            tracing::error!(
                plugin = %self.opts.name, pid = self.opts.pid,
                "plugin wrote more than {GARBAGE_PER_MINUTE} non-protocol lines to stdout within a minute: protocol violation"
            );
            self.violated.send_replace(true);
        }
    }
}

pub(super) async fn read_loop<R: AsyncRead + Unpin>(shared: Arc<Shared>, reader: R) {
    let mut lines = LineReader::new(reader, shared.opts.max_line_bytes);
    loop {
        match lines.next_frame().await {
            Ok(Some(Frame::Line(bytes))) => shared.handle_line(&bytes),
            Ok(Some(Frame::TooLong { len })) => {
                tracing::warn!(plugin = %shared.opts.name, pid = shared.opts.pid, len, "plugin stdout line over the size limit skipped");
                shared.count_garbage();
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(plugin = %shared.opts.name, pid = shared.opts.pid, error = %e, "plugin stdout read failed");
                break;
            }
        }
    }
    shared.close();
}
