//! The answers the SDK gives on a handler's behalf (cancel grace, deadline or drain passed; the
//! handler still runs), and the report of a create that finished after such an answer. A create
//! that announced no instance is answered -32603 (indeterminate): the abandoned work may still
//! create a VM, and -32800 or 8 without `instanceId` would tell the host that nothing remains.

use caa_plugin_proto::method::CreateInstance;
use caa_plugin_proto::{CreateInstanceResult, ErrorCode, Method, RpcError};

use crate::ctx::OpState;

/// Why the SDK answers for a handler that still runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Overrun {
    /// `$/cancel` arrived and the cancel grace passed.
    Cancel,
    /// The drain ran out of time (or the host is gone) and the cancel grace passed.
    Drain,
    /// The deadline and its grace passed.
    Deadline,
}

impl Overrun {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Overrun::Cancel => "handler did not answer within the cancel grace",
            Overrun::Drain => "handler still running when the drain ended",
            Overrun::Deadline => "handler ran past its deadline",
        }
    }

    /// The answer for the handler. A create that announced no instance gets -32603: its outcome
    /// is unknown (the handler still runs and may yet create one), so the host must look for it
    /// by the `caa/operation-id` tag; -32800 or 8 without `instanceId` would state that nothing
    /// remains.
    pub(crate) fn error(self, method: &str, state: &OpState) -> RpcError {
        if method == CreateInstance::NAME && state.instance_id().is_none() {
            return RpcError::new(
                ErrorCode::InternalError,
                "create abandoned by the provider; outcome unknown",
            );
        }
        match self {
            Overrun::Cancel => sdk_error(ErrorCode::RequestCancelled, "request cancelled", state),
            Overrun::Drain => {
                sdk_error(ErrorCode::RequestCancelled, "plugin is shutting down", state)
            }
            Overrun::Deadline => sdk_error(
                ErrorCode::DeadlineExceeded,
                &format!("{method} ran past its deadline"),
                state,
            ),
        }
    }
}

/// Makes visible a create that finished after the SDK answered for it: a VM it reports reaches
/// nobody and must be cleaned up by the host's tag-based reconciliation.
pub(crate) fn report_abandoned_create(outcome: &Result<CreateInstanceResult, RpcError>) {
    match outcome {
        Ok(result) => tracing::error!(
            instance_id = %result.instance_id,
            "the provider created instance {} after the SDK answered for it; \
             it may be leaked unless the host finds it by its caa/operation-id tag",
            result.instance_id
        ),
        Err(error) => match error.instance_id() {
            Some(instance_id) => tracing::error!(
                instance_id,
                code = error.code,
                "the provider failed after the SDK answered for it and reports instance \
                 {instance_id} may remain; it may be leaked unless the host finds it by its \
                 caa/operation-id tag"
            ),
            None => tracing::info!(
                code = error.code,
                "abandoned create failed after the SDK answered for it; nothing remains"
            ),
        },
    }
}

/// An error the SDK gives on a handler's behalf, naming the instance it may have left behind.
pub(crate) fn sdk_error(code: ErrorCode, message: &str, state: &OpState) -> RpcError {
    let error = RpcError::new(code, message);
    match state.instance_id() {
        Some(instance_id) => error.with_instance_id(instance_id),
        None => error,
    }
}
