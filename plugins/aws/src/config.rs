//! The aws plugin's options: upstream's sixteen under their environment names and defaults
//! (caa-facts §1.5), plus the standard AWS endpoint and profile variables, and [`AwsConfig`], the
//! typed form parsed once at `initialize`. Credentials are secret options: they reach the plugin
//! through its environment or `initialize`, never its command line, and never its logs.

use std::collections::BTreeMap;

use caa_plugin_proto::{ConfigOption, ConfigSchema, OptionKind, Problem, RpcError};
use caa_plugin_sdk::Config;
use serde_json::{Value, json};

/// Option names, as they appear in `initialize.config`.
pub mod name {
    /// Static access key id.
    pub const ACCESS_KEY_ID: &str = "accessKeyId";
    /// Static secret key.
    pub const SECRET_KEY: &str = "secretKey";
    /// Static session token.
    pub const SESSION_TOKEN: &str = "sessionToken";
    /// Default instance type.
    pub const INSTANCE_TYPE: &str = "instanceType";
    /// Region.
    pub const REGION: &str = "region";
    /// Launch template name.
    pub const LAUNCH_TEMPLATE_NAME: &str = "launchTemplateName";
    /// Launch template mode.
    pub const USE_LAUNCH_TEMPLATE: &str = "useLaunchTemplate";
    /// AMI.
    pub const IMAGE_ID: &str = "imageId";
    /// SSH key pair.
    pub const KEY_NAME: &str = "keyName";
    /// Subnet.
    pub const SUBNET_ID: &str = "subnetId";
    /// Reach the VM at its public address.
    pub const USE_PUBLIC_IP: &str = "usePublicIp";
    /// Root volume size, GiB.
    pub const ROOT_VOLUME_SIZE: &str = "rootVolumeSize";
    /// No SEV-SNP.
    pub const DISABLE_CVM: &str = "disableCvm";
    /// Shared-config profile.
    pub const PROFILE: &str = "profile";
    /// Security groups.
    pub const SECURITY_GROUP_IDS: &str = "securityGroupIds";
    /// Allowed instance types.
    pub const INSTANCE_TYPES: &str = "instanceTypes";
    /// Extra instance tags.
    pub const TAGS: &str = "tags";
    /// EC2 endpoint override.
    pub const ENDPOINT_URL: &str = "endpointUrl";
    /// Instance metadata service endpoint override.
    pub const IMDS_ENDPOINT: &str = "imdsEndpoint";
    /// Skip the instance metadata service.
    pub const IMDS_DISABLED: &str = "imdsDisabled";
}

/// The environment variables of upstream's sixteen aws options (caa-facts §1.5; `-aws-profile`
/// is flag-only upstream and reads the SDK's `AWS_PROFILE` here), every one an option here.
pub const UPSTREAM_ENV: [&str; 17] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "PODVM_INSTANCE_TYPE",
    "AWS_REGION",
    "PODVM_LAUNCHTEMPLATE_NAME",
    "USE_PODVM_LAUNCHTEMPLATE",
    "PODVM_AMI_ID",
    "SSH_KP_NAME",
    "AWS_SUBNET_ID",
    "USE_PUBLIC_IP",
    "ROOT_VOLUME_SIZE",
    "DISABLECVM",
    "AWS_PROFILE",
    "AWS_SG_IDS",
    "PODVM_INSTANCE_TYPES",
    "TAGS",
];

/// Upstream's default instance type.
pub const DEFAULT_INSTANCE_TYPE: &str = "m6a.large";

fn option(name: &str, env: &str, kind: OptionKind, default: Value, help: &str) -> ConfigOption {
    ConfigOption {
        default: Some(default),
        description: help.to_owned(),
        ..ConfigOption::new(name, env, kind)
    }
}

fn secret(name: &str, env: &str, help: &str) -> ConfigOption {
    ConfigOption {
        secret: true,
        description: help.to_owned(),
        ..ConfigOption::new(name, env, OptionKind::String)
    }
}

/// The option table, in upstream's order.
pub fn schema() -> ConfigSchema {
    use OptionKind::{Bool, Integer, String as Text, StringList, StringMap};
    let options = vec![
        secret(name::ACCESS_KEY_ID, "AWS_ACCESS_KEY_ID", "static access key id"),
        secret(name::SECRET_KEY, "AWS_SECRET_ACCESS_KEY", "static secret access key"),
        secret(name::SESSION_TOKEN, "AWS_SESSION_TOKEN", "static session token"),
        option(
            name::INSTANCE_TYPE,
            "PODVM_INSTANCE_TYPE",
            Text,
            json!(DEFAULT_INSTANCE_TYPE),
            "default instance type",
        ),
        option(name::REGION, "AWS_REGION", Text, json!(""), "region; empty: the node's (IMDS)"),
        option(
            name::LAUNCH_TEMPLATE_NAME,
            "PODVM_LAUNCHTEMPLATE_NAME",
            Text,
            json!("kata"),
            "launch template name",
        ),
        option(
            name::USE_LAUNCH_TEMPLATE,
            "USE_PODVM_LAUNCHTEMPLATE",
            Bool,
            json!(false),
            "create from the launch template",
        ),
        ConfigOption {
            required: true,
            description: "AMI of the pod VM image".to_owned(),
            ..ConfigOption::new(name::IMAGE_ID, "PODVM_AMI_ID", Text)
        },
        option(name::KEY_NAME, "SSH_KP_NAME", Text, json!(""), "SSH key pair; empty: the node's"),
        option(name::SUBNET_ID, "AWS_SUBNET_ID", Text, json!(""), "subnet; empty: the node's"),
        option(
            name::USE_PUBLIC_IP,
            "USE_PUBLIC_IP",
            Bool,
            json!(false),
            "reach the pod VM at its public IP",
        ),
        option(
            name::ROOT_VOLUME_SIZE,
            "ROOT_VOLUME_SIZE",
            Integer,
            json!(30),
            "root volume GiB (raised to the image's size); 0: the image's",
        ),
        option(name::DISABLE_CVM, "DISABLECVM", Bool, json!(false), "no AMD SEV-SNP"),
        option(name::PROFILE, "AWS_PROFILE", Text, json!(""), "shared-config profile"),
        option(
            name::SECURITY_GROUP_IDS,
            "AWS_SG_IDS",
            StringList,
            json!([]),
            "security groups; empty: the node's",
        ),
        option(
            name::INSTANCE_TYPES,
            "PODVM_INSTANCE_TYPES",
            StringList,
            json!([]),
            "allowed instance types; empty: only the default",
        ),
        option(name::TAGS, "TAGS", StringMap, json!({}), "extra instance tags, k=v,k2=v2"),
        option(
            name::ENDPOINT_URL,
            "AWS_ENDPOINT_URL",
            Text,
            json!(""),
            "EC2 endpoint (an EC2-compatible API); empty: AWS's",
        ),
        option(
            name::IMDS_ENDPOINT,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            Text,
            json!(""),
            "instance metadata service endpoint; empty: the standard one",
        ),
        option(
            name::IMDS_DISABLED,
            "AWS_EC2_METADATA_DISABLED",
            Bool,
            json!(false),
            "never ask the instance metadata service for defaults",
        ),
    ];
    ConfigSchema { options }
}

/// Static credentials. `Debug` shows only the key id.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_key: String,
    /// Session token.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The plugin's configuration after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Static keys when both id and secret are set; otherwise the SDK's chain.
    pub keys: Option<StaticKeys>,
    /// Shared-config profile.
    pub profile: Option<String>,
    /// Region (`None`: from IMDS, then the SDK's chain).
    pub region: Option<String>,
    /// Default instance type.
    pub instance_type: String,
    /// Allowed instance types.
    pub instance_types: Vec<String>,
    /// AMI.
    pub image_id: String,
    /// Launch template mode and name.
    pub launch_template: Option<String>,
    /// Key pair.
    pub key_name: Option<String>,
    /// Subnet.
    pub subnet_id: Option<String>,
    /// Security groups.
    pub security_group_ids: Vec<String>,
    /// Public-IP mode.
    pub use_public_ip: bool,
    /// Root volume GiB (0: the image's).
    pub root_volume_gib: i32,
    /// Request SEV-SNP.
    pub cvm: bool,
    /// Extra instance tags.
    pub tags: BTreeMap<String, String>,
    /// EC2 endpoint override.
    pub endpoint_url: Option<String>,
    /// IMDS endpoint override.
    pub imds_endpoint: Option<String>,
    /// Skip IMDS.
    pub imds_disabled: bool,
}

impl AwsConfig {
    /// Parses the resolved option values; every bad value is one `invalidConfig` problem.
    pub fn from_config(config: &Config) -> Result<AwsConfig, RpcError> {
        let mut problems = Vec::new();
        let text = |key: &str| config.str(key).map(str::trim).filter(|s| !s.is_empty());
        let owned = |key: &str| text(key).map(str::to_owned);
        let keys = match (owned(name::ACCESS_KEY_ID), owned(name::SECRET_KEY)) {
            (Some(access_key_id), Some(secret_key)) => Some(StaticKeys {
                access_key_id,
                secret_key,
                session_token: owned(name::SESSION_TOKEN),
            }),
            (Some(_), None) | (None, Some(_)) => {
                problems.push(Problem {
                    field: name::SECRET_KEY.to_owned(),
                    message: "static credentials need both accessKeyId and secretKey".to_owned(),
                });
                None
            }
            (None, None) => None,
        };
        let image_id = owned(name::IMAGE_ID).unwrap_or_default();
        if image_id.is_empty() {
            problems.push(Problem {
                field: name::IMAGE_ID.to_owned(),
                message: "ImageId is empty".to_owned(),
            });
        }
        let root = config.i64(name::ROOT_VOLUME_SIZE).unwrap_or(0);
        let root_volume_gib = i32::try_from(root).ok().filter(|n| *n >= 0).unwrap_or_else(|| {
            problems.push(Problem {
                field: name::ROOT_VOLUME_SIZE.to_owned(),
                message: "must be 0 or a positive number of GiB".to_owned(),
            });
            0
        });
        let tags = config.map(name::TAGS);
        if let Some(bad) = tags.keys().find(|k| k.is_empty() || k.starts_with("aws:")) {
            problems.push(Problem {
                field: name::TAGS.to_owned(),
                message: format!("invalid tag key {bad:?}"),
            });
        }
        let parsed = AwsConfig {
            keys,
            profile: owned(name::PROFILE),
            region: owned(name::REGION),
            instance_type: owned(name::INSTANCE_TYPE)
                .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned()),
            instance_types: config.list(name::INSTANCE_TYPES),
            image_id,
            launch_template: config
                .bool(name::USE_LAUNCH_TEMPLATE)
                .then(|| owned(name::LAUNCH_TEMPLATE_NAME).unwrap_or_else(|| "kata".to_owned())),
            key_name: owned(name::KEY_NAME),
            subnet_id: owned(name::SUBNET_ID),
            security_group_ids: config.list(name::SECURITY_GROUP_IDS),
            use_public_ip: config.bool(name::USE_PUBLIC_IP),
            root_volume_gib,
            cvm: !config.bool(name::DISABLE_CVM),
            tags,
            endpoint_url: owned(name::ENDPOINT_URL),
            imds_endpoint: owned(name::IMDS_ENDPOINT),
            imds_disabled: config.bool(name::IMDS_DISABLED),
        };
        if problems.is_empty() {
            return Ok(parsed);
        }
        Err(caa_plugin_sdk::config::invalid(crate::provider::PROVIDER_NAME, problems))
    }
}

#[cfg(test)]
mod tests {
    use caa_plugin_proto::ErrorCode;

    use super::*;

    fn parse(pairs: &[(&str, Value)]) -> Result<AwsConfig, RpcError> {
        let given: BTreeMap<String, Value> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let config = Config::resolve(&schema(), &given, &|_| None)?;
        AwsConfig::from_config(&config)
    }

    #[test]
    fn upstream_defaults() {
        let c = parse(&[(name::IMAGE_ID, json!("ami-1"))]).unwrap();
        assert_eq!(c.instance_type, "m6a.large");
        assert_eq!(c.root_volume_gib, 30);
        assert!(c.cvm && !c.use_public_ip && c.launch_template.is_none() && c.keys.is_none());
        let names: Vec<_> = schema().options.iter().filter_map(|o| o.env.clone()).collect();
        for env in UPSTREAM_ENV {
            assert!(names.iter().any(|n| n == env), "{env} is not an option");
        }
    }

    #[test]
    fn tags_lists_and_keys_parse() {
        let c = parse(&[
            (name::IMAGE_ID, json!("ami-1")),
            (name::TAGS, json!({"team": "a", "cost": "b"})),
            (name::SECURITY_GROUP_IDS, json!(["sg-1", "sg-2"])),
            (name::ACCESS_KEY_ID, json!("AKIA1")),
            (name::SECRET_KEY, json!("s3cr3t")),
            (name::USE_LAUNCH_TEMPLATE, json!(true)),
        ])
        .unwrap();
        assert_eq!(c.tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(c.security_group_ids, ["sg-1", "sg-2"]);
        assert_eq!(c.launch_template.as_deref(), Some("kata"));
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIA1") && !shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn every_problem_is_reported() {
        let e = parse(&[
            (name::IMAGE_ID, json!("")),
            (name::ACCESS_KEY_ID, json!("AKIA1")),
            (name::ROOT_VOLUME_SIZE, json!(-1)),
        ])
        .unwrap_err();
        assert_eq!(e.kind(), ErrorCode::InvalidConfig);
        for want in ["ImageId is empty", "both accessKeyId and secretKey", "rootVolumeSize"] {
            assert!(e.message.contains(want), "{}", e.message);
        }
    }
}
