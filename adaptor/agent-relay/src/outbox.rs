//! The frames going back to one downstream connection, bounded by bytes. Answers are pushed by
//! the shared upstream reader, which serves every connection and so must never wait on one slow
//! client: a client that stops reading while its answers pile up past the budget is marked
//! overloaded and disconnected, instead of growing the relay's memory without limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, watch};

use crate::frame::Frame;

/// Bytes of answers one downstream connection may have waiting to be written.
pub const DOWNSTREAM_BUDGET: usize = 16 << 20;

/// The sending side, cloned into every route that answers this connection.
#[derive(Debug, Clone)]
pub(crate) struct DownTx {
    tx: mpsc::UnboundedSender<Frame>,
    queued: Arc<AtomicUsize>,
    budget: usize,
    overloaded: Arc<watch::Sender<bool>>,
}

/// The writer's side.
#[derive(Debug)]
pub(crate) struct DownRx {
    rx: mpsc::UnboundedReceiver<Frame>,
    queued: Arc<AtomicUsize>,
}

/// A queue holding at most `budget` bytes (a single frame is always taken into an empty one),
/// and the signal that a send found it full.
pub(crate) fn channel(budget: usize) -> (DownTx, DownRx, watch::Receiver<bool>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let (overloaded, signal) = watch::channel(false);
    let down = DownTx { tx, queued: queued.clone(), budget, overloaded: Arc::new(overloaded) };
    (down, DownRx { rx, queued }, signal)
}

impl DownTx {
    /// Queues `frame`; gives it back when the connection is gone or over its budget (then the
    /// overload signal fires and the connection is closed).
    pub(crate) fn send(&self, frame: Frame) -> Result<(), Frame> {
        let n = frame.as_bytes().len();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before + n > self.budget {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            self.overloaded.send_replace(true);
            return Err(frame);
        }
        self.tx.send(frame).map_err(|e| {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            e.0
        })
    }
}

impl DownRx {
    /// The next frame; its bytes stop counting once the caller has written it ([`DownRx::done`]).
    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        self.rx.recv().await
    }

    /// The next frame if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Frame> {
        self.rx.try_recv().ok()
    }

    /// `frame` has been written.
    pub(crate) fn done(&self, frame: &Frame) {
        self.queued.fetch_sub(frame.as_bytes().len(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::TYPE_RESPONSE;

    #[test]
    fn a_full_queue_refuses_and_signals_and_frees_as_frames_are_written() {
        let (tx, mut rx, signal) = channel(100);
        let frame = || Frame::new(1, TYPE_RESPONSE, 0, &[0u8; 40]);
        assert!(tx.send(frame()).is_ok());
        assert!(tx.send(frame()).is_ok());
        assert!(tx.send(frame()).is_err(), "150 bytes queued would pass the budget of 100");
        assert!(*signal.borrow());
        let written = rx.try_recv().unwrap();
        rx.done(&written);
        assert!(tx.send(frame()).is_ok(), "room again after a write");
        let (tx, _rx, _) = channel(10);
        assert!(tx.send(frame()).is_ok(), "an empty queue takes one frame of any size");
    }
}
