//! The one error type of the crate: every failure names the namespace, interface or file it is
//! about, and keeps the kernel's answer as its source.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a pod network operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PodNetError {
    /// A network namespace file could not be opened (other than "does not exist").
    #[error("cannot open network namespace {path}")]
    OpenNetns {
        /// The namespace file.
        path: PathBuf,
        /// The open error.
        #[source]
        source: io::Error,
    },
    /// A required network namespace does not exist.
    #[error("network namespace {path} does not exist")]
    NetnsNotFound {
        /// The namespace file.
        path: PathBuf,
    },
    /// `setns` into a namespace failed (needs CAP_SYS_ADMIN).
    #[error("cannot enter network namespace {path}")]
    EnterNetns {
        /// The namespace file.
        path: PathBuf,
        /// The setns error.
        #[source]
        source: nix::Error,
    },
    /// The namespace thread could not start its runtime or netlink socket.
    #[error("cannot start the netlink worker for {what}")]
    Worker {
        /// What failed to start.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The namespace thread ended without answering (it panicked).
    #[error("the network namespace worker thread ended without an answer")]
    WorkerLost,
    /// A netlink request was refused.
    #[error("netlink: {op}")]
    Netlink {
        /// What was being done, with the names involved.
        op: String,
        /// rtnetlink's error (carries the errno).
        #[source]
        source: rtnetlink::Error,
    },
    /// An nftables (conntrack bypass) request failed.
    #[error("nftables: {op}")]
    Nftables {
        /// What was being done.
        op: String,
        /// The socket error or the kernel's errno.
        #[source]
        source: io::Error,
    },
    /// No IPv4 default route in the main table, so no primary interface.
    #[error("no IPv4 default route in network namespace {netns}")]
    NoDefaultRoute {
        /// The namespace searched.
        netns: PathBuf,
    },
    /// A named interface does not exist.
    #[error("no interface {name} in network namespace {netns}")]
    NoSuchInterface {
        /// Interface name.
        name: String,
        /// The namespace searched.
        netns: PathBuf,
    },
    /// An interface has no IPv4 address, or (where exactly one is required) several.
    #[error("interface {name} has {count} IPv4 addresses; {expected}")]
    AddressCount {
        /// Interface name.
        name: String,
        /// How many it has.
        count: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// A field of the pod network description is missing or malformed.
    #[error("invalid pod network {field}: {value:?}")]
    InvalidConfig {
        /// The apf.json key.
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// Dedicated mode needs the VM's second address, and there is none.
    #[error("dedicated tunnel interface: the VM has {count} addresses, the second one is needed")]
    MissingVmAddress {
        /// Addresses the VM reported.
        count: usize,
    },
    /// The VNI is already used by another VXLAN device on the same UDP port.
    #[error("VXLAN id {vni} on port {port} is already in use in network namespace {netns}")]
    VniInUse {
        /// The VNI.
        vni: u32,
        /// The UDP port.
        port: u16,
        /// The namespace holding the tunnel sockets.
        netns: PathBuf,
    },
    /// Waiting for the VM's network gave up.
    #[error("gave up after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// A documented mode this implementation does not provide.
    #[error("{0} is not supported yet")]
    NotSupported(&'static str),
    /// The VNI state file could not be read or written.
    #[error("VNI state file {path}")]
    VniState {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The VNI state file is not what this crate writes.
    #[error("VNI state file {path} is corrupt")]
    VniStateCorrupt {
        /// The file.
        path: PathBuf,
        /// The decode error.
        #[source]
        source: serde_json::Error,
    },
    /// Every VNI from the minimum to 2^24-1 is allocated.
    #[error("no free VXLAN id at or above {min}")]
    VniExhausted {
        /// The configured minimum.
        min: u32,
    },
}

impl PodNetError {
    /// The kernel's errno when the error is a refused netlink or nftables request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            PodNetError::Netlink { source, .. } => netlink_errno(source),
            PodNetError::Nftables { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The positive errno of a netlink NACK.
pub(crate) fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Wraps an rtnetlink error with what was being done.
pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> PodNetError {
    PodNetError::Netlink { op: op.into(), source }
}
