//! A ttrpc relay for the Kata agent protocol, used twice on the agent path: by the adaptor's
//! per-sandbox agent proxy (shim → forwarder) and by the pod VM's agent-protocol-forwarder
//! (proxy → kata-agent).
//!
//! It relays **frames, not methods**: a request is parsed only for its service, method and
//! deadline, and relayed as the bytes it arrived as, with the stream id remapped onto the
//! shared upstream connection ([`Upstream`]: odd, increasing ids, as Go ttrpc ≥ 1.2 demands).
//! Methods added to the agent API later pass through without a rebuild. An [`Interceptor`]
//! sees every call and may rewrite or refuse the few that must change; rewriting swaps the
//! request message inside the envelope and keeps the envelope's other fields (metadata,
//! deadline) byte for byte ([`envelope::replace_payload`]).
//!
//! Failure behaviour: a malformed or oversized request is answered with a status on its own
//! stream and the connection stays up; when the upstream drops, calls in flight are answered
//! UNAVAILABLE, a reconnect starts at once, and later calls wait (bounded) for it.

mod dial;
pub mod envelope;
pub mod frame;
mod intercept;
mod outbox;
mod relay;
mod upstream;

pub use dial::{TcpDialer, UnixDialer, bind_unix};
pub use frame::{Frame, FrameError, MAX_DATA_LEN};
pub use intercept::{Call, Interceptor, PassThrough, Verdict, code};
pub use outbox::DOWNSTREAM_BUDGET;
pub use relay::Relay;
pub use upstream::{AsyncIo, Backoff, BoxedIo, DialFuture, Dialer, Upstream};
