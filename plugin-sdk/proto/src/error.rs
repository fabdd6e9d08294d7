//! Protocol errors: the JSON-RPC error object, the closed set of codes both sides understand, and
//! the structured `data` that tells the host whether to retry and whether a VM may remain.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every error code of protocol version 1. Unknown codes from a peer are kept as [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// -32700: the line was not JSON.
    ParseError,
    /// -32600: not a request object, a batch, an oversized line, or a request after `teardown`.
    InvalidRequest,
    /// -32601: unknown method or optional method not implemented.
    MethodNotFound,
    /// -32602: params do not match the method's schema; also "no common protocol version".
    InvalidParams,
    /// -32603: a plugin bug or a caught panic. Indeterminate for creates.
    InternalError,
    /// -32002: a request arrived before `initialize`.
    NotInitialized,
    /// -32800: the operation was cancelled with `$/cancel`.
    RequestCancelled,
    /// 1: configuration missing or invalid.
    InvalidConfig,
    /// 2: credentials bad, expired or insufficient.
    Unauthorized,
    /// 3: the requested spec (arch, GPUs, volumes, ...) is not supported.
    UnsupportedSpec,
    /// 4: the cloud has no capacity for the request.
    CapacityUnavailable,
    /// 5: an account or region quota is exhausted.
    QuotaExceeded,
    /// 6: the cloud API rate-limited us.
    Throttled,
    /// 7: a transient cloud or network problem.
    TryAgainLater,
    /// 8: the plugin stopped at its deadline.
    DeadlineExceeded,
    /// 9: operationId reused with different params, or a conflicting resource state.
    Conflict,
    /// 10: the object does not exist.
    NotFound,
    /// Any other code (reserved 11–99, or plugin-specific ≥ 100).
    Other(i64),
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::NotInitialized => -32002,
            ErrorCode::RequestCancelled => -32800,
            ErrorCode::InvalidConfig => 1,
            ErrorCode::Unauthorized => 2,
            ErrorCode::UnsupportedSpec => 3,
            ErrorCode::CapacityUnavailable => 4,
            ErrorCode::QuotaExceeded => 5,
            ErrorCode::Throttled => 6,
            ErrorCode::TryAgainLater => 7,
            ErrorCode::DeadlineExceeded => 8,
            ErrorCode::Conflict => 9,
            ErrorCode::NotFound => 10,
            ErrorCode::Other(c) => c,
        }
    }

    /// The code for a number received on the wire.
    pub fn from_code(code: i64) -> ErrorCode {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code).unwrap_or(ErrorCode::Other(code))
    }

    /// The camelCase name used in docs and in fault scripts (`"capacityUnavailable"`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parseError",
            ErrorCode::InvalidRequest => "invalidRequest",
            ErrorCode::MethodNotFound => "methodNotFound",
            ErrorCode::InvalidParams => "invalidParams",
            ErrorCode::InternalError => "internalError",
            ErrorCode::NotInitialized => "notInitialized",
            ErrorCode::RequestCancelled => "requestCancelled",
            ErrorCode::InvalidConfig => "invalidConfig",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnsupportedSpec => "unsupportedSpec",
            ErrorCode::CapacityUnavailable => "capacityUnavailable",
            ErrorCode::QuotaExceeded => "quotaExceeded",
            ErrorCode::Throttled => "throttled",
            ErrorCode::TryAgainLater => "tryAgainLater",
            ErrorCode::DeadlineExceeded => "deadlineExceeded",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotFound => "notFound",
            ErrorCode::Other(_) => "other",
        }
    }

    /// Looks a code up by its camelCase name.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Whether a caller may retry the same call later, absent `data.retryable`.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::CapacityUnavailable
                | ErrorCode::QuotaExceeded
                | ErrorCode::Throttled
                | ErrorCode::TryAgainLater
                | ErrorCode::DeadlineExceeded
        )
    }

    /// All named codes.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::ParseError,
        ErrorCode::InvalidRequest,
        ErrorCode::MethodNotFound,
        ErrorCode::InvalidParams,
        ErrorCode::InternalError,
        ErrorCode::NotInitialized,
        ErrorCode::RequestCancelled,
        ErrorCode::InvalidConfig,
        ErrorCode::Unauthorized,
        ErrorCode::UnsupportedSpec,
        ErrorCode::CapacityUnavailable,
        ErrorCode::QuotaExceeded,
        ErrorCode::Throttled,
        ErrorCode::TryAgainLater,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Conflict,
        ErrorCode::NotFound,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// One invalid configuration field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// The option name (or env var) at fault.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The structured `error.data` of protocol errors. Every field is optional on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorData {
    /// Whether the same call may succeed later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// `"outOfResources"` for capacity and quota problems, else `"other"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// A VM that may exist after this failure; the host must delete it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The cloud's own error code (e.g. `InvalidAMIID.NotFound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_code: Option<String>,
    /// Wait at least this long before retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Invalid configuration fields (with `invalidConfig`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// Protocol versions the plugin supports (with a version mismatch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported: Vec<u32>,
    /// Protocol versions the host offered (with a version mismatch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<u32>,
}

impl ErrorData {
    fn is_empty(&self) -> bool {
        self == &ErrorData::default()
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RpcError {
    /// The numeric code; see [`ErrorCode`].
    pub code: i64,
    /// A human-readable, lowercase message. Never contains secrets or user data.
    pub message: String,
    /// Structured details.
    #[serde(default, skip_serializing_if = "data_is_empty")]
    pub data: Option<ErrorData>,
}

fn data_is_empty(data: &Option<ErrorData>) -> bool {
    data.as_ref().is_none_or(ErrorData::is_empty)
}

impl RpcError {
    /// An error with the given code and message; application codes get `retryable` and `class`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RpcError {
        let data = match code.code() {
            1..=99 => Some(ErrorData {
                retryable: Some(code.default_retryable()),
                class: Some(
                    if matches!(code, ErrorCode::CapacityUnavailable | ErrorCode::QuotaExceeded) {
                        "outOfResources"
                    } else {
                        "other"
                    }
                    .to_owned(),
                ),
                ..ErrorData::default()
            }),
            _ => None,
        };
        RpcError { code: code.code(), message: message.into(), data }
    }

    /// The code as an enum.
    pub fn kind(&self) -> ErrorCode {
        ErrorCode::from_code(self.code)
    }

    /// Mutable access to `data`, created on demand.
    pub fn data_mut(&mut self) -> &mut ErrorData {
        self.data.get_or_insert_with(ErrorData::default)
    }

    /// Attaches the id of a VM that may remain after this failure.
    pub fn with_instance_id(mut self, instance_id: impl Into<String>) -> RpcError {
        self.data_mut().instance_id = Some(instance_id.into());
        self
    }

    /// Attaches the cloud's own error code.
    pub fn with_cloud_code(mut self, cloud_code: impl Into<String>) -> RpcError {
        self.data_mut().cloud_code = Some(cloud_code.into());
        self
    }

    /// Attaches configuration problems.
    pub fn with_problems(mut self, problems: Vec<Problem>) -> RpcError {
        self.data_mut().problems = problems;
        self
    }

    /// The VM id carried in `data`, if any.
    pub fn instance_id(&self) -> Option<&str> {
        self.data.as_ref()?.instance_id.as_deref()
    }

    /// Whether retrying may help: `data.retryable`, else the code's default.
    pub fn retryable(&self) -> bool {
        self.data
            .as_ref()
            .and_then(|d| d.retryable)
            .unwrap_or_else(|| self.kind().default_retryable())
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.message, self.kind().name(), self.code)?;
        if let Some(cloud) = self.data.as_ref().and_then(|d| d.cloud_code.as_deref()) {
            write!(f, " [{cloud}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// An error and its causes on one line (`a: b: c`), for `RpcError` messages and logs: both
/// sides of the protocol report the whole chain, never only its top.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_by_number_and_name() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), code);
            assert_eq!(ErrorCode::from_name(code.name()), Some(code));
        }
        assert_eq!(ErrorCode::from_code(123), ErrorCode::Other(123));
    }

    #[test]
    fn application_errors_carry_retry_and_class() {
        let e = RpcError::new(ErrorCode::CapacityUnavailable, "no capacity");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":4,"message":"no capacity","data":{"retryable":true,"class":"outOfResources"}}"#
        );
        let e = RpcError::new(ErrorCode::MethodNotFound, "nope");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"code":-32601,"message":"nope"}"#);
        assert!(!RpcError::new(ErrorCode::InvalidConfig, "x").retryable());
    }
}
