//! The relay's one connection to the next hop (the forwarder for the proxy, the agent socket
//! for the forwarder), shared by every downstream connection. Each call gets a fresh odd,
//! increasing stream id on it (Go ttrpc ≥ 1.2 rejects anything else); the answer is routed back
//! to the caller's own id. When the connection drops, calls in flight are answered UNAVAILABLE
//! and the next call (or a background attempt) dials again.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::frame::{self, Frame, FrameError, TYPE_DATA, TYPE_RESPONSE};
use crate::intercept::code;

/// A byte stream the relay can use in both directions.
pub trait AsyncIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncIo for T {}

/// A boxed [`AsyncIo`].
pub type BoxedIo = Box<dyn AsyncIo>;

/// The future a [`Dialer`] returns.
pub type DialFuture<'a> = Pin<Box<dyn Future<Output = std::io::Result<BoxedIo>> + Send + 'a>>;

/// Opens a connection to the next hop (TCP, TLS over TCP, a unix socket, …).
pub trait Dialer: Send + Sync + Debug + 'static {
    /// One attempt.
    fn dial(&self) -> DialFuture<'_>;
    /// Where it dials, for messages.
    fn target(&self) -> String;
}

/// Dial retry pacing: exponential from `initial` to `max`, with jitter; each attempt bounded by
/// `attempt_timeout`.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First pause.
    pub initial: Duration,
    /// Longest pause.
    pub max: Duration,
    /// Bound on a single attempt.
    pub attempt_timeout: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

use crate::outbox::DownTx;

struct Route {
    down: DownTx,
    down_id: u32,
}

struct ConnState {
    next_id: u32,
    routes: HashMap<u32, Route>,
    dead: bool,
}

/// One live upstream connection.
pub(crate) struct Conn {
    born: Instant,
    tx: mpsc::Sender<Queued>,
    /// Bytes that may wait in the outbound queue; senders wait beyond it.
    budget: Arc<Semaphore>,
    state: Mutex<ConnState>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("dead", &self.is_dead()).finish_non_exhaustive()
    }
}

/// Why a call could not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendError(pub(crate) String);

impl Conn {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Sends a Request under a new upstream stream id; its answer goes to `down` as `down_id`.
    /// Returns the upstream id, or the frame back with the reason it could not go.
    pub(crate) async fn send_request(
        &self,
        mut frame: Frame,
        down: DownTx,
        down_id: u32,
    ) -> Result<u32, (SendError, Frame)> {
        let Ok(bytes) = self.reserve_bytes(&frame).await else {
            return Err((SendError("connection closed".into()), frame));
        };
        let Ok(permit) = self.tx.reserve().await else {
            return Err((SendError("connection closed".into()), frame));
        };
        let mut st = self.lock();
        if st.dead {
            return Err((SendError("connection lost".into()), frame));
        }
        let id = st.next_id;
        let Some(next) = id.checked_add(2) else {
            // 2^31 calls on one connection: retire it; the next call dials a fresh one.
            st.dead = true;
            return Err((SendError("stream ids exhausted".into()), frame));
        };
        st.next_id = next;
        st.routes.insert(id, Route { down, down_id });
        frame.set_stream_id(id);
        // Enqueued under the lock, so ids reach the wire in increasing order.
        permit.send(Queued { frame, _bytes: bytes });
        Ok(id)
    }

    /// Sends a Data frame on an upstream stream opened by [`Conn::send_request`].
    pub(crate) async fn send_data(&self, mut frame: Frame, up_id: u32) -> Result<(), SendError> {
        frame.set_stream_id(up_id);
        let closed = || SendError("connection closed".into());
        let bytes = self.reserve_bytes(&frame).await.map_err(|_| closed())?;
        self.tx.send(Queued { frame, _bytes: bytes }).await.map_err(|_| closed())
    }

    async fn reserve_bytes(&self, frame: &Frame) -> Result<OwnedSemaphorePermit, ()> {
        let want = u32::try_from(frame.as_bytes().len()).unwrap_or(u32::MAX).min(QUEUE_BYTES);
        self.budget.clone().acquire_many_owned(want).await.map_err(|_| ())
    }

    /// Marks the connection dead, answers every call in flight with UNAVAILABLE and stops its
    /// tasks.
    fn kill(&self, reason: &str) {
        let routes = {
            let mut st = self.lock();
            st.dead = true;
            std::mem::take(&mut st.routes)
        };
        if !routes.is_empty() {
            tracing::warn!(calls = routes.len(), reason, "failing calls in flight");
        }
        let message = format!("agent connection lost: {reason}");
        for route in routes.into_values() {
            let _ =
                route.down.send(Frame::error_response(route.down_id, code::UNAVAILABLE, &message));
        }
        for task in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            task.abort();
        }
    }

    fn route_response(&self, mut frame: Frame) {
        let id = frame.stream_id();
        let route = {
            let mut st = self.lock();
            if frame.kind() == TYPE_RESPONSE {
                st.routes.remove(&id)
            } else {
                st.routes.get(&id).map(|r| Route { down: r.down.clone(), down_id: r.down_id })
            }
        };
        match route {
            Some(route) => {
                frame.set_stream_id(route.down_id);
                // A caller that went away is not an error.
                let _ = route.down.send(frame);
            }
            None => tracing::debug!(stream_id = id, "answer for a stream nobody waits for"),
        }
    }
}

struct Inner {
    dialer: Arc<dyn Dialer>,
    backoff: Backoff,
    current: Mutex<Option<Arc<Conn>>>,
    dial_lock: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    reconnect_window: Duration,
    /// Connections in a row that died young; paces reconnects to a peer that accepts and
    /// hangs up at once.
    flaps: std::sync::atomic::AtomicU32,
}

/// The shared upstream connection. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

impl Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("target", &self.inner.dialer.target())
            .field("connected", &self.live().is_some())
            .finish()
    }
}

/// Outbound frames queued per upstream connection before callers wait.
const QUEUE: usize = 256;
/// Outbound bytes queued per upstream connection before callers wait (4 MiB frames would
/// otherwise let 256 queued frames hold 1 GiB).
const QUEUE_BYTES: u32 = 16 << 20;

/// A frame waiting for the writer, with its share of the byte budget (released once written).
struct Queued {
    frame: Frame,
    _bytes: OwnedSemaphorePermit,
}

impl Upstream {
    /// An upstream that dials with `dialer`; after a drop it keeps trying in the background
    /// for `reconnect_window`.
    pub fn new(dialer: Arc<dyn Dialer>, backoff: Backoff, reconnect_window: Duration) -> Upstream {
        Upstream {
            inner: Arc::new(Inner {
                dialer,
                backoff,
                current: Mutex::new(None),
                dial_lock: tokio::sync::Mutex::new(()),
                closed: AtomicBool::new(false),
                reconnect_window,
                flaps: std::sync::atomic::AtomicU32::new(0),
            }),
        }
    }

    /// Where it dials.
    pub fn target(&self) -> String {
        self.inner.dialer.target()
    }

    /// The live connection, if any.
    pub(crate) fn live(&self) -> Option<Arc<Conn>> {
        let mut cur = self.inner.current.lock().unwrap_or_else(PoisonError::into_inner);
        if cur.as_ref().is_some_and(|c| c.is_dead()) {
            *cur = None;
        }
        cur.clone()
    }

    /// Whether a connection is up now.
    pub fn is_connected(&self) -> bool {
        self.live().is_some()
    }

    /// The live connection, dialing (with backoff) until `deadline` when there is none.
    pub(crate) async fn conn(&self, deadline: Instant) -> Result<Arc<Conn>, String> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let Ok(_guard) = tokio::time::timeout_at(deadline, self.inner.dial_lock.lock()).await
        else {
            return Err(format!("no connection to {} yet", self.target()));
        };
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let mut pause = self.inner.backoff.initial;
        let mut attempts = 0u32;
        loop {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err("relay closed".into());
            }
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt =
                tokio::time::timeout(left.min(self.inner.backoff.attempt_timeout), self.dial());
            let error = match attempt.await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "dial timed out".to_owned(),
            };
            let pause_now = jitter(pause);
            if Instant::now() + pause_now >= deadline {
                return Err(format!(
                    "could not connect to {} after {attempts} attempts: {error}",
                    self.target()
                ));
            }
            tracing::debug!(target = %self.target(), attempts, %error, "dial failed; retrying");
            tokio::time::sleep(pause_now).await;
            pause = (pause * 2).min(self.inner.backoff.max);
        }
    }

    /// Dials until connected or `deadline` (StartVM's wait for the forwarder).
    pub async fn connect(&self, deadline: Instant) -> Result<(), String> {
        self.conn(deadline).await.map(|_| ())
    }

    async fn dial(&self) -> std::io::Result<Arc<Conn>> {
        let io = self.inner.dialer.dial().await?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(std::io::Error::other("relay closed"));
        }
        let (rd, wr) = tokio::io::split(io);
        let (tx, rx) = mpsc::channel(QUEUE);
        let budget = Arc::new(Semaphore::new(QUEUE_BYTES as usize));
        let conn = Arc::new(Conn {
            born: Instant::now(),
            tx,
            budget,
            state: Mutex::new(ConnState { next_id: 1, routes: HashMap::new(), dead: false }),
            tasks: Mutex::new(Vec::new()),
        });
        let reader =
            tokio::spawn(read_loop(rd, Arc::downgrade(&conn), Arc::downgrade(&self.inner)));
        let writer = tokio::spawn(write_loop(wr, rx, Arc::downgrade(&conn)));
        conn.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([reader.abort_handle(), writer.abort_handle()]);
        *self.inner.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        tracing::info!(target = %self.target(), "upstream connected");
        Ok(conn)
    }

    /// Closes the connection for good: calls in flight get UNAVAILABLE, later calls fail.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let conn = self.inner.current.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(conn) = conn {
            conn.kill("relay closed");
        }
    }

    /// Whether [`Upstream::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

fn jitter(d: Duration) -> Duration {
    // ±20 % from the clock's low bits: enough to spread reconnect storms, no RNG needed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let permille = 800 + u64::from(nanos % 401);
    Duration::from_nanos((d.as_nanos() as u64).saturating_mul(permille) / 1000)
}

async fn read_loop<R: AsyncRead + Unpin>(mut rd: R, conn: Weak<Conn>, upstream: Weak<Inner>) {
    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, &mut rd);
    let reason = loop {
        match frame::read_frame(&mut rd).await {
            Ok(Some(f)) if matches!(f.kind(), TYPE_RESPONSE | TYPE_DATA) => {
                let Some(conn) = conn.upgrade() else { return };
                conn.route_response(f);
            }
            Ok(Some(f)) => tracing::debug!(kind = f.kind(), "ignoring a frame type from upstream"),
            Ok(None) => break "closed by peer".to_owned(),
            Err(FrameError::Oversized { stream_id, len, .. }) => {
                let Some(conn) = conn.upgrade() else { return };
                let msg = format!("response of {len} bytes exceeds the maximum message size");
                conn.route_response(Frame::error_response(
                    stream_id,
                    code::RESOURCE_EXHAUSTED,
                    &msg,
                ));
            }
            Err(FrameError::Io(e)) => break e.to_string(),
        }
    };
    on_dead(&conn, &upstream, &reason);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Queued>,
    conn: Weak<Conn>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    let result: std::io::Result<()> = async {
        while let Some(f) = rx.recv().await {
            w.write_all(f.frame.as_bytes()).await?;
            while let Ok(f) = rx.try_recv() {
                w.write_all(f.frame.as_bytes()).await?;
            }
            w.flush().await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result
        && let Some(conn) = conn.upgrade()
    {
        conn.kill(&e.to_string());
    }
}

fn on_dead(conn: &Weak<Conn>, upstream: &Weak<Inner>, reason: &str) {
    let Some(conn) = conn.upgrade() else { return };
    let Some(inner) = upstream.upgrade() else { return };
    let up = Upstream { inner };
    if up.is_closed() {
        return;
    }
    tracing::warn!(target = %up.target(), reason, "upstream connection lost; reconnecting");
    conn.kill(reason);
    // Dial again at once, so a health check arriving in a moment finds a live connection;
    // but back off when connections keep dying young (a peer that accepts and hangs up).
    let flaps = if conn.born.elapsed() < Duration::from_secs(2) {
        up.inner.flaps.fetch_add(1, Ordering::AcqRel).saturating_add(1)
    } else {
        up.inner.flaps.store(0, Ordering::Release);
        0
    };
    let pause = match flaps {
        0 | 1 => Duration::ZERO,
        n => (up.inner.backoff.initial * 2u32.saturating_pow(n.min(16) - 2))
            .min(up.inner.backoff.max),
    };
    let window = up.inner.reconnect_window;
    tokio::spawn(async move {
        tokio::time::sleep(pause).await;
        if let Err(e) = up.conn(Instant::now() + window).await {
            tracing::warn!(target = %up.target(), error = %e, "upstream still unreachable");
        }
    });
}
