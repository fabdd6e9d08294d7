//! `caa-provider-libvirt`, the libvirt provider plugin: each pod VM is a libvirt domain booting a
//! qcow2 overlay of a base image volume, with its userdata on a NoCloud `cidata` ISO volume built
//! in-process; the VM's address comes from the libvirt network's DHCP lease.
//!
//! Reading order: [`config`] (options and [`LibvirtConfig`]), [`provider`] (the
//! [`caa_plugin_sdk::Provider`] implementation), `create` (`createInstance`), [`session`] and
//! [`storage`] (the blocking libvirt calls), [`domain_xml`] (the domain per host architecture),
//! [`metadata`] (what the plugin stores in a domain), [`volume`], [`cidata`] and [`iso`] (the
//! volumes and the seed image), [`host`] (capabilities), [`verify`] (`verifyConfig`),
//! [`error`] (the mapping onto protocol errors).

// `RpcError` is the protocol's error value and every handler returns it; it is large (its
// `data`), but only on cold failure paths, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod cidata;
pub mod config;
mod create;
pub mod domain_xml;
pub mod error;
pub mod host;
pub mod iso;
pub mod metadata;
pub mod provider;
pub mod session;
pub mod storage;
pub mod verify;
pub mod volume;

pub use caa_plugin_sdk::{instance_name, request_digest};
pub use config::LibvirtConfig;
pub use provider::LibvirtProvider;
