//! Routing of everything a plugin writes to its stdout: responses to their waiting calls,
//! `$/progress` to the operation's subscriber, and pollution to the log and the violation counter.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use caa_plugin_proto::envelope::error_line;
use caa_plugin_proto::method::Progress;
use caa_plugin_proto::{ErrorCode, Incoming, Notification, ProgressParams, RequestId, RpcError};
use caa_plugin_wire::{Frame, LineReader};
use serde_json::value::RawValue;
use tokio::io::AsyncRead;

use super::{GARBAGE_EXCERPT, GARBAGE_PER_MINUTE, Reply, Shared};

impl Shared {
    fn handle_line(&self, bytes: &[u8]) {
        let (name, pid) = (&self.opts.name, self.opts.pid);
        match Incoming::parse(bytes) {
            Ok(Incoming::Result { id, result }) => self.answer(id, Ok(result.to_owned())),
            Ok(Incoming::Error { id: Some(id), error }) => self.answer(id, Err(error)),
            Ok(Incoming::Error { id: None, error }) => {
                tracing::warn!(plugin = %name, pid, error = %error, "plugin reported an error for a line it could not read");
            }
            Ok(Incoming::Notification { method, params }) => self.notification(method, params),
            Ok(Incoming::Request { id, method, .. }) => {
                tracing::warn!(plugin = %name, pid, method, "plugin sent a request; plugins may only send notifications");
                let err = RpcError::new(ErrorCode::MethodNotFound, "the host accepts no requests");
                self.send(error_line(Some(&id), &err));
            }
            Ok(Incoming::Invalid { error, .. }) => {
                tracing::warn!(plugin = %name, pid, error = %error, "plugin wrote an invalid JSON-RPC message to stdout");
                self.count_garbage();
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
                tracing::debug!(plugin = %name, pid, "malformed $/progress ignored");
                return;
            }
        };
        tracing::debug!(
            plugin = %name, pid, operation_id = %progress.operation_id, stage = %progress.stage,
            instance_id = progress.instance_id.as_deref(), message = progress.message.as_deref(),
            "plugin progress"
        );
        let mut st = self.lock();
        let Some(op) = st.operations.get_mut(&progress.operation_id) else { return };
        if let Some(id) = &progress.instance_id {
            op.instance_id = Some(id.clone());
        }
        if let Some(tx) = &op.progress {
            let _ = tx.send(progress);
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
