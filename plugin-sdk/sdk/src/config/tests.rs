//! Config resolution: precedence, parsing by kind, collected problems and secret redaction.

use std::collections::BTreeMap;

use caa_plugin_proto::{ConfigOption, ConfigSchema, OptionKind};
use serde_json::{Value, json};

use super::Config;

fn schema() -> ConfigSchema {
    ConfigSchema {
        options: vec![
            ConfigOption {
                default: Some(json!("eu-1")),
                ..ConfigOption::new("region", "REGION", OptionKind::String)
            },
            ConfigOption {
                required: true,
                ..ConfigOption::new("imageId", "IMAGE_ID", OptionKind::String)
            },
            ConfigOption {
                secret: true,
                ..ConfigOption::new("apiKey", "API_KEY", OptionKind::String)
            },
            ConfigOption {
                default: Some(json!("false")),
                ..ConfigOption::new("debug", "DEBUG", OptionKind::Bool)
            },
            ConfigOption::new("port", "PORT", OptionKind::Integer),
            ConfigOption::new("subnets", "SUBNETS", OptionKind::StringList),
            ConfigOption::new("tags", "TAGS", OptionKind::StringMap),
        ],
    }
}

fn resolve(given: Value, env: &[(&str, &str)]) -> Result<Config, caa_plugin_proto::RpcError> {
    let given: BTreeMap<String, Value> = serde_json::from_value(given).unwrap();
    let env: BTreeMap<&str, &str> = env.iter().copied().collect();
    Config::resolve(&schema(), &given, &|name| env.get(name).map(|v| (*v).to_owned()))
}

#[test]
fn config_beats_env_beats_default() {
    let c =
        resolve(json!({"imageId": "img-config"}), &[("IMAGE_ID", "img-env"), ("REGION", "us-2")])
            .unwrap();
    assert_eq!((c.str("imageId"), c.str("region")), (Some("img-config"), Some("us-2")));
    let c = resolve(json!({}), &[("IMAGE_ID", "img-env")]).unwrap();
    assert_eq!(
        (c.str("imageId"), c.str("region"), c.bool("debug")),
        (Some("img-env"), Some("eu-1"), false)
    );
}

#[test]
fn env_text_is_parsed_by_kind() {
    let env = [
        ("IMAGE_ID", "i"),
        ("DEBUG", "1"),
        ("PORT", " 8080 "),
        ("SUBNETS", " a, ,b ,"),
        ("TAGS", "team=x, env = prod"),
    ];
    let c = resolve(json!({}), &env).unwrap();
    assert!(c.bool("debug"));
    assert_eq!(c.i64("port"), Some(8080));
    assert_eq!(c.list("subnets"), ["a", "b"]);
    assert_eq!(
        c.map("tags"),
        BTreeMap::from([
            ("env".to_owned(), "prod".to_owned()),
            ("team".to_owned(), "x".to_owned())
        ])
    );
    assert!(!resolve(json!({}), &[("IMAGE_ID", "i"), ("DEBUG", "FALSE")]).unwrap().bool("debug"));
}

#[test]
fn json_values_keep_their_kind() {
    let c = resolve(
        json!({"imageId": "i", "debug": true, "port": 1, "subnets": ["s"], "tags": {"k": "v"}}),
        &[],
    )
    .unwrap();
    assert!(c.bool("debug"));
    assert_eq!(
        (c.i64("port"), c.list("subnets"), c.map("tags").len()),
        (Some(1), vec!["s".to_owned()], 1)
    );
    assert_eq!(c.get("tags"), Some(&json!({"k": "v"})));
}

#[test]
fn empty_strings_read_as_absent() {
    let c = resolve(json!({"imageId": "i", "apiKey": ""}), &[]).unwrap();
    assert_eq!(c.str("apiKey"), None);
}

#[test]
fn every_problem_is_listed_at_once() {
    let e = resolve(json!({"colour": "red", "port": "eighty"}), &[("DEBUG", "yes")]).unwrap_err();
    assert_eq!(e.code, 1);
    let problems = &e.data.as_ref().unwrap().problems;
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["colour", "imageId", "debug", "port"]);
    assert!(problems[1].message.contains("IMAGE_ID"), "{problems:?}");
    assert!(problems[2].message.contains("DEBUG"), "{problems:?}");
    assert!(!e.to_string().contains("eighty") && !format!("{problems:?}").contains("eighty"));
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let c = resolve(json!({"imageId": "i"}), &[("API_KEY", "k-s3cr3t")]).unwrap();
    assert_eq!(c.str("apiKey"), Some("k-s3cr3t"));
    assert!(c.is_secret("apiKey"));
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cr3t") && debug.contains("<redacted>"), "{debug}");
    let e = resolve(json!({"apiKey": ["k-s3cr3t"]}), &[]).unwrap_err();
    assert!(!format!("{e:?}").contains("s3cr3t"));
}
