//! EC2 errors as protocol errors: the AWS error code picks the protocol code (capacity, quota,
//! throttling, credentials, conflicts, bad config or spec), and the message keeps the AWS code and
//! text (`InvalidAMIID.NotFound: The image id '[ami-123456]' does not exist`), which upstream's
//! e2e suite looks for in pod events. The AWS code also travels as `data.cloudCode`.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use caa_plugin_proto::{ErrorCode, RpcError, error_chain};

/// The plugin-specific code (≥ 100) of an AWS error no protocol code describes better.
pub const OTHER_AWS_ERROR: ErrorCode = ErrorCode::Other(100);

/// The protocol code for an EC2 error code.
pub fn classify(aws_code: &str) -> ErrorCode {
    match aws_code {
        "InsufficientInstanceCapacity"
        | "InsufficientCapacity"
        | "InsufficientHostCapacity"
        | "InsufficientReservedInstanceCapacity"
        | "InsufficientAddressCapacity" => ErrorCode::CapacityUnavailable,
        "InstanceLimitExceeded"
        | "VcpuLimitExceeded"
        | "VolumeLimitExceeded"
        | "AddressLimitExceeded"
        | "NetworkInterfaceLimitExceeded"
        | "ResourceLimitExceeded" => ErrorCode::QuotaExceeded,
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => ErrorCode::Throttled,
        "AuthFailure"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "OptInRequired"
        | "Blocked"
        | "PendingVerification"
        | "ExpiredToken" => ErrorCode::Unauthorized,
        "IdempotentParameterMismatch" => ErrorCode::Conflict,
        "ServiceUnavailable" | "Unavailable" | "InternalError" | "InternalFailure" => {
            ErrorCode::TryAgainLater
        }
        c if c.starts_with("InvalidInstanceID.NotFound") => ErrorCode::NotFound,
        c if c.starts_with("InvalidSubnetID")
            || c.starts_with("InvalidGroup")
            || c.starts_with("InvalidKeyPair")
            || c.starts_with("InvalidLaunchTemplate")
            || c == "MissingParameter" =>
        {
            ErrorCode::InvalidConfig
        }
        c if c.starts_with("InvalidAMIID")
            || c.starts_with("InvalidInstanceType")
            || c.starts_with("InvalidParameter")
            || c.starts_with("InvalidVolume")
            || c.starts_with("IncorrectState")
            || c == "Unsupported"
            || c == "UnsupportedOperation" =>
        {
            ErrorCode::UnsupportedSpec
        }
        _ => OTHER_AWS_ERROR,
    }
}

/// `what` failed with an SDK error: code, message and `cloudCode` from the AWS answer; transport
/// failures and timeouts are `tryAgainLater`.
pub fn from_sdk<E, R>(what: &str, err: &SdkError<E, R>) -> RpcError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("no message");
            RpcError::new(classify(code), format!("{what}: {code}: {message}"))
                .with_cloud_code(code)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            RpcError::new(ErrorCode::TryAgainLater, format!("{what}: {}", error_chain(err)))
        }
        other => RpcError::new(OTHER_AWS_ERROR, format!("{what}: {}", error_chain(other))),
    }
}

/// The AWS error code of an SDK error, if the service answered with one.
pub fn aws_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_codes_map_to_protocol_codes() {
        for (aws, want) in [
            ("InsufficientInstanceCapacity", ErrorCode::CapacityUnavailable),
            ("RequestLimitExceeded", ErrorCode::Throttled),
            ("AuthFailure", ErrorCode::Unauthorized),
            ("UnauthorizedOperation", ErrorCode::Unauthorized),
            ("InstanceLimitExceeded", ErrorCode::QuotaExceeded),
            ("VcpuLimitExceeded", ErrorCode::QuotaExceeded),
            ("IdempotentParameterMismatch", ErrorCode::Conflict),
            ("InvalidAMIID.NotFound", ErrorCode::UnsupportedSpec),
            ("InvalidSubnetID.NotFound", ErrorCode::InvalidConfig),
            ("InvalidGroup.NotFound", ErrorCode::InvalidConfig),
            ("InvalidInstanceID.NotFound", ErrorCode::NotFound),
            ("ServiceUnavailable", ErrorCode::TryAgainLater),
            ("SomethingNew", OTHER_AWS_ERROR),
        ] {
            assert_eq!(classify(aws), want, "{aws}");
        }
    }
}
