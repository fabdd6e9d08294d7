//! Integration tests of the libvirt plugin against libvirt's test driver (a private
//! `test:///<node.xml>` host per test): the provider through its trait, the domain XML golden
//! files, and the real binary under the SDK's conformance suites and from the command line.

mod cli;
mod conformance;
mod driver;
mod golden;
mod support;
