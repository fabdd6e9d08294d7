//! The SDK's conformance suites against the real `caa-provider-aws` binary pointed at moto.
//! Each check starts its own plugin process against the same moto server.

use caa_plugin::conformance::{self, Suite, Target};

use crate::moto::{BIN, Moto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_conformance_suite_passes_against_moto() {
    let Some(moto) = Moto::start().await else { return };
    let describe = caa_plugin::describe(BIN.as_ref()).await.unwrap();
    let config = serde_json::Value::Object(moto.config(&[]).into_iter().collect());
    let target = Target { plugin: BIN.into(), config, describe };
    let mut lines = Vec::new();
    let report = conformance::run(&target, Suite::All, |l| lines.push(l.to_owned())).await;
    assert_eq!(report.failed, 0, "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("PASS semantic/")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("PASS lifecycle/")), "{lines:#?}");
}
