//! Integration tests of the serve loop: a test client talks to `serve` over
//! `tokio::io::duplex`, with a scripted in-test provider.

mod abandoned;
mod create;
mod lifecycle;
mod protocol;
mod shutdown;
mod support;
