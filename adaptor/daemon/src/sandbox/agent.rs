//! How StartVM decides the pod VM is ready. The agent proxy (its own issue) will implement
//! [`AgentConnector`] with the real TLS connection to the agent-protocol-forwarder; until then
//! [`TcpReadiness`] waits for a TCP connect to `ips[0]:<forwarder-port>`, retrying within the
//! proxy timeout like upstream's dial loop.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

/// Connects a sandbox to its pod VM's forwarder.
pub trait AgentConnector: Send + Sync + std::fmt::Debug + 'static {
    /// Resolves once the forwarder at `endpoint` is reachable, or fails by `deadline`.
    fn connect<'a>(
        &'a self,
        sandbox_id: &'a str,
        endpoint: SocketAddr,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

    /// Drops whatever `connect` set up for the sandbox.
    fn disconnect(&self, _sandbox_id: &str) {}
}

/// Readiness by TCP connect, retried every `interval`.
#[derive(Debug, Clone)]
pub struct TcpReadiness {
    /// Pause between attempts.
    pub interval: Duration,
}

impl Default for TcpReadiness {
    fn default() -> TcpReadiness {
        TcpReadiness { interval: Duration::from_millis(500) }
    }
}

impl AgentConnector for TcpReadiness {
    fn connect<'a>(
        &'a self,
        sandbox_id: &'a str,
        endpoint: SocketAddr,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                let left = deadline.saturating_duration_since(Instant::now());
                let attempt = tokio::time::timeout(
                    left.min(Duration::from_secs(10)),
                    tokio::net::TcpStream::connect(endpoint),
                );
                let last = match attempt.await {
                    Ok(Ok(_stream)) => return Ok(()),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "connect timed out".to_owned(),
                };
                if Instant::now() + self.interval >= deadline {
                    return Err(format!("not reachable after {attempts} attempts: {last}"));
                }
                tracing::debug!(sandbox_id, %endpoint, attempts, error = %last, "forwarder not reachable yet");
                tokio::time::sleep(self.interval).await;
            }
        })
    }
}
