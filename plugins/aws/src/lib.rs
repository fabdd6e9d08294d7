//! The aws provider plugin (`caa-provider-aws`): pod VMs as EC2 instances through `aws-sdk-ec2`,
//! the only crate of the workspace that depends on an AWS SDK. Upstream's options and defaults
//! (caa-facts §1.5, §8.1), idempotent creates keyed by the operationId (ClientToken plus an
//! operation tag), addresses polled within the call's deadline, EC2 errors mapped to protocol
//! codes with the AWS code kept.
//!
//! - [`config`]: the option table and [`AwsConfig`];
//! - [`cloud`]: the EC2 client, credentials, node defaults from IMDS;
//! - [`catalog`]: the AMI's root device and the instance types, learned at start-up;
//! - [`create`]: `createInstance`; [`volumes`]: CSI volumes; [`nics`]: the second interface;
//! - [`provider`]: [`AwsProvider`], delete, list, verify; [`error`]: EC2 errors as protocol errors.

// RpcError is the protocol's error object, returned by value like the SDK's own handlers do.
#![allow(clippy::result_large_err)]

pub mod catalog;
pub mod cloud;
pub mod config;
pub mod create;
pub mod error;
pub mod nics;
pub mod provider;
pub mod volumes;

pub use config::AwsConfig;
pub use provider::{AwsProvider, PROVIDER_NAME};
