//! `CallError`: how one call to a plugin can fail, and the two questions callers ask of a failure:
//! did a VM perhaps get created (`instance_id`), and is the outcome unknown (`is_indeterminate`).

use std::time::Duration;

use caa_plugin_proto::method::CreateInstance;
use caa_plugin_proto::{ErrorCode, Method, RpcError};

/// Stderr lines shown in a crash message (the whole tail stays in the field).
const SHOWN_TAIL_LINES: usize = 10;

/// Why a call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with an error.
    #[error("{0}")]
    Rpc(RpcError),
    /// No answer in time (for operations: also not within the grace after `$/cancel`).
    #[error("plugin {plugin} (pid {pid}) did not answer {method} within {elapsed:.1?}")]
    Timeout {
        /// The method.
        method: String,
        /// The provider name.
        plugin: String,
        /// The plugin's pid.
        pid: u32,
        /// Time waited.
        elapsed: Duration,
        /// The instance announced by `$/progress` for this operation, if any.
        instance_id: Option<String>,
    },
    /// The plugin process exited while the call was waiting.
    #[error("plugin {plugin} (pid {pid}) exited ({status}){}", tail_suffix(.stderr_tail))]
    Crashed {
        /// The provider name.
        plugin: String,
        /// The plugin's pid.
        pid: u32,
        /// The exit status text.
        status: String,
        /// The last stderr lines.
        stderr_tail: Vec<String>,
        /// The instance announced by `$/progress` for this operation, if any.
        instance_id: Option<String>,
    },
    /// The connection closed while the call was waiting (or before it was sent).
    #[error("connection to plugin {plugin} is closed")]
    Closed {
        /// The provider name.
        plugin: String,
        /// The instance announced by `$/progress` for this operation, if any.
        instance_id: Option<String>,
    },
    /// The result did not match the method's result type. For `createInstance` the outcome
    /// is indeterminate: a VM may exist.
    #[error("decode {method} result: {message}")]
    Decode {
        /// The method.
        method: String,
        /// The decoder's message.
        message: String,
        /// The result's `instanceId` when readable, else the id announced by `$/progress`.
        instance_id: Option<String>,
    },
    /// The result decoded but breaks the protocol's rules (a create without addresses).
    #[error("plugin {plugin} returned an invalid {method} result: {message}")]
    InvalidResult {
        /// The provider name.
        plugin: String,
        /// The method.
        method: String,
        /// What is wrong.
        message: String,
        /// The instance the result names.
        instance_id: Option<String>,
    },
    /// The plugin is not running and is not being restarted (circuit breaker open, stopped).
    #[error("plugin {plugin} is unavailable: {reason}")]
    Unavailable {
        /// The provider name.
        plugin: String,
        /// Why, with the last stderr lines.
        reason: String,
    },
}

fn tail_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let shown = &lines[lines.len().saturating_sub(SHOWN_TAIL_LINES)..];
    format!("; last stderr lines:\n  {}", shown.join("\n  "))
}

impl CallError {
    /// The instance that may exist after this failure: `data.instanceId` of a plugin error, or
    /// the id announced by `$/progress` before a timeout, crash or close.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            CallError::Rpc(e) => e.instance_id(),
            CallError::Timeout { instance_id, .. }
            | CallError::Crashed { instance_id, .. }
            | CallError::Closed { instance_id, .. }
            | CallError::InvalidResult { instance_id, .. }
            | CallError::Decode { instance_id, .. } => instance_id.as_deref(),
            CallError::Unavailable { .. } => None,
        }
    }

    /// Whether the call's effect is unknown: a timeout, a crash, a closed connection, the
    /// plugin's internal error (-32603), or a `createInstance` result that does not decode.
    pub fn is_indeterminate(&self) -> bool {
        match self {
            CallError::Timeout { .. } | CallError::Crashed { .. } | CallError::Closed { .. } => {
                true
            }
            CallError::Rpc(e) => e.kind() == ErrorCode::InternalError,
            CallError::Decode { method, .. } => method == CreateInstance::NAME,
            _ => false,
        }
    }

    /// The plugin's error code, for plugin errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            CallError::Rpc(e) => Some(e.kind()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_plugin_pid_and_stderr() {
        let e = CallError::Crashed {
            plugin: "aws".into(),
            pid: 42,
            status: "exit status: 3".into(),
            stderr_tail: vec!["a".into(), "b".into()],
            instance_id: None,
        };
        assert_eq!(
            e.to_string(),
            "plugin aws (pid 42) exited (exit status: 3); last stderr lines:\n  a\n  b"
        );
        assert!(e.is_indeterminate());
        let e =
            CallError::Rpc(RpcError::new(ErrorCode::InternalError, "bug").with_instance_id("i-1"));
        assert_eq!(e.to_string(), "bug (internalError -32603)");
        assert_eq!(e.instance_id(), Some("i-1"));
        assert!(e.is_indeterminate());
        assert!(
            !CallError::Rpc(RpcError::new(ErrorCode::CapacityUnavailable, "x")).is_indeterminate()
        );
    }
}
