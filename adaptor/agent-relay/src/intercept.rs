//! The hook through which the proxy and the forwarder change the few calls they must (a
//! CreateContainer rewrite, a CreateSandbox DNS wipe). Everything else passes as raw bytes.

use std::fmt::Debug;

/// One call as the relay saw it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Full service name (`grpc.AgentService`, `grpc.Health`, …).
    pub service: &'a str,
    /// Method name.
    pub method: &'a str,
    /// The encoded request message.
    pub payload: &'a [u8],
}

/// What to do with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Relay the frame unchanged.
    Forward,
    /// Relay it with this request message instead (the envelope keeps every other field).
    Rewrite(Vec<u8>),
    /// Answer the caller with this status without relaying.
    Reject {
        /// google.rpc.Code.
        code: i32,
        /// Status message.
        message: String,
    },
}

/// Decides per call. Runs on the connection's read loop, so it must be quick and must not
/// block; a call it does not recognise must get [`Verdict::Forward`].
pub trait Interceptor: Send + Sync + Debug + 'static {
    /// The verdict for one request.
    fn intercept(&self, call: &Call<'_>) -> Verdict;
}

/// Relays everything unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl Interceptor for PassThrough {
    fn intercept(&self, _call: &Call<'_>) -> Verdict {
        Verdict::Forward
    }
}

/// google.rpc.Code values the relay answers with.
pub mod code {
    /// Malformed request.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// Deadline passed.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// Message too large.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// Interceptor refused the call's content.
    pub const FAILED_PRECONDITION: i32 = 9;
    /// Server bug.
    pub const INTERNAL: i32 = 13;
    /// The upstream connection is down or was lost with the call in flight.
    pub const UNAVAILABLE: i32 = 14;
}
