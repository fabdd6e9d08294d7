//! The command line: `--describe` lists every upstream option under its env name and reaches
//! no cloud; credentials are secret options.

use std::process::Command;

use caa_plugin_proto::Describe;

use crate::moto::BIN;

#[test]
fn describe_lists_every_upstream_option_without_a_cloud() {
    let out = Command::new(BIN).arg("--describe").env_clear().output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let describe: Describe = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(describe.plugin.name, "aws");
    let caps = &describe.capabilities;
    assert!(caps.idempotent_create && caps.instance.instance_types && caps.instance.gpus);
    assert!(caps.instance.volumes && caps.instance.multi_nic);
    assert_eq!(caps.optional_methods, ["listInstances"]);
    let env: Vec<&str> =
        describe.config_schema.options.iter().filter_map(|o| o.env.as_deref()).collect();
    for upstream in caa_provider_aws::config::UPSTREAM_ENV {
        assert!(env.contains(&upstream), "{upstream} missing from {env:?}");
    }
    let secret: Vec<&str> = describe
        .config_schema
        .options
        .iter()
        .filter(|o| o.secret)
        .filter_map(|o| o.env.as_deref())
        .collect();
    assert_eq!(secret, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]);
    let default = |name: &str| {
        describe
            .config_schema
            .options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.default.clone())
    };
    assert_eq!(default("instanceType"), Some(serde_json::json!("m6a.large")));
    assert_eq!(default("rootVolumeSize"), Some(serde_json::json!(30)));
    assert_eq!(default("launchTemplateName"), Some(serde_json::json!("kata")));
}
