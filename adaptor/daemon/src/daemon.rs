//! The daemon's life: open the durable state, start and supervise the provider plugin, verify
//! its config when asked, reconcile the records with the cloud, serve the Kata ttrpc API, the
//! startup probe and the metrics, and on SIGTERM/SIGINT stop serving, stop the plugin and
//! remove the socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use caa_plugin_host::{PluginSpec, Supervisor};

use crate::agent_proxy::{AgentProxies, AgentTls, WorkerInterceptor};
use crate::config::Config;
use crate::hypervisor::{HypervisorServer, ServeError};
use crate::metrics::{Metrics, PluginMethod};
use crate::pod_network::PodNetworking;
use crate::probe::ProbeServer;
use crate::provider::ResolvedPlugin;
use crate::sandbox::{ManagerSettings, SandboxManager};
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
    /// TLS for the agent proxy could not be set up (certificates, CA dir, profile).
    #[error("setting up TLS for the agent proxy: {0}")]
    Tls(#[source] caa_tls::TlsError),
    /// The pod network's durable VNI allocations could not be opened.
    #[error("opening the pod network state: {0}")]
    PodNetwork(#[source] caa_podnet::PodNetError),
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
    let pod_network = match config.network.disabled {
        true => None,
        false => Some(Arc::new(
            PodNetworking::open(&config.state_dir, &config.network, None)
                .map_err(RunError::PodNetwork)?,
        )),
    };
    let metrics = Arc::new(Metrics::new());
    let mut spec = PluginSpec::new(plugin.name.as_str(), plugin.command());
    spec.host.name = "cloud-api-adaptor".to_owned();
    let supervisor = Supervisor::start(spec)
        .await
        .map_err(|source| RunError::Plugin { provider: plugin.name.as_str().to_owned(), source })?;
    if config.cloud_config_verify {
        verify(&supervisor, &metrics).await?;
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
        pod_network,
    };
    let tls = AgentTls::from_config(&config.tls, &config.state_dir).map_err(RunError::Tls)?;
    let proxies = Arc::new(AgentProxies::new(tls, WorkerInterceptor::default()));
    let manager =
        SandboxManager::with_metrics(settings, supervisor.clone(), store, proxies, metrics);
    manager.reconcile().await;
    let ready = Arc::new(AtomicBool::new(false));
    let probe = ProbeServer::start(config.probe_port, ready.clone(), manager.clone())
        .await
        .map_err(|source| RunError::Probe { port: config.probe_port, source })?;
    let server =
        HypervisorServer::start(manager.clone(), &config.socket, config.socket_group).await?;
    ready.store(true, Ordering::SeqCst);
    wait_for_termination().await.map_err(RunError::Signals)?;
    tracing::info!("shutting down");
    ready.store(false, Ordering::SeqCst);
    server.shutdown().await;
    drop(probe);
    supervisor.shutdown().await;
    Ok(())
}

async fn verify(supervisor: &Supervisor, metrics: &Metrics) -> Result<(), RunError> {
    match metrics.timed(PluginMethod::VerifyConfig, supervisor.verify_config()).await {
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
