//! The daemon's HTTP endpoint on `PROBE_PORT`: `GET /startup` answers 200 once the ttrpc API is
//! served (503 before), `GET /metrics` the Prometheus text exposition of [`crate::metrics`].
//! Minimal HTTP/1.1, one request per connection: all a kubelet probe or a scraper needs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use caa_plugin_host::SupervisorStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::metrics::Gauges;
use crate::sandbox::SandboxManager;

/// How long a client may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The running endpoint; stops serving when dropped.
#[derive(Debug)]
pub struct ProbeServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ProbeServer {
    /// Binds `0.0.0.0:<port>` (0 = any free port) and serves until dropped. `/startup` reports
    /// `ready`.
    pub async fn start(
        port: u16,
        ready: Arc<AtomicBool>,
        manager: SandboxManager,
    ) -> std::io::Result<ProbeServer> {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "startup probe and metrics listening");
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else { continue };
                tokio::spawn(answer(conn, ready.clone(), manager.clone()));
            }
        });
        Ok(ProbeServer { addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut conn: TcpStream, ready: Arc<AtomicBool>, manager: SandboxManager) {
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(READ_TIMEOUT, conn.read(&mut buf))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let request = String::from_utf8_lossy(&buf[..n]);
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let text = "text/plain; charset=utf-8";
    let (status, content_type, body) = match (method, path) {
        ("GET", "/startup") if ready.load(Ordering::SeqCst) => ("200 OK", text, "ok\n".to_owned()),
        ("GET", "/startup") => ("503 Service Unavailable", text, "starting\n".to_owned()),
        ("GET", "/metrics") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics_text(&manager))
        }
        ("GET", _) => ("404 Not Found", text, "not found\n".to_owned()),
        _ => ("405 Method Not Allowed", text, "method not allowed\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes()).await;
}

/// The `/metrics` body: the manager's registry plus the gauges sampled now.
pub fn metrics_text(manager: &SandboxManager) -> String {
    let plugin = manager.plugin();
    let gauges = Gauges {
        sandboxes: manager.sandbox_counts(),
        plugin_up: matches!(plugin.status(), SupervisorStatus::Running { .. }),
        plugin_restarts: plugin.restarts(),
    };
    manager.metrics().render(&gauges)
}
