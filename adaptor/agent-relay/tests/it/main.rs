//! The relay against a real ttrpc server (the test agent) and real ttrpc clients over unix
//! sockets: pass-through, interception, stream-id remapping, bad input, upstream loss.

mod fixture;
mod passthrough;
mod resilience;
