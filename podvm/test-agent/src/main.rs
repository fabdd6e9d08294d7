//! `caa-test-kata-agent`: the test agent on a unix socket until SIGTERM or SIGINT. For tests and
//! the local test pod VM image; real pod VMs run the kata-agent.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// A test stand-in for the kata-agent (records requests; runs no containers).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Unix socket to listen on.
    #[arg(long, default_value = "/run/kata-containers/agent.sock")]
    socket: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    if let Some(dir) = args.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let agent = caa_test_agent::TestAgent::start(&args.socket)
        .await
        .with_context(|| format!("listening on {}", args.socket.display()))?;
    tracing::info!(socket = %args.socket.display(), "test kata agent listening");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    agent.stop().await;
    Ok(())
}
