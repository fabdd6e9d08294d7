//! `agent-protocol-forwarder`: thin entry point over [`caa_forwarder::run`].

use caa_forwarder::cli::{Options, version_block};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).init();
    let options = match Options::parse_go(std::env::args_os()) {
        Ok(o) => o,
        Err(e) => e.exit(),
    };
    eprint!("{}", version_block());
    if options.version.unwrap_or(false) {
        return Ok(());
    }
    let podnet = caa_forwarder::podnet::PodNetworking::in_this_vm(&options.host_interface);
    caa_forwarder::run(options, podnet).await
}
