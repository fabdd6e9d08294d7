//! A `moto_server` per test: started on a free loopback port with AMI and instance-type
//! validation on (so bad ids fail as on EC2), killed on drop. The plugin config and an EC2
//! client for assertions both point at it. The benchmark includes this file too and uses only
//! part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caa_plugin_host::{Plugin, PluginCommand, PluginSpec};
use caa_provider_aws::AwsConfig;
use serde_json::{Value, json};

/// The plugin binary.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_caa-provider-aws");
/// Makes a missing moto a failure instead of a skip.
pub(crate) const GATE: &str = "CAA_TEST_MOTO";
/// Region of every test.
pub(crate) const REGION: &str = "us-east-1";

/// A running moto server.
pub(crate) struct Moto {
    child: Child,
    pub(crate) url: String,
    pub(crate) image: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Moto {
    /// Starts moto, or returns `None` after printing a skip line when it is not installed and
    /// the gate is not set.
    pub(crate) async fn start() -> Option<Moto> {
        if !moto_installed() {
            assert!(
                std::env::var(GATE).as_deref() != Ok("1"),
                "{GATE}=1 but moto is not installed: pip install 'moto[ec2,server]'"
            );
            eprintln!("skipping: moto is not installed (pip install 'moto[ec2,server]')");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut moto =
            Moto { child, url: format!("http://127.0.0.1:{port}"), image: String::new() };
        let images = moto.ec2().await.describe_images().send().await.expect("DescribeImages");
        moto.image = images
            .images()
            .iter()
            .find(|i| i.root_device_name().is_some())
            .and_then(|i| i.image_id())
            .expect("moto has an image with a root device")
            .to_owned();
        Some(moto)
    }

    /// The plugin's `initialize.config` against this server, with `extra` on top.
    pub(crate) fn config(&self, extra: &[(&str, Value)]) -> BTreeMap<String, Value> {
        let mut config = BTreeMap::from([
            ("endpointUrl".to_owned(), json!(self.url)),
            ("region".to_owned(), json!(REGION)),
            ("accessKeyId".to_owned(), json!("testing")),
            ("secretKey".to_owned(), json!("testing")),
            ("imdsDisabled".to_owned(), json!(true)),
            ("imageId".to_owned(), json!(self.image)),
            ("instanceType".to_owned(), json!("t3.small")),
            ("instanceTypes".to_owned(), json!(["t3.small", "t3.medium", "m5.large", "m5.xlarge"])),
            ("tags".to_owned(), json!({"team": "peerpods"})),
        ]);
        for (k, v) in extra {
            config.insert((*k).to_owned(), v.clone());
        }
        config
    }

    /// The plugin started through the host library with [`Moto::config`].
    pub(crate) async fn plugin(&self, extra: &[(&str, Value)]) -> Plugin {
        let mut spec = PluginSpec::new("aws", PluginCommand::new(BIN));
        spec.config = self.config(extra);
        Plugin::start(&spec).await.expect("starting caa-provider-aws")
    }

    /// An EC2 client of our own, for assertions.
    pub(crate) async fn ec2(&self) -> aws_sdk_ec2::Client {
        let mut values = self.config(&[]);
        values.insert("imageId".to_owned(), json!("unused-here"));
        let config = caa_plugin_sdk::Config::from_values(values);
        let config = AwsConfig::from_config(&config).expect("test config");
        caa_provider_aws::cloud::ec2_client(&config, Some(REGION)).await.expect("EC2 client")
    }
}
