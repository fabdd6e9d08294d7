//! The client without a process: over `tokio::io::duplex`, a closed connection fails waiting
//! calls and carries the instance id announced by `$/progress`.

use std::time::Duration;

use caa_plugin_host::{CallError, CallOptions, Client, ClientOptions};
use caa_plugin_proto::Empty;
use caa_plugin_proto::method::Ping;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::within;

#[tokio::test]
async fn closed_connection_fails_pending_calls_with_the_announced_instance() {
    crate::support::init_logs();
    let (host_out, plugin_in) = tokio::io::duplex(4096);
    let (plugin_out, host_in) = tokio::io::duplex(4096);
    let opts = ClientOptions { name: "duplex".into(), ..ClientOptions::default() };
    let client = Client::new(host_in, host_out, opts);

    let server = tokio::spawn(async move {
        let mut lines = BufReader::new(plugin_in).lines();
        let mut out = plugin_out;
        let request: serde_json::Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(request["method"], "createInstance");
        let progress = r#"{"jsonrpc":"2.0","method":"$/progress","params":{"operationId":"op-1","stage":"instanceCreated","instanceId":"i-early"}}"#;
        out.write_all(format!("{progress}\n").as_bytes()).await.unwrap();
        // Hang up without answering.
    });

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = CallOptions::new(Duration::from_secs(30)).operation("op-1").progress(tx);
    let err =
        within(client.call_raw("createInstance", serde_json::json!({"operationId": "op-1"}), opts))
            .await
            .unwrap_err();
    server.await.unwrap();
    assert!(matches!(&err, CallError::Closed { plugin, .. } if plugin == "duplex"), "{err:?}");
    assert_eq!(err.instance_id(), Some("i-early"));
    assert_eq!(rx.recv().await.unwrap().instance_id.as_deref(), Some("i-early"));
    within(client.closed()).await;
    let err =
        client.call::<Ping>(&Empty {}, CallOptions::new(Duration::from_secs(1))).await.unwrap_err();
    assert!(matches!(err, CallError::Closed { .. }), "{err:?}");
}
