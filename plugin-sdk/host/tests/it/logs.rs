//! Logging: plugin stderr is forwarded through `tracing`, and secrets (secret config options and
//! `userData`) never reach the host's logs. The capture is global (see `support::init_logs`), so
//! the secret check covers every test's logs.

use std::collections::BTreeMap;

use caa_plugin_host::{CallError, Plugin};
use caa_plugin_proto::method::CreateInstance;

use crate::support::{Fake, create_params, logs, wait_until, within};

#[tokio::test]
async fn secrets_never_reach_the_logs_and_stderr_is_forwarded() {
    let fake = Fake::new();
    let mut spec = fake.spec("crash_on_create");
    spec.config = BTreeMap::from([
        ("region".to_owned(), serde_json::json!("eu-west-1")),
        ("apiKey".to_owned(), serde_json::json!("TOPSECRET-api-key-123")),
    ]);
    let plugin = within(Plugin::start(&spec)).await.unwrap();
    let pid = plugin.pid();
    let mut params = create_params("op-logs");
    params.user_data = "#cloud-config\nUSERDATA-SECRET-456\n".to_owned();
    let err = within(plugin.call::<CreateInstance>(&params)).await.unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    assert!(!err.to_string().contains("SECRET"));
    let crash = format!("plugin exited unexpectedly plugin=fake pid={pid}");
    wait_until("the crash was logged", || logs().contains(&crash)).await;

    let logs = logs();
    let ours: Vec<&str> = logs.lines().filter(|l| l.contains(&format!("pid={pid}"))).collect();
    let has = |needle: &str| ours.iter().any(|l| l.contains(needle));
    assert!(
        has(" WARN caa_plugin: [WARN] stderr hello plugin=fake"),
        "stderr forwarded: {ours:#?}"
    );
    assert!(has(" INFO caa_plugin: boom: last words plugin=fake"), "{ours:#?}");
    assert!(has(r#"config={"apiKey":"<redacted>","region":"eu-west-1"}"#), "{ours:#?}");
    assert!(!logs.contains("TOPSECRET-api-key-123"), "secret config leaked:\n{logs}");
    assert!(!logs.contains("USERDATA-SECRET-456"), "userData leaked:\n{logs}");
}
