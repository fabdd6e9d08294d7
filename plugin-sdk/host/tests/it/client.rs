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

#[tokio::test]
async fn calls_sharing_an_operation_keep_their_own_progress_subscribers() {
    crate::support::init_logs();
    let (host_out, plugin_in) = tokio::io::duplex(4096);
    let (mut plugin_out, host_in) = tokio::io::duplex(4096);
    let client = Client::new(host_in, host_out, ClientOptions::default());
    let call = |tx| {
        let client = client.clone();
        let opts = CallOptions::new(Duration::from_secs(30)).operation("op-1").progress(tx);
        tokio::spawn(async move {
            client
                .call_raw("createInstance", serde_json::json!({"operationId": "op-1"}), opts)
                .await
        })
    };
    let mut lines = BufReader::new(plugin_in).lines();
    let (tx1, mut rx1) = tokio::sync::mpsc::unbounded_channel();
    let first = call(tx1);
    let id1 = within(lines.next_line()).await.unwrap().unwrap();
    // A retry with the same operation id while the first call still runs.
    let (tx2, mut rx2) = tokio::sync::mpsc::unbounded_channel();
    let second = call(tx2);
    let id2 = within(lines.next_line()).await.unwrap().unwrap();
    let id = |line: String| serde_json::from_str::<serde_json::Value>(&line).unwrap()["id"].clone();
    let (id1, id2) = (id(id1), id(id2));

    let progress = r#"{"jsonrpc":"2.0","method":"$/progress","params":{"operationId":"op-1","stage":"requested"}}"#;
    plugin_out.write_all(format!("{progress}\n").as_bytes()).await.unwrap();
    assert_eq!(within(rx1.recv()).await.unwrap().stage, "requested");
    assert_eq!(within(rx2.recv()).await.unwrap().stage, "requested");

    let answer = |id: &serde_json::Value| {
        format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"n\":{id}}}}}\n")
    };
    plugin_out.write_all(answer(&id2).as_bytes()).await.unwrap();
    assert_eq!(within(second).await.unwrap().unwrap()["n"], id2);
    // The second call's subscriber is released when it ends; the first one's stays.
    assert!(within(rx2.recv()).await.is_none());
    assert!(rx1.try_recv().is_err() && !rx1.is_closed());
    plugin_out.write_all(answer(&id1).as_bytes()).await.unwrap();
    assert_eq!(within(first).await.unwrap().unwrap()["n"], id1);
    assert!(within(rx1.recv()).await.is_none());
}
