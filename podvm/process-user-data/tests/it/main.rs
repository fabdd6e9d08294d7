//! Integration tests of process-user-data: temporary VM roots, local servers playing the Azure
//! and AWS metadata services, and the binary itself.

mod binary;
mod initdata;
mod provisioning;
mod sources;
mod support;
