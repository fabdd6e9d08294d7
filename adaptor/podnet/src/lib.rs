//! Pod networking for peer pods: the VXLAN tunnel that makes a pod VM answer at the pod IP the
//! CNI gave the pod on the worker node (caa-facts §6).
//!
//! Worker side (adaptor): [`inspect`] reads the pod's network from its namespace into apf.json's
//! [`PodNetwork`] at CreateVM; [`WorkerTunnel::plan`] + [`setup`] build the tunnel at StartVM;
//! [`teardown`] removes it at StopVM, also after a restart from the persisted [`WorkerTunnel`].
//! VNIs come from [`VniAllocator`], which survives restarts.
//!
//! VM side (forwarder): [`vm_setup`] recreates the pod interface in the pod namespace from
//! [`PodNetwork`]; [`vm_teardown`] removes it.
//!
//! Everything is netlink from Rust (rtnetlink for links, addresses, routes, neighbours and tc;
//! hand-written nfnetlink messages for nftables); no `ip`, `tc`, `iptables` or `nft` binary is
//! run. Each operation runs on its own OS thread that enters the namespaces it needs and opens
//! its netlink sockets there (a netlink socket belongs to its creator thread's namespace); the
//! async functions await that thread, the `_blocking` ones join it. Dropping an async call does
//! not stop the operation: it completes on its thread and its result is discarded, so callers
//! that must record the outcome (StartVM) should not cancel it. All of it needs CAP_NET_ADMIN
//! and CAP_SYS_ADMIN.
//!
//! # Conntrack bypass
//!
//! Upstream adds iptables `raw` NOTRACK rules for the tunnel's UDP flow on both ends. Here each
//! tunnel owns an nftables table `caa-vxlan-<vni>` (family `ip`) with `output` and `prerouting`
//! base chains at the raw priority (-300) and one `notrack` rule each, matching the remote
//! address, UDP and the VXLAN port. nftables was chosen over the `iptables` binary because it is
//! reachable over netlink without any userspace tool (the pure-Rust nftables crates are GPL, so
//! the few messages needed are encoded in `nft.rs`), and a table per tunnel makes removal exact
//! and idempotent: teardown deletes that table and nothing else. Kernels without nf_tables fail
//! setup with a [`PodNetError::Nftables`] error.
//!
//! # Modes
//!
//! Dedicated interface mode (§6.6) is supported: [`InspectOptions::host_interface`] naming a
//! non-primary interface sets `dedicated`, the worker's remote becomes the VM's second address,
//! and the VM side sources the tunnel from [`VmOptions::host_interface`]. External networking
//! via the pod VM (§6.7) is not supported yet: [`vm_setup`] refuses it with
//! [`PodNetError::NotSupported`] before touching anything.

mod cidr;
mod error;
mod inspect;
mod netns;
mod nft;
mod nl;
mod routes;
mod tc;
mod vm;
mod vni;
mod worker;

pub use caa_userdata::{Neighbor, NeighborState, PodNetwork, Route, RouteProtocol, RouteScope};
pub use cidr::{CidrParseError, Ipv4Cidr};
pub use error::PodNetError;
pub use inspect::{DEFAULT_VXLAN_PORT, InspectOptions, inspect, inspect_blocking};
pub use netns::SELF_NETNS;
pub use nft::table_name as conntrack_table_name;
pub use tc::FILTER_PRIORITY;
pub use vm::{
    DEFAULT_WAIT, VM_MTU_CAP, VmOptions, VmTunnel, vm_setup, vm_setup_blocking, vm_teardown,
    vm_teardown_blocking,
};
pub use vni::{DEFAULT_VXLAN_MIN_ID, MAX_VNI, Vni, VniAllocator};
pub use worker::{
    WORKER_VXLAN_NAME, WorkerTunnel, setup, setup_blocking, teardown, teardown_blocking,
};
