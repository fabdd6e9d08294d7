//! Integration tests of `caa-provider-aws` against moto's EC2 emulator (`moto_server`, started
//! per test by the fixture on a free loopback port): the real plugin binary driven through the
//! host library the adaptor uses, its effects checked with EC2 calls of our own, and the SDK's
//! conformance suites; node defaults against a loopback IMDSv2. The moto tests need
//! `pip install 'moto[ec2,server]'`; without moto they print a skip line, unless
//! `CAA_TEST_MOTO=1` (which `.ci/run` sets) makes a missing moto a failure.

mod cli;
mod conformance;
mod imds;
mod lifecycle;
mod moto;
