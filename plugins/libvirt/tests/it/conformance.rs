//! The SDK's conformance suites (protocol, lifecycle, semantic) against the real
//! `caa-provider-libvirt` binary configured for a test-driver host. Each check starts its own
//! plugin process, hence its own private test-driver instance.

use caa_plugin::conformance::{self, Suite, Target};

use crate::support::{BIN, TestHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conformance_suite_passes_on_the_test_driver() {
    let host = TestHost::new();
    let describe = caa_plugin::describe(BIN.as_ref()).await.unwrap();
    let target = Target { plugin: BIN.into(), config: host.config(&[]), describe };
    let mut lines = Vec::new();
    let report = conformance::run(&target, Suite::All, |l| lines.push(l.to_owned())).await;
    assert_eq!(report.failed, 0, "{lines:#?}");
    assert_eq!(report.skipped, 0, "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("PASS semantic/")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("PASS lifecycle/")), "{lines:#?}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with(&format!("conformance: {} passed, 0 failed", report.passed)),
        "{lines:#?}"
    );
}
