//! The connection's send side, shared by the serve loop, the request supervisors and every
//! [`Ctx`](crate::Ctx). `serve` closes it before it waits for the writer, so a detached handler
//! that still holds a `Ctx` cannot keep the writer (and the process) alive.

use std::sync::{Arc, RwLock};

use caa_plugin_wire::LineSender;

/// A closable handle on the single writer task.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outbox {
    sender: Arc<RwLock<Option<LineSender>>>,
}

impl Outbox {
    pub(crate) fn new(sender: LineSender) -> Outbox {
        Outbox { sender: Arc::new(RwLock::new(Some(sender))) }
    }

    /// Queues one line; false when the outbox is closed or the writer stopped.
    pub(crate) fn send(&self, line: Vec<u8>) -> bool {
        let guard = self.sender.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().is_some_and(|s| s.send(line))
    }

    /// Drops the sender; the writer finishes what is queued and ends.
    pub(crate) fn close(&self) {
        self.sender.write().unwrap_or_else(|e| e.into_inner()).take();
    }
}
