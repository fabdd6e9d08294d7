//! The Kata-facing ttrpc server: `hypervisor.Hypervisor` and `podvminfo.PodVMInfo` on one unix
//! socket (default `/run/peerpod/hypervisor.sock`). The socket is owner-only (or group-readable
//! for a configured group), a stale socket left by a dead adaptor is replaced, a live one is
//! refused, and the socket is removed on shutdown.

mod service;
mod status;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use caa_kata_protos::hypervisor::create_hypervisor;
use caa_kata_protos::podvminfo::create_pod_vminfo;
use caa_kata_protos::ttrpc::r#async::Server;

use crate::sandbox::SandboxManager;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another process serves the socket.
    #[error("{0} is served by another process (is another cloud-api-adaptor running?)")]
    InUse(PathBuf),
    /// File system trouble around the socket.
    #[error("preparing {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The ttrpc server failed.
    #[error("ttrpc server on {path}: {message}")]
    Ttrpc {
        /// The socket.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A running hypervisor server; [`HypervisorServer::shutdown`] stops it and removes the socket.
pub struct HypervisorServer {
    server: Server,
    path: PathBuf,
}

impl std::fmt::Debug for HypervisorServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HypervisorServer").field("path", &self.path).finish_non_exhaustive()
    }
}

impl HypervisorServer {
    /// Binds `path` and serves the sandbox manager on it.
    pub async fn start(
        manager: SandboxManager,
        path: &Path,
        group: Option<u32>,
    ) -> Result<HypervisorServer, ServeError> {
        let io = |source| ServeError::Io { path: path.to_owned(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        replace_stale(path)?;
        let service = Arc::new(service::Service { manager });
        let ttrpc = |e: caa_kata_protos::ttrpc::Error| ServeError::Ttrpc {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut server = Server::new()
            .bind(&format!("unix://{}", path.display()))
            .map_err(ttrpc)?
            .register_service(create_hypervisor(service.clone()))
            .register_service(create_pod_vminfo(service));
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        if let Some(gid) = group {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| io(io::Error::from(e)))?;
        }
        server.start().await.map_err(ttrpc)?;
        tracing::info!(socket = %path.display(), "serving hypervisor.Hypervisor and podvminfo.PodVMInfo");
        Ok(HypervisorServer { server, path: path.to_owned() })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, closes connections and removes the socket.
    pub async fn shutdown(mut self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!(error = %e, "ttrpc server shutdown");
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes a socket nobody listens on; refuses one that is live.
fn replace_stale(path: &Path) -> Result<(), ServeError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServeError::InUse(path.to_owned()));
    }
    tracing::info!(socket = %path.display(), "replacing a stale socket");
    std::fs::remove_file(path).map_err(|source| ServeError::Io { path: path.to_owned(), source })
}
