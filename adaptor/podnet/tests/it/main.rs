//! Integration tests of caa-podnet against real network namespaces built with `ip` (worker node,
//! pod, pod VM and its pod namespace on one machine). They need root and the `ip`, `tc` and
//! `nft` tools, so they run only with `CAA_TEST_NETNS=1`; otherwise each prints a skip line.

mod lifecycle;
mod modes;
mod tunnel;
