//! The worker-side agent proxy (caa-facts §4): per sandbox, a ttrpc relay that listens on
//! `<pods-dir>/<sid>/agent.ttrpc` for the Kata shim and forwards its frames to the pod VM's
//! agent-protocol-forwarder over TLS (or plain TCP with `-disable-tls`). The listener is up
//! before the forwarder is reached, so the shim's first connection waits in the backlog;
//! StartVM returns once the first forwarder connection is made. After a drop the relay
//! reconnects by itself (upstream never does).
//!
//! - [`tls`]: certificates and TLS configurations from the daemon's options;
//! - [`intercept`]: the CreateContainer rewrite; [`volumes`]: Kata's direct-volume metadata.

pub mod intercept;
pub mod tls;
pub mod volumes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use caa_agent_relay::{Backoff, BoxedIo, DialFuture, Dialer, Relay, TcpDialer, Upstream};
use caa_tls::rustls::pki_types::ServerName;
use tokio::time::Instant;

use crate::sandbox::{AgentConnector, AgentTarget, ConnectFuture};
pub use intercept::WorkerInterceptor;
pub use tls::{AgentTls, VmTls};

/// Pacing of the dial loop (upstream: ~100 ms doubling to 5 s, with jitter).
fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
        attempt_timeout: Duration::from_secs(10),
    }
}

/// How long a call waits for a lost forwarder connection to come back (the shim's health check
/// has a 30 s deadline, and a forwarder restarted by systemd is back after ~5 s).
const CALL_WAIT: Duration = Duration::from_secs(30);

/// TLS over TCP to one forwarder.
struct TlsDialer {
    addr: SocketAddr,
    connector: caa_tls::tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDialer").field("addr", &self.addr).field("name", &self.name).finish()
    }
}

impl Dialer for TlsDialer {
    fn dial(&self) -> DialFuture<'_> {
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let tls = self.connector.connect(self.name.clone(), tcp).await?;
            Ok(Box::new(tls) as BoxedIo)
        })
    }

    fn target(&self) -> String {
        format!("{} (TLS)", self.addr)
    }
}

/// The agent proxies of all live sandboxes.
#[derive(Debug)]
pub struct AgentProxies {
    tls: AgentTls,
    interceptor: Arc<WorkerInterceptor>,
    relays: Mutex<HashMap<String, Relay>>,
}

impl AgentProxies {
    /// Proxies secured as `tls` says.
    pub fn new(tls: AgentTls, interceptor: WorkerInterceptor) -> AgentProxies {
        AgentProxies { tls, interceptor: Arc::new(interceptor), relays: Mutex::new(HashMap::new()) }
    }

    fn dialer(&self, target: &AgentTarget<'_>) -> Result<Arc<dyn Dialer>, String> {
        Ok(match &self.tls {
            AgentTls::Disabled => Arc::new(TcpDialer(target.endpoint)),
            AgentTls::Enabled { client, fixed_server_name, .. } => {
                let name = fixed_server_name.as_deref().unwrap_or(target.instance_name);
                let name = caa_tls::server_name(name).map_err(|e| e.to_string())?;
                Arc::new(TlsDialer { addr: target.endpoint, connector: client.connector(), name })
            }
        })
    }

    async fn start(&self, target: AgentTarget<'_>, deadline: Instant) -> Result<(), String> {
        let dialer = self.dialer(&target)?;
        let upstream = Upstream::new(dialer, backoff(), CALL_WAIT);
        let relay = Relay::new(upstream, self.interceptor.clone(), CALL_WAIT);
        let listener = caa_agent_relay::bind_unix(target.socket)
            .map_err(|e| format!("listening on {}: {e}", target.socket.display()))?;
        let previous = self
            .relays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(target.sandbox_id.to_owned(), relay.clone());
        if let Some(previous) = previous {
            previous.shutdown();
        }
        let serving = relay.clone();
        tokio::spawn(async move { serving.serve_unix(listener).await });
        relay.upstream().connect(deadline).await
    }
}

impl AgentConnector for AgentProxies {
    fn vm_tls(&self, instance_name: &str) -> Result<VmTls, String> {
        self.tls.vm_tls(instance_name).map_err(|e| e.to_string())
    }

    fn connect<'a>(&'a self, target: AgentTarget<'a>, deadline: Instant) -> ConnectFuture<'a> {
        Box::pin(async move {
            let sandbox_id = target.sandbox_id;
            let result = self.start(target, deadline).await;
            if result.is_err() {
                self.disconnect(sandbox_id);
            }
            result
        })
    }

    fn disconnect(&self, sandbox_id: &str) {
        let relay = self.relays.lock().unwrap_or_else(PoisonError::into_inner).remove(sandbox_id);
        if let Some(relay) = relay {
            relay.shutdown();
            tracing::info!(sandbox_id, "agent proxy stopped");
        }
    }
}
