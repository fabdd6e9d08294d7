//! Listening and relaying: a TCP listener (TLS-wrapped unless disabled) whose connections are
//! relayed to the kata-agent socket. The agent connection is opened on the first call and
//! reopened after it drops, so the forwarder may start before the agent and survive its restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use caa_agent_relay::{Backoff, Relay, UnixDialer, Upstream};
use caa_tls::tokio_rustls::TlsAcceptor;
use tokio::net::TcpListener;

use crate::cli::Options;
use crate::config;
use crate::intercept::VmInterceptor;
use crate::podnet::PodNetworking;

/// How long a call waits for the agent socket (upstream bounds its dial at 150 s).
const AGENT_WAIT: Duration = Duration::from_secs(150);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running forwarder.
#[derive(Debug)]
pub struct Forwarder {
    addr: SocketAddr,
    relay: Relay,
    tunnel: std::sync::Mutex<Option<caa_podnet::VmTunnel>>,
}

impl Forwarder {
    /// Loads the config, sets up the pod network and starts listening.
    pub async fn start(options: &Options, podnet: &PodNetworking) -> anyhow::Result<Forwarder> {
        let settings = config::load(options)?;
        let tunnel = podnet
            .setup(&settings.apf.pod_network, &options.pod_namespace)
            .await
            .context("setting up the pod network")?;
        let listener = match TcpListener::bind(options.listen).await {
            Ok(l) => l,
            Err(e) => {
                if let Some(t) = &tunnel {
                    PodNetworking::teardown(t).await;
                }
                return Err(e).with_context(|| format!("listening on {}", options.listen));
            }
        };
        let addr = listener.local_addr()?;
        let upstream = Upstream::new(
            Arc::new(UnixDialer(options.kata_agent_socket.clone())),
            Backoff { attempt_timeout: Duration::from_secs(5), ..Backoff::default() },
            AGENT_WAIT,
        );
        let interceptor = VmInterceptor {
            pod_namespace: options.pod_namespace.clone(),
            create_bind_sources: true,
        };
        let relay = Relay::new(upstream, Arc::new(interceptor), AGENT_WAIT);
        let acceptor = settings.tls.map(TlsAcceptor::from);
        tracing::info!(%addr, tls = acceptor.is_some(), agent = %options.kata_agent_socket.display(), "listening");
        tokio::spawn(accept_loop(listener, acceptor, relay.clone()));
        Ok(Forwarder { addr, relay, tunnel: std::sync::Mutex::new(tunnel) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening, drops every connection and tears the pod network down.
    pub async fn shutdown(&self) {
        self.relay.shutdown();
        let tunnel = self.tunnel.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(t) = tunnel {
            PodNetworking::teardown(&t).await;
        }
    }
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, relay: Relay) {
    let mut stop = relay.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let relay = relay.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => relay.serve_connection(stream).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => relay.serve_connection(tls).await,
                        Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// The daemon: start, notify systemd, run until SIGTERM/SIGINT, shut down.
pub async fn run(options: Options, podnet: PodNetworking) -> anyhow::Result<()> {
    let forwarder = Forwarder::start(&options, &podnet).await?;
    crate::notify::ready();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
    forwarder.shutdown().await;
    Ok(())
}
