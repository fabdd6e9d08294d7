//! The daemon's life: open the durable state, start and supervise the provider plugin, verify
//! its config when asked, reconcile the records with the cloud, serve the Kata ttrpc API and
//! the startup probe, and on SIGTERM/SIGINT stop serving, stop the plugin and remove the socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use caa_plugin_host::{PluginSpec, Supervisor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::hypervisor::{HypervisorServer, ServeError};
use crate::provider::ResolvedPlugin;
use crate::sandbox::{ManagerSettings, SandboxManager, TcpReadiness};
use crate::state::{StateError, StateStore};

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state directory is unusable.
    #[error("opening the state directory: {0}")]
    State(#[from] StateError),
    /// The plugin did not start.
    #[error("starting the {provider} provider plugin: {source}")]
    Plugin {
        /// Provider name.
        provider: String,
        /// Why.
        #[source]
        source: caa_plugin_host::HostError,
    },
    /// `CLOUD_CONFIG_VERIFY` is set and the plugin rejected its config.
    #[error("cloud config verification failed: {0}")]
    Verify(String),
    /// The ttrpc server did not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The probe port could not be bound.
    #[error("binding the startup probe on port {port}: {source}")]
    Probe {
        /// Port.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Signal handling could not be set up.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config, plugin: ResolvedPlugin) -> Result<(), RunError> {
    let store = StateStore::open(config.state_dir.clone())?;
    let mut spec = PluginSpec::new(plugin.name.as_str(), plugin.command());
    spec.host.name = "cloud-api-adaptor".to_owned();
    let supervisor = Supervisor::start(spec)
        .await
        .map_err(|source| RunError::Plugin { provider: plugin.name.as_str().to_owned(), source })?;
    if config.cloud_config_verify {
        verify(&supervisor).await?;
    }
    let limits = supervisor
        .plugin()
        .await
        .ok()
        .and_then(|p| p.info().capabilities.limits.max_user_data_bytes);
    let settings = ManagerSettings {
        pods_dir: config.pods_dir.clone(),
        forwarder_port: config.forwarder_port,
        proxy_timeout: config.proxy_timeout,
        node_name: config.kubernetes.node_name.clone(),
        provider: plugin.name.as_str().to_owned(),
        initdata: config.initdata.clone(),
        scratch_space: config.enable_scratch_space,
        default_start_budget: Duration::from_secs(540),
        max_user_data_bytes: limits,
    };
    let manager =
        SandboxManager::new(settings, supervisor.clone(), store, Arc::new(TcpReadiness::default()));
    manager.reconcile().await;
    let ready = Arc::new(AtomicBool::new(false));
    let probe = start_probe(config.probe_port, ready.clone(), manager.clone()).await?;
    let server =
        HypervisorServer::start(manager.clone(), &config.socket, config.socket_group).await?;
    ready.store(true, Ordering::SeqCst);
    wait_for_termination().await.map_err(RunError::Signals)?;
    tracing::info!("shutting down");
    ready.store(false, Ordering::SeqCst);
    server.shutdown().await;
    probe.abort();
    supervisor.shutdown().await;
    Ok(())
}

async fn verify(supervisor: &Supervisor) -> Result<(), RunError> {
    match supervisor.verify_config().await {
        Ok(result) if result.ok => {
            tracing::info!(checks = result.checks.len(), "cloud config verified");
            Ok(())
        }
        Ok(result) => {
            let failed: Vec<String> = result
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail.as_deref().unwrap_or("failed")))
                .collect();
            Err(RunError::Verify(failed.join("; ")))
        }
        Err(e) => {
            let problems = match &e {
                caa_plugin_host::CallError::Rpc(rpc) => rpc
                    .data
                    .as_ref()
                    .map(|d| {
                        d.problems
                            .iter()
                            .map(|p| format!("{}: {}", p.field, p.message))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            Err(RunError::Verify(if problems.is_empty() {
                e.to_string()
            } else {
                format!("{e}: {problems}")
            }))
        }
    }
}

async fn wait_for_termination() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// `GET /startup` answers 200 once the ttrpc API is served (503 before); `GET /metrics` gives a
/// few gauges in Prometheus text format. Minimal HTTP/1.1, one request per connection.
async fn start_probe(
    port: u16,
    ready: Arc<AtomicBool>,
    manager: SandboxManager,
) -> Result<tokio::task::JoinHandle<()>, RunError> {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|source| RunError::Probe { port, source })?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "startup probe listening");
    }
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { continue };
            let ready = ready.clone();
            let manager = manager.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match path {
                    "/startup" if ready.load(Ordering::SeqCst) => ("200 OK", "ok\n".to_owned()),
                    "/startup" => ("503 Service Unavailable", "starting\n".to_owned()),
                    "/metrics" => ("200 OK", metrics(&manager)),
                    _ => ("404 Not Found", "not found\n".to_owned()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    }))
}

fn metrics(manager: &SandboxManager) -> String {
    let up = matches!(manager.plugin().status(), caa_plugin_host::SupervisorStatus::Running { .. });
    format!(
        "# HELP caa_sandboxes Live sandboxes on this node.\n# TYPE caa_sandboxes gauge\ncaa_sandboxes {}\n# HELP caa_plugin_up Whether the provider plugin is running.\n# TYPE caa_plugin_up gauge\ncaa_plugin_up {}\n",
        manager.len(),
        u8::from(up)
    )
}
