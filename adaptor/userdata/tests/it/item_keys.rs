//! The tolerant side of the parser inside `write_files` items: unknown keys are skipped and
//! reported, `encoding: b64` is decoded, and entries that cannot be written as they stand
//! (other encodings, `append`) are left out without failing the document.

use base64::Engine as _;
use caa_userdata::{
    AA_TOML_PATH, APF_JSON_PATH, AUTH_JSON_PATH, CDH_TOML_PATH, IgnoredItemKey, SkippedFile,
    UserDataError, parse, render,
};

use crate::support::{self, AUTH_JSON};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn unknown_item_keys_are_skipped_with_their_values_and_reported() {
    let text = format!(
        "#cloud-config\nwrite_files:\n- path: {AA_TOML_PATH}\n  defer: true\n  mode: 0644\n  source:\n    uri: http://example\n    headers:\n      - a\n  content: |\n    [x]\n  notes: |\n    - path: /etc/shadow\n\n    still the note\n  tags:\n  - one\n  - two\n- path: {CDH_TOML_PATH}\n  quoted: \"a: b\" # c\n"
    );
    let parsed = parse(&text).unwrap();
    let paths: Vec<_> = parsed.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, [AA_TOML_PATH, CDH_TOML_PATH]);
    assert_eq!(parsed.file(AA_TOML_PATH).unwrap().content, "[x]\n");
    let keys: Vec<_> = parsed.ignored_item_keys.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["defer", "mode", "source", "notes", "tags", "quoted"]);
    assert_eq!(
        parsed.ignored_item_keys[5],
        IgnoredItemKey { path: CDH_TOML_PATH.into(), key: "quoted".into() }
    );
    assert!(parsed.ignored_keys.is_empty());
    assert!(parsed.skipped_files.is_empty());
}

#[test]
fn b64_content_is_decoded_with_any_wrapping_or_padding() {
    let toml = "[token_configs]\nurl = \"x\"\n";
    let encoded = b64(toml);
    let (head, tail) = encoded.split_at(10);
    let unpadded = b64("ab");
    let unpadded = unpadded.trim_end_matches('=');
    let text = format!(
        "write_files:\n  - path: {AA_TOML_PATH}\n    encoding: b64\n    content: |\n      {head}\n      {tail}\n  - encoding: ' Base64 '\n    path: {CDH_TOML_PATH}\n    content: {unpadded}\n  - path: {AUTH_JSON_PATH}\n    encoding: text/plain\n    content: abc\n"
    );
    let parsed = parse(&text).unwrap();
    assert_eq!(parsed.file(AA_TOML_PATH).unwrap().content, toml);
    assert_eq!(parsed.file(CDH_TOML_PATH).unwrap().content, "ab");
    assert_eq!(parsed.auth_json.as_deref(), Some("abc"));
}

#[test]
fn b64_apf_json_is_decoded_before_it_is_read() {
    let rendered = render(&support::full()).unwrap();
    let apf = parse(&rendered).unwrap().file(APF_JSON_PATH).unwrap().content.clone();
    let text = format!(
        "write_files:\n- path: {APF_JSON_PATH}\n  encoding: b64\n  content: {}\n- path: {AUTH_JSON_PATH}\n  content: '{AUTH_JSON}'\n",
        b64(&apf)
    );
    let parsed = parse(&text).unwrap();
    assert_eq!(parsed.forwarder, Some(support::full().forwarder));
    assert_eq!(parsed.auth_json.as_deref(), Some(AUTH_JSON));
}

#[test]
fn other_encodings_and_append_skip_the_entry_not_the_document() {
    let text = format!(
        "write_files:\n- path: {AA_TOML_PATH}\n  encoding: gzip\n  content: '!!not gzip'\n- path: {CDH_TOML_PATH}\n  encoding: gz+b64\n  content: x\n- path: {AUTH_JSON_PATH}\n  append: Yes\n  encoding: b64\n  content: '!!'\n- path: /run/peerpod/scratch-space.marker\n  append: false\n- path: /run/peerpod/policy.rego\n  append: 'off'\n  content: p\n"
    );
    let parsed = parse(&text).unwrap();
    let written: Vec<_> = parsed.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(written, ["/run/peerpod/scratch-space.marker", "/run/peerpod/policy.rego"]);
    assert!(parsed.scratch_space);
    assert!(parsed.auth_json.is_none());
    assert_eq!(
        parsed.skipped_files,
        [
            SkippedFile {
                path: AA_TOML_PATH.into(),
                reason: "encoding gzip is not supported".into()
            },
            SkippedFile {
                path: CDH_TOML_PATH.into(),
                reason: "encoding gz+b64 is not supported".into()
            },
            SkippedFile { path: AUTH_JSON_PATH.into(), reason: "append is not supported".into() },
        ]
    );
}

#[test]
fn bad_b64_is_an_error_that_does_not_quote_the_content() {
    let bad_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x53]);
    for (content, reason) in
        [("SECRET*not*base64", "not valid base64"), (bad_utf8.as_str(), "does not decode to UTF-8")]
    {
        let text = format!("write_files:\n- path: /a\n  encoding: b64\n  content: {content}\n");
        match parse(&text) {
            Err(e @ UserDataError::Syntax { line: 2, .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(reason), "{msg}");
                assert!(!msg.contains("SECRET"), "{msg}");
            }
            other => panic!("{content}: {other:?}"),
        }
    }
}

#[test]
fn reports_are_bounded() {
    let long_key = "k".repeat(500);
    let mut text = String::from("write_files:\n");
    for n in 0..10 {
        text.push_str(&format!("- path: /x{n}\n"));
        for m in 0..10 {
            text.push_str(&format!("  {long_key}{m}: v\n"));
        }
    }
    let parsed = parse(&text).unwrap();
    assert_eq!(parsed.files.len(), 10);
    assert_eq!(parsed.ignored_item_keys.len(), caa_userdata::MAX_FILES);
    assert!(parsed.ignored_item_keys.iter().all(|k| k.key.chars().count() == 64));
}
