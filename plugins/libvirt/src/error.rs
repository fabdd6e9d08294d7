//! The plugin's error type and its mapping onto protocol errors: the host decides from the
//! code, so libvirt's error numbers are sorted into transient (`tryAgainLater`), credentials
//! (`unauthorized`), missing objects and plain failures (plugin code 100, `libvirtError`, not
//! retryable). Messages carry libvirt's own text, which never holds user data.

use caa_plugin_proto::{ErrorCode, ErrorData, RpcError};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;

use crate::iso::IsoError;

/// The plugin-specific code for a libvirt call that failed for a reason not otherwise mapped.
pub const LIBVIRT_ERROR_CODE: i64 = 100;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A libvirt call failed.
    #[error("{action}: {}", .source.message())]
    Libvirt {
        /// What the plugin was doing, e.g. `defining domain podvm-x`.
        action: String,
        /// libvirt's error.
        source: virt::error::Error,
    },
    /// libvirt returned XML the plugin cannot read.
    #[error("cannot read libvirt's {what} XML: {message}")]
    Xml {
        /// Which document.
        what: &'static str,
        /// The parser's complaint.
        message: String,
    },
    /// The NoCloud ISO could not be built.
    #[error("building the cidata ISO: {0}")]
    Iso(#[from] IsoError),
    /// The host or the request asks for something the plugin cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The base image volume does not exist (the text is upstream's; its e2e suite matches it).
    #[error("Error in creating volume: Can't retrieve volume {0}")]
    NoBaseVolume(String),
    /// A domain of the same name belongs to another operation.
    #[error("{0}")]
    Conflict(String),
    /// A blocking libvirt task panicked or was cancelled.
    #[error("libvirt task failed: {0}")]
    Task(String),
}

impl Error {
    /// A libvirt failure while doing `action`.
    pub fn libvirt(action: impl Into<String>, source: virt::error::Error) -> Error {
        Error::Libvirt { action: action.into(), source }
    }

    /// Unreadable XML.
    pub fn xml(what: &'static str, message: impl std::fmt::Display) -> Error {
        Error::Xml { what, message: message.to_string() }
    }

    /// libvirt's error number, when this is a libvirt failure.
    pub fn libvirt_code(&self) -> Option<ErrorNumber> {
        match self {
            Error::Libvirt { source, .. } => match source.code() {
                Enum::Known(code) => Some(code),
                Enum::Unknown(_) => None,
            },
            _ => None,
        }
    }

    /// The protocol error for this failure.
    pub fn to_rpc(&self) -> RpcError {
        let message = self.to_string();
        match self {
            Error::Libvirt { source, .. } => {
                let cloud_code = source.code().to_raw().to_string();
                match self.libvirt_code().map(classify) {
                    Some(Some(code)) => RpcError::new(code, message),
                    _ => plain_failure(message),
                }
                .with_cloud_code(format!("virErrorNumber={cloud_code}"))
            }
            Error::Xml { .. } | Error::Task(_) => plain_failure(message),
            Error::Iso(_) => RpcError::new(ErrorCode::InvalidParams, message),
            Error::Unsupported(_) => RpcError::new(ErrorCode::UnsupportedSpec, message),
            Error::NoBaseVolume(_) => RpcError::new(ErrorCode::NotFound, message),
            Error::Conflict(_) => RpcError::new(ErrorCode::Conflict, message),
        }
    }
}

/// The protocol code for a libvirt error number, `None` for a plain failure.
fn classify(code: ErrorNumber) -> Option<ErrorCode> {
    use ErrorNumber as E;
    match code {
        E::NoConnect
        | E::InvalidConn
        | E::SystemError
        | E::Rpc
        | E::Ssh
        | E::Libssh
        | E::OperationTimeout
        | E::AgentUnresponsive
        | E::ResourceBusy
        | E::NoMemory => Some(ErrorCode::TryAgainLater),
        E::AuthFailed
        | E::AuthCancelled
        | E::AuthUnavailable
        | E::OperationDenied
        | E::AccessDenied => Some(ErrorCode::Unauthorized),
        E::NoStoragePool | E::NoNetwork => Some(ErrorCode::InvalidConfig),
        _ => None,
    }
}

/// Code 100: a libvirt failure that retrying will not fix by itself.
fn plain_failure(message: String) -> RpcError {
    RpcError {
        code: LIBVIRT_ERROR_CODE,
        message,
        data: Some(ErrorData {
            retryable: Some(false),
            class: Some("other".to_owned()),
            ..ErrorData::default()
        }),
    }
}

/// An error of a libvirt call, for `?` inside blocking code.
pub trait Context<T> {
    /// Names what the call was doing.
    fn doing(self, action: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, virt::error::Error> {
    fn doing(self, action: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| Error::libvirt(action(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_what_the_host_should_do() {
        assert_eq!(classify(ErrorNumber::SystemError), Some(ErrorCode::TryAgainLater));
        assert_eq!(classify(ErrorNumber::AuthFailed), Some(ErrorCode::Unauthorized));
        assert_eq!(classify(ErrorNumber::NoStoragePool), Some(ErrorCode::InvalidConfig));
        assert_eq!(classify(ErrorNumber::OperationFailed), None);
        let e = plain_failure("x".to_owned());
        assert_eq!((e.code, e.retryable()), (100, false));
        assert_eq!(e.data.unwrap().class.as_deref(), Some("other"));
        let missing = Error::NoBaseVolume("img.qcow2".to_owned()).to_rpc();
        assert_eq!(missing.kind(), ErrorCode::NotFound);
        assert_eq!(missing.message, "Error in creating volume: Can't retrieve volume img.qcow2");
        assert_eq!(Error::Unsupported("x".into()).to_rpc().kind(), ErrorCode::UnsupportedSpec);
        assert_eq!(Error::Conflict("x".into()).to_rpc().kind(), ErrorCode::Conflict);
    }
}
