//! Golden renderings: the exact bytes upstream's template produces for the same input (the files
//! under tests/golden were written by hand from the template rules, not generated), and the
//! VM-side reading of those bytes.

use std::io::Read as _;

use base64::Engine as _;
use caa_userdata::{
    APF_JSON_PATH, ForwarderConfig, INITDATA_PATH, Initdata, UserData, parse, render,
};

use crate::support::{self, INITDATA_ENCODED, INITDATA_TOML};

const FULL: &str = include_str!("../golden/full.yaml");
const ZERO: &str = include_str!("../golden/zero.yaml");
const ESCAPING: &str = include_str!("../golden/escaping.yaml");

#[test]
fn full_userdata_renders_byte_for_byte() {
    assert_eq!(render(&support::full()).unwrap(), FULL);
}

#[test]
fn zero_forwarder_renders_like_a_go_zero_config() {
    assert_eq!(render(&UserData::new(ForwarderConfig::default())).unwrap(), ZERO);
}

#[test]
fn go_escaping_nil_slices_and_omitempty_render_byte_for_byte() {
    assert_eq!(render(&support::escaping()).unwrap(), ESCAPING);
}

#[test]
fn golden_texts_parse_back_to_their_inputs() {
    let parsed = parse(FULL).unwrap();
    let mut want = support::full();
    want.initdata = Some(Initdata::Toml(INITDATA_TOML.into()));
    assert_eq!(parsed.to_user_data().unwrap(), want);
    assert!(parsed.ignored_keys.is_empty());
    assert_eq!(parsed.files.len(), 4);

    let zero = parse(ZERO).unwrap().to_user_data().unwrap();
    assert_eq!(zero, UserData::new(ForwarderConfig::default()));

    assert_eq!(parse(ESCAPING).unwrap().to_user_data().unwrap(), support::escaping());
}

#[test]
fn parsed_file_content_is_what_cloud_init_writes() {
    let parsed = parse(FULL).unwrap();
    // The literal block adds exactly one trailing newline to each non-empty content.
    let apf = parsed.file(APF_JSON_PATH).unwrap();
    assert_eq!(apf.content, format!("{}\n", support::full_forwarder().to_json().unwrap()));
    assert_eq!(parsed.file(INITDATA_PATH).unwrap().content, format!("{INITDATA_ENCODED}\n"));
    let marker = parsed.file(caa_userdata::SCRATCH_SPACE_MARKER_PATH).unwrap();
    assert_eq!(marker.content, "");
}

#[test]
fn debug_copy_of_apf_json_has_no_trailing_newline() {
    let json = support::full_forwarder().to_json().unwrap();
    assert!(json.starts_with("{\n    \"pod-network\": {\n        \"podip\""));
    assert!(json.ends_with("\n}"));
}

#[test]
fn annotation_initdata_is_one_line_of_base64_gzip() {
    let mut userdata = UserData::new(ForwarderConfig::default());
    userdata.initdata = Some(Initdata::Toml(INITDATA_TOML.into()));
    let text = render(&userdata).unwrap();
    let (_, tail) = text.split_once("  - path: /run/peerpod/initdata\n    content: |\n").unwrap();
    let line = tail.strip_prefix("      ").unwrap().strip_suffix('\n').unwrap();
    assert!(!line.contains('\n'), "initdata spans more than one line");
    let gz = base64::engine::general_purpose::STANDARD.decode(line).unwrap();
    let mut toml = String::new();
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut toml).unwrap();
    assert_eq!(toml, INITDATA_TOML);
    // Deterministic: the same input renders the same bytes.
    assert_eq!(render(&userdata).unwrap(), text);
    assert_eq!(caa_userdata::encode_initdata(INITDATA_TOML).unwrap(), line);
}

#[test]
fn global_initdata_is_passed_through_unchanged_and_empty_means_none() {
    let mut userdata = UserData::new(ForwarderConfig::default());
    userdata.initdata = Some(Initdata::Encoded("already-encoded".into()));
    let text = render(&userdata).unwrap();
    assert!(
        text.ends_with("  - path: /run/peerpod/initdata\n    content: |\n      already-encoded\n")
    );
    userdata.initdata = Some(Initdata::Encoded(" already-encoded\n".into()));
    assert_eq!(render(&userdata).unwrap(), text);
    for empty in [Initdata::Encoded(" \n".into()), Initdata::Toml(String::new())] {
        userdata.initdata = Some(empty);
        assert_eq!(render(&userdata).unwrap(), ZERO);
    }
}

#[test]
fn lenient_cloud_config_variants_parse() {
    let text = "#cloud-config\n---\n# comment\nruncmd:\n- echo hi\nwrite_files:\n- path: \"/run/peerpod/aa.toml\"\n  permissions: '0644'\n  owner: root:root\n  content: |-\n    [token_configs]\n\n    # not a comment\n- content: |+\n    x\n\n  path: '/run/peerpod/cdh.toml' # trailing comment\n-\n  path: /run/peerpod/scratch-space.marker\n  content:\nbootcmd: []\n";
    let parsed = parse(text).unwrap();
    assert_eq!(parsed.ignored_keys, ["runcmd", "bootcmd"]);
    let aa = parsed.file(caa_userdata::AA_TOML_PATH).unwrap();
    assert_eq!(aa.content, "[token_configs]\n\n# not a comment");
    assert_eq!(aa.permissions.as_deref(), Some("0644"));
    assert_eq!(aa.owner.as_deref(), Some("root:root"));
    assert_eq!(parsed.file(caa_userdata::CDH_TOML_PATH).unwrap().content, "x\n\n");
    assert!(parsed.scratch_space);
    assert!(parsed.forwarder.is_none());
    assert!(parsed.to_user_data().is_err());
}

#[test]
fn apf_json_keys_are_read_case_insensitively_and_nulls_ignored() {
    let json = r#"{"Pod-Network":{"PodIP":"10.0.0.2/24","Routes":[{"Dst":"0.0.0.0/0","GW":"10.0.0.1","Dev":"eth0","Protocol":"boot"}],"neighbors":null,"MTU":1500,"future-field":{"x":1}},"pod-name":null,"POD-NAME":"p"}"#;
    let cfg = ForwarderConfig::from_json(json.as_bytes()).unwrap();
    assert_eq!(cfg.pod_network.pod_ip, "10.0.0.2/24");
    assert_eq!(cfg.pod_network.routes[0].gw, "10.0.0.1");
    assert_eq!(cfg.pod_network.mtu, 1500);
    assert_eq!(cfg.pod_name, "p");
    assert!(cfg.pod_network.neighbors.is_empty());
}

#[test]
fn crlf_line_ends_and_a_missing_final_newline_are_accepted() {
    let crlf = FULL.replace('\n', "\r\n");
    assert_eq!(parse(&crlf).unwrap(), parse(FULL).unwrap());
    let unterminated = FULL.strip_suffix('\n').unwrap();
    assert_eq!(parse(unterminated).unwrap(), parse(FULL).unwrap());
    let no_newline = "write_files:\n  - path: /run/peerpod/auth.json\n    content: |\n      {}";
    assert_eq!(
        parse(no_newline).unwrap().file(caa_userdata::AUTH_JSON_PATH).unwrap().content,
        "{}\n"
    );
}
