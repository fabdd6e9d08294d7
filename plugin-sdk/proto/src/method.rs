//! The method table: one marker type per method and notification, binding its wire name to its
//! params and result types. Nobody outside this crate matches on method-name strings.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::handshake::{InitializeParams, InitializeResult};
use crate::instance::{
    CancelParams, CreateInstanceParams, CreateInstanceResult, DeleteInstanceParams,
    DeleteInstanceResult, Empty, ListInstancesParams, ListInstancesResult, ProgressParams,
    SetLogLevelParams, VerifyConfigParams, VerifyConfigResult,
};

/// A request type.
pub trait Method {
    /// The wire name.
    const NAME: &'static str;
    /// Params type.
    type Params: Serialize + DeserializeOwned + schemars::JsonSchema + Send + 'static;
    /// Result type.
    type Result: Serialize + DeserializeOwned + schemars::JsonSchema + Send + 'static;
}

/// A notification type.
pub trait Notification {
    /// The wire name.
    const NAME: &'static str;
    /// Params type.
    type Params: Serialize + DeserializeOwned + schemars::JsonSchema + Send + 'static;
}

macro_rules! methods {
    ($($(#[$doc:meta])* $ty:ident = $name:literal: $params:ty => $result:ty;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $ty {}
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    )*};
}

macro_rules! notifications {
    ($($(#[$doc:meta])* $ty:ident = $name:literal: $params:ty;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $ty {}
        impl Notification for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
        }
    )*};
}

methods! {
    /// Version negotiation, identity, config and capabilities. The first request.
    Initialize = "initialize": InitializeParams => InitializeResult;
    /// Deep configuration check; may call the cloud.
    VerifyConfig = "verifyConfig": VerifyConfigParams => VerifyConfigResult;
    /// Create and start one pod VM.
    CreateInstance = "createInstance": CreateInstanceParams => CreateInstanceResult;
    /// Delete one pod VM; idempotent.
    DeleteInstance = "deleteInstance": DeleteInstanceParams => DeleteInstanceResult;
    /// List pod VMs by tags (optional method).
    ListInstances = "listInstances": ListInstancesParams => ListInstancesResult;
    /// Release clients; the plugin refuses requests afterwards. Does not delete VMs.
    Teardown = "teardown": Empty => ();
    /// Liveness check.
    Ping = "$/ping": Empty => Empty;
}

notifications! {
    /// Host → plugin: stop an operation.
    Cancel = "$/cancel": CancelParams;
    /// Plugin → host: an operation advanced.
    Progress = "$/progress": ProgressParams;
    /// Host → plugin: change the log level.
    SetLogLevel = "$/setLogLevel": SetLogLevelParams;
}

/// Every request method name.
pub const METHOD_NAMES: &[&str] = &[
    Initialize::NAME,
    VerifyConfig::NAME,
    CreateInstance::NAME,
    DeleteInstance::NAME,
    ListInstances::NAME,
    Teardown::NAME,
    Ping::NAME,
];
