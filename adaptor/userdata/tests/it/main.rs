//! Integration tests of caa-userdata: golden renderings in upstream's exact format, round trips
//! through the VM-side parser, size limits, secret redaction and hostile parser input.

mod golden;
mod hostile;
mod item_keys;
mod limits;
mod roundtrip;
mod support;
