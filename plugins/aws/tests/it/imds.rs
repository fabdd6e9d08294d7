//! Node defaults from the instance metadata service: a minimal IMDSv2 on loopback (token PUT,
//! then GETs carrying the token) answers what an EC2 node would, and the plugin fills region,
//! subnet, security groups and key pair from it, and nothing it was given.

use std::collections::BTreeMap;

use caa_plugin_sdk::Config;
use caa_provider_aws::AwsConfig;
use caa_provider_aws::cloud::node_defaults;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "test-imds-token";

fn answer(method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    if method == "PUT" && path == "/latest/api/token" {
        return (200, TOKEN.to_owned());
    }
    if token != Some(TOKEN) {
        return (401, String::new());
    }
    let base = "/latest/meta-data/";
    let body = match path.strip_prefix(base) {
        Some("placement/region") => "eu-west-3",
        Some("public-keys/") => "0=node-key",
        Some("mac") => "0e:aa:bb:cc:dd:ee",
        Some("network/interfaces/macs/0e:aa:bb:cc:dd:ee/subnet-id") => "subnet-0abc",
        Some("network/interfaces/macs/0e:aa:bb:cc:dd:ee/security-group-ids") => "sg-1\nsg-2",
        _ => return (404, String::new()),
    };
    (200, body.to_owned())
}

/// Serves IMDSv2 on a free port until the test ends; returns its URL.
async fn fake_imds() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let token = head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-aws-ec2-metadata-token: "))
                    .or_else(|| {
                        head.lines().find_map(|l| l.strip_prefix("X-aws-ec2-metadata-token: "))
                    });
                let (status, body) = answer(method, path, token.map(str::trim));
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

fn config(extra: &[(&str, Value)]) -> AwsConfig {
    let mut values: BTreeMap<String, Value> =
        BTreeMap::from([("imageId".to_owned(), json!("ami-1"))]);
    for (k, v) in extra {
        values.insert((*k).to_owned(), v.clone());
    }
    AwsConfig::from_config(&Config::from_values(values)).unwrap()
}

#[tokio::test]
async fn unset_options_come_from_the_nodes_metadata_and_set_ones_stay() {
    let url = fake_imds().await;
    let found = node_defaults(&config(&[("imdsEndpoint", json!(url))])).await;
    assert_eq!(found.region.as_deref(), Some("eu-west-3"));
    assert_eq!(found.key_name.as_deref(), Some("node-key"));
    assert_eq!(found.subnet_id.as_deref(), Some("subnet-0abc"));
    assert_eq!(found.security_group_ids, ["sg-1", "sg-2"]);

    let given = config(&[
        ("imdsEndpoint", json!(url)),
        ("region", json!("us-east-1")),
        ("subnetId", json!("subnet-given")),
        ("securityGroupIds", json!(["sg-given"])),
        ("keyName", json!("given-key")),
    ]);
    assert_eq!(node_defaults(&given).await, Default::default(), "nothing asked when all is set");
    let off = config(&[("imdsEndpoint", json!(url)), ("imdsDisabled", json!(true))]);
    assert_eq!(node_defaults(&off).await, Default::default());
}

#[tokio::test]
async fn a_node_without_metadata_leaves_the_options_unset() {
    // Nothing listens on this port: every lookup fails fast and is only logged.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let found =
        node_defaults(&config(&[("imdsEndpoint", json!(format!("http://127.0.0.1:{port}")))]))
            .await;
    assert_eq!(found, Default::default());
}
