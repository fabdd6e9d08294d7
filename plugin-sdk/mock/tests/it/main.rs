//! Integration tests that run the real `caa-provider-mock` binary over pipes: the command line,
//! the instance lifecycle over stdio, and the scripted faults as a host would see them.

mod cli;
mod faults;
mod lifecycle;
mod support;
mod tooling;
