//! Plain dialers and the unix-socket accept loop, shared by the proxy, the forwarder and tests.
//! TLS dialers live with the adaptor (they need its certificates).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpStream, UnixListener, UnixStream};

use crate::relay::Relay;
use crate::upstream::{BoxedIo, DialFuture, Dialer};

/// Dials a unix socket (the forwarder's kata-agent socket).
#[derive(Debug, Clone)]
pub struct UnixDialer(pub PathBuf);

impl Dialer for UnixDialer {
    fn dial(&self) -> DialFuture<'_> {
        Box::pin(async move { Ok(Box::new(UnixStream::connect(&self.0).await?) as BoxedIo) })
    }

    fn target(&self) -> String {
        format!("unix:{}", self.0.display())
    }
}

/// Dials TCP without TLS (`-disable-tls`).
#[derive(Debug, Clone)]
pub struct TcpDialer(pub SocketAddr);

impl Dialer for TcpDialer {
    fn dial(&self) -> DialFuture<'_> {
        Box::pin(async move {
            let stream = TcpStream::connect(self.0).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxedIo)
        })
    }

    fn target(&self) -> String {
        self.0.to_string()
    }
}

/// Binds `path` for a relay, replacing a stale socket file left by a previous run.
pub fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

impl Relay {
    /// Accepts connections on `listener` and relays each until the relay shuts down.
    pub async fn serve_unix(&self, listener: UnixListener) {
        let mut stop = self.shutdown_signal();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    let relay = self.clone();
                    tokio::spawn(async move { relay.serve_connection(stream).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
