//! The one mapping from sandbox errors to ttrpc statuses. Messages are the errors' `Display`
//! texts, which start with upstream's wording (Kata puts them into pod events).

use caa_kata_protos::{Code, rpc_error};
use caa_plugin_proto::ErrorCode;

use crate::sandbox::{InfoError, SandboxError};

/// The status a failed Hypervisor call answers with.
pub(crate) fn to_ttrpc(e: &SandboxError) -> caa_kata_protos::ttrpc::Error {
    let code = match e {
        SandboxError::EmptyId
        | SandboxError::InvalidId(_)
        | SandboxError::Pod(_)
        | SandboxError::UserData(_) => Code::INVALID_ARGUMENT,
        SandboxError::AlreadyExists(_) => Code::ALREADY_EXISTS,
        SandboxError::Unknown(_) | SandboxError::UnknownOnStop(_) => Code::NOT_FOUND,
        SandboxError::AlreadyStarted(_) => Code::FAILED_PRECONDITION,
        SandboxError::Create(call)
            if matches!(**call, caa_plugin_host::CallError::Timeout { .. }) =>
        {
            Code::DEADLINE_EXCEEDED
        }
        SandboxError::Create(call)
            if matches!(
                **call,
                caa_plugin_host::CallError::Unavailable { .. }
                    | caa_plugin_host::CallError::Crashed { .. }
                    | caa_plugin_host::CallError::Closed { .. }
            ) =>
        {
            Code::UNAVAILABLE
        }
        SandboxError::Create(call) => match call.code() {
            Some(ErrorCode::CapacityUnavailable | ErrorCode::QuotaExceeded) => {
                Code::RESOURCE_EXHAUSTED
            }
            Some(ErrorCode::InvalidConfig | ErrorCode::UnsupportedSpec) => Code::INVALID_ARGUMENT,
            Some(ErrorCode::Unauthorized) => Code::PERMISSION_DENIED,
            Some(ErrorCode::DeadlineExceeded) => Code::DEADLINE_EXCEEDED,
            Some(ErrorCode::Throttled | ErrorCode::TryAgainLater) => Code::UNAVAILABLE,
            _ => Code::UNKNOWN,
        },
        SandboxError::NoIp | SandboxError::Agent { .. } | SandboxError::ShuttingDown => {
            Code::UNAVAILABLE
        }
        SandboxError::Deadline(_) => Code::DEADLINE_EXCEEDED,
        // A pod namespace that is not what the CNI should have made (no default route, no or
        // several addresses) is the caller's problem; netlink failures are ours.
        SandboxError::Inspect { .. } => Code::FAILED_PRECONDITION,
        SandboxError::Tunnel { .. } => Code::INTERNAL,
        SandboxError::Files { .. } | SandboxError::State(_) | SandboxError::Tls(_) => {
            Code::INTERNAL
        }
    };
    rpc_error(code, e.to_string())
}

/// The status a failed GetInfo answers with.
pub(crate) fn info_to_ttrpc(e: &InfoError) -> caa_kata_protos::ttrpc::Error {
    let code = match e {
        InfoError::NotFound { .. } => Code::NOT_FOUND,
        InfoError::Deadline { .. } => Code::DEADLINE_EXCEEDED,
    };
    rpc_error(code, e.to_string())
}
