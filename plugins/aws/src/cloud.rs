//! Connecting to EC2: region, subnet, security groups and key pair default from the node's
//! instance metadata (IMDS) when unset, as upstream does; credentials are the static keys when
//! both are set, else the named profile, else the SDK's default chain (environment, web
//! identity, container and instance roles). The endpoint follows `endpointUrl` or the SDK's own
//! `AWS_ENDPOINT_URL*` variables, so an EC2-compatible API can stand in.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::imds::Client as Imds;
use aws_sdk_ec2::config::{Credentials, Region};
use caa_plugin_proto::{ErrorCode, RpcError};

use crate::config::AwsConfig;

/// What IMDS filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDefaults {
    /// `placement/region`.
    pub region: Option<String>,
    /// The primary interface's subnet.
    pub subnet_id: Option<String>,
    /// The primary interface's security groups.
    pub security_group_ids: Vec<String>,
    /// The first public key's name.
    pub key_name: Option<String>,
}

/// Reads the node's defaults for whatever `config` leaves unset. Failures are logged, not fatal
/// (upstream's behaviour): the value stays unset.
pub async fn node_defaults(config: &AwsConfig) -> NodeDefaults {
    let missing = config.region.is_none()
        || config.subnet_id.is_none()
        || config.security_group_ids.is_empty()
        || config.key_name.is_none();
    if !missing || config.imds_disabled {
        return NodeDefaults::default();
    }
    let mut builder = Imds::builder()
        .max_attempts(2)
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(2));
    if let Some(endpoint) = &config.imds_endpoint {
        match builder.endpoint(endpoint) {
            Ok(b) => builder = b,
            Err(e) => {
                tracing::warn!(endpoint, error = %e, "ignoring an invalid IMDS endpoint");
                return NodeDefaults::default();
            }
        }
    }
    let imds = builder.build();
    let get = |path: &'static str| {
        let imds = imds.clone();
        async move {
            match imds.get(format!("/latest/meta-data/{path}")).await {
                Ok(v) => Some(v.as_ref().trim().to_owned()).filter(|v| !v.is_empty()),
                Err(e) => {
                    tracing::warn!(path, error = %e, "instance metadata not available");
                    None
                }
            }
        }
    };
    let mut found = NodeDefaults::default();
    if config.region.is_none() {
        found.region = get("placement/region").await;
    }
    if config.key_name.is_none() {
        // `0=<name>` per line.
        found.key_name = get("public-keys/").await.and_then(|keys| {
            keys.lines().next().and_then(|l| l.split_once('=')).map(|(_, n)| n.to_owned())
        });
    }
    if config.subnet_id.is_some() && !config.security_group_ids.is_empty() {
        return found;
    }
    let Some(mac) = get("mac").await else { return found };
    let base = format!("/latest/meta-data/network/interfaces/macs/{mac}");
    if config.subnet_id.is_none() {
        found.subnet_id = imds
            .get(format!("{base}/subnet-id"))
            .await
            .ok()
            .map(|v| v.as_ref().trim().to_owned())
            .filter(|v| !v.is_empty());
    }
    if config.security_group_ids.is_empty() {
        found.security_group_ids = imds
            .get(format!("{base}/security-group-ids"))
            .await
            .map(|v| v.as_ref().split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
    }
    tracing::info!(?found, "defaults from the node's instance metadata");
    found
}

/// The EC2 client for `config` in `region` (`None`: the SDK's region chain).
pub async fn ec2_client(
    config: &AwsConfig,
    region: Option<&str>,
) -> Result<aws_sdk_ec2::Client, RpcError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(keys) = &config.keys {
        let creds = Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_key.clone(),
            keys.session_token.clone(),
            None,
            "caa-static",
        );
        loader = loader.credentials_provider(creds);
    } else if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(RpcError::new(
            ErrorCode::InvalidConfig,
            "no AWS region: set region (AWS_REGION) or run on an EC2 node",
        ));
    }
    Ok(aws_sdk_ec2::Client::new(&sdk))
}
