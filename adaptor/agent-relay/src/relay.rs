//! [`Relay`]: serves downstream ttrpc connections (the shim on the proxy, the proxy on the
//! forwarder) by relaying their frames over the shared [`Upstream`]. Requests are checked only
//! as far as routing needs (odd stream id, envelope syntax, size) and handed to the
//! [`Interceptor`]; answers come back with the caller's own stream id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::envelope;
use crate::frame::{
    self, FLAG_REMOTE_CLOSED, FLAG_REMOTE_OPEN, Frame, FrameError, MAX_DATA_LEN, TYPE_DATA,
    TYPE_REQUEST,
};
use crate::intercept::{Call, Interceptor, Verdict, code};
use crate::outbox::{self, DOWNSTREAM_BUDGET, DownRx, DownTx};
use crate::upstream::{Conn, Upstream};

/// Client-streaming calls of one downstream connection: caller id → (connection, upstream id).
type Streams = Arc<Mutex<HashMap<u32, (Arc<Conn>, u32)>>>;

/// Relays downstream connections to one upstream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Relay {
    upstream: Upstream,
    interceptor: Arc<dyn Interceptor>,
    /// Longest a call waits for the upstream to come back.
    call_wait: Duration,
    shutdown: watch::Sender<bool>,
}

impl Relay {
    /// A relay over `upstream`; a call arriving while the upstream is down waits up to
    /// `call_wait` (or its own deadline, if sooner) for a connection.
    pub fn new(
        upstream: Upstream,
        interceptor: Arc<dyn Interceptor>,
        call_wait: Duration,
    ) -> Relay {
        Relay { upstream, interceptor, call_wait, shutdown: watch::channel(false).0 }
    }

    /// The upstream.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Ends every downstream connection and closes the upstream.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.upstream.close();
    }

    /// A receiver that turns `true` when the relay shuts down (for accept loops).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether [`Relay::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Serves one downstream connection until it closes or the relay shuts down.
    pub async fn serve_connection<S>(&self, io: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let mut stop = self.shutdown.subscribe();
        if *stop.borrow_and_update() {
            return;
        }
        let (rd, wr) = tokio::io::split(io);
        let (tx, rx, mut overloaded) = outbox::channel(DOWNSTREAM_BUDGET);
        let writer = tokio::spawn(write_loop(wr, rx));
        let streams: Streams = Arc::default();
        let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, rd);
        loop {
            let next = tokio::select! {
                next = frame::read_frame(&mut rd) => next,
                _ = stop.changed() => break,
                _ = overloaded.wait_for(|over| *over) => {
                    tracing::warn!(budget = DOWNSTREAM_BUDGET,
                        "downstream stopped reading its answers; closing the connection");
                    writer.abort();
                    return;
                }
            };
            match next {
                Ok(Some(f)) => self.on_frame(f, &tx, &streams).await,
                Ok(None) => break,
                Err(FrameError::Oversized { stream_id, kind: TYPE_REQUEST, len }) => {
                    let msg = format!(
                        "message length {len} exceed maximum message size of {MAX_DATA_LEN}"
                    );
                    let _ =
                        tx.send(Frame::error_response(stream_id, code::RESOURCE_EXHAUSTED, &msg));
                }
                Err(FrameError::Oversized { .. }) => {}
                Err(FrameError::Io(e)) => {
                    tracing::debug!(error = %e, "downstream connection failed");
                    break;
                }
            }
        }
        drop(tx);
        if *stop.borrow() {
            writer.abort();
        } else {
            // Let answers already queued go out before the write half closes.
            let _ = writer.await;
        }
    }

    async fn on_frame(&self, frame: Frame, tx: &DownTx, streams: &Streams) {
        let id = frame.stream_id();
        match frame.kind() {
            TYPE_REQUEST if id.is_multiple_of(2) => {
                let _ = tx.send(Frame::error_response(
                    id,
                    code::INVALID_ARGUMENT,
                    "stream id must be odd",
                ));
            }
            TYPE_REQUEST => self.on_request(frame, tx, streams).await,
            TYPE_DATA => {
                let route = {
                    let mut map = streams.lock().unwrap_or_else(PoisonError::into_inner);
                    if frame.flags() & FLAG_REMOTE_CLOSED != 0 {
                        map.remove(&id)
                    } else {
                        map.get(&id).cloned()
                    }
                };
                match route {
                    Some((conn, up_id)) => {
                        if conn.send_data(frame, up_id).await.is_err() {
                            streams.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                        }
                    }
                    None => tracing::debug!(stream_id = id, "data for a stream that is not open"),
                }
            }
            kind => tracing::debug!(kind, "ignoring a frame type from downstream"),
        }
    }

    async fn on_request(&self, frame: Frame, tx: &DownTx, streams: &Streams) {
        let id = frame.stream_id();
        let flags = frame.flags();
        let reject = |code: i32, message: &str| {
            let _ = tx.send(Frame::error_response(id, code, message));
        };
        // Decide on the borrowed envelope, then move the frame on: a forwarded frame is never
        // copied (agent payloads can be MiBs, e.g. CopyFile).
        let decision = match envelope::parse_request(frame.data()) {
            Err(e) => Err((code::INVALID_ARGUMENT, format!("unmarshal request error: {e}"))),
            Ok(req) => {
                let call = Call { service: req.service, method: req.method, payload: req.payload };
                match self.interceptor.intercept(&call) {
                    Verdict::Forward => Ok((None, req.timeout_nano)),
                    Verdict::Reject { code, message } => Err((code, message)),
                    Verdict::Rewrite(payload) => {
                        match envelope::replace_payload(frame.data(), &payload) {
                            Ok(data) if data.len() > MAX_DATA_LEN => Err((
                                code::RESOURCE_EXHAUSTED,
                                format!(
                                    "rewritten request of {} bytes exceeds the maximum message size of {MAX_DATA_LEN}",
                                    data.len()
                                ),
                            )),
                            Ok(data) => Ok((Some(data), req.timeout_nano)),
                            Err(e) => Err((code::INTERNAL, e.to_string())),
                        }
                    }
                }
            }
        };
        let (frame, timeout_nano) = match decision {
            Err((code, message)) => return reject(code, &message),
            Ok((None, timeout)) => (frame, timeout),
            Ok((Some(data), timeout)) => (Frame::new(id, TYPE_REQUEST, flags, &data), timeout),
        };
        let streaming = flags & FLAG_REMOTE_OPEN != 0;
        let mut frame = frame;
        if let Some(conn) = self.upstream.live() {
            match send_tracked(conn, frame, tx, id, streaming.then_some(streams)).await {
                Ok(()) => return,
                Err((e, back)) => {
                    tracing::debug!(error = %e.0, "upstream went away; waiting for a new one");
                    frame = back;
                }
            }
        }
        // No live upstream: wait for one in a task of its own, so this connection's other
        // calls are not held up behind the dial.
        let wait = match u64::try_from(timeout_nano) {
            Ok(ns) if ns > 0 => Duration::from_nanos(ns).min(self.call_wait),
            _ => self.call_wait,
        };
        let upstream = self.upstream.clone();
        let (tx, streams) = (tx.clone(), streams.clone());
        tokio::spawn(async move {
            let sent = match upstream.conn(Instant::now() + wait).await {
                Ok(conn) => {
                    match send_tracked(conn, frame, &tx, id, streaming.then_some(&streams)).await {
                        Ok(()) => Ok(()),
                        Err((e, _)) => Err(e.0),
                    }
                }
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                let msg = format!("agent connection unavailable: {e}");
                let _ = tx.send(Frame::error_response(id, code::UNAVAILABLE, &msg));
            }
        });
    }
}

/// Sends a request upstream; a client-streaming call is remembered so its Data frames follow.
async fn send_tracked(
    conn: Arc<Conn>,
    frame: Frame,
    tx: &DownTx,
    id: u32,
    streams: Option<&Streams>,
) -> Result<(), (crate::upstream::SendError, Frame)> {
    let up_id = conn.send_request(frame, tx.clone(), id).await?;
    if let Some(streams) = streams {
        streams.lock().unwrap_or_else(PoisonError::into_inner).insert(id, (conn, up_id));
    }
    Ok(())
}

async fn write_loop<W: AsyncWrite + Unpin>(wr: W, mut rx: DownRx) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    let result: std::io::Result<()> = async {
        while let Some(f) = rx.recv().await {
            w.write_all(f.as_bytes()).await?;
            rx.done(&f);
            while let Some(f) = rx.try_recv() {
                w.write_all(f.as_bytes()).await?;
                rx.done(&f);
            }
            w.flush().await?;
        }
        w.shutdown().await
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "downstream write failed");
    }
}
