//! Running netlink work inside other network namespaces. A netlink socket belongs to the
//! namespace of the thread that created it, so each operation runs on a fresh OS thread that
//! `setns`es into every namespace it needs, opens one rtnetlink connection per namespace while
//! there, and drives them on its own current-thread runtime. No tokio worker thread ever changes
//! namespace; the thread is discarded afterwards.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};
use rtnetlink::Handle;
use tokio::sync::oneshot;

use crate::PodNetError;

/// The calling process's own network namespace (the one its main thread is in). The default
/// "host" namespace of the worker side and "root" namespace of the VM side.
pub const SELF_NETNS: &str = "/proc/self/ns/net";

/// One namespace opened by the worker thread.
#[derive(Debug)]
pub(crate) struct Ns {
    path: PathBuf,
    file: File,
    handle: Handle,
}

impl Ns {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// An rtnetlink handle whose socket lives in this namespace.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The namespace file descriptor, for `IFLA_NET_NS_FD` (moving links here).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Moves the worker thread into this namespace, for sockets other than rtnetlink's.
    pub(crate) fn enter(&self) -> Result<(), PodNetError> {
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|source| PodNetError::EnterNetns { path: self.path.clone(), source })
    }
}

/// The namespaces of one operation, in the order they were asked for. A namespace whose file
/// does not exist is `None` (teardown after the pod is gone is not an error).
#[derive(Debug)]
pub(crate) struct NsSet(Vec<Option<Ns>>);

impl NsSet {
    /// The namespace at `i`, or an error naming it when it does not exist.
    pub(crate) fn get(&self, i: usize, path: &Path) -> Result<&Ns, PodNetError> {
        self.0
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| PodNetError::NetnsNotFound { path: path.to_owned() })
    }

    /// The namespace at `i` if it exists.
    pub(crate) fn try_get(&self, i: usize) -> Option<&Ns> {
        self.0.get(i).and_then(Option::as_ref)
    }
}

/// Runs `work` on a fresh thread with `paths` opened, and awaits its answer.
pub(crate) async fn run<T, F, Fut>(paths: Vec<PathBuf>, work: F) -> Result<T, PodNetError>
where
    T: Send + 'static,
    F: FnOnce(NsSet) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, PodNetError>>,
{
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("caa-podnet".to_owned())
        .spawn(move || {
            let _ = tx.send(thread_main(paths, work));
        })
        .map_err(|source| PodNetError::Worker { what: "thread", source })?;
    rx.await.map_err(|_| PodNetError::WorkerLost)?
}

/// Like [`run`], for callers without a runtime: blocks until the thread is done.
pub(crate) fn run_blocking<T, F, Fut>(paths: Vec<PathBuf>, work: F) -> Result<T, PodNetError>
where
    T: Send + 'static,
    F: FnOnce(NsSet) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, PodNetError>>,
{
    std::thread::Builder::new()
        .name("caa-podnet".to_owned())
        .spawn(move || thread_main(paths, work))
        .map_err(|source| PodNetError::Worker { what: "thread", source })?
        .join()
        .map_err(|_| PodNetError::WorkerLost)?
}

fn thread_main<T, F, Fut>(paths: Vec<PathBuf>, work: F) -> Result<T, PodNetError>
where
    F: FnOnce(NsSet) -> Fut,
    Fut: Future<Output = Result<T, PodNetError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| PodNetError::Worker { what: "runtime", source })?;
    rt.block_on(async move {
        let mut set = Vec::with_capacity(paths.len());
        for path in paths {
            set.push(open(path)?);
        }
        work(NsSet(set)).await
    })
}

/// Opens `path`, enters it and connects rtnetlink there. Must run inside the thread's runtime.
fn open(path: PathBuf) -> Result<Option<Ns>, PodNetError> {
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PodNetError::OpenNetns { path, source }),
    };
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|source| PodNetError::EnterNetns { path: path.clone(), source })?;
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|source| PodNetError::Worker { what: "netlink socket", source })?;
    tokio::spawn(conn);
    Ok(Some(Ns { path, file, handle }))
}
