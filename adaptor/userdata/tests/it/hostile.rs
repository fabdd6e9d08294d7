//! Hostile parser input: oversized, truncated, mistyped and random documents give errors, never
//! panics or unbounded work.

use base64::Engine as _;
use caa_userdata::{MAX_FILES, MAX_USERDATA_BYTES, UserDataError, parse, render};

use crate::support::{self, Rng};

#[test]
fn oversized_input_is_refused_before_parsing() {
    let huge = format!("#cloud-config\n{}", " ".repeat(MAX_USERDATA_BYTES));
    assert!(matches!(parse(&huge), Err(UserDataError::InputTooLarge { .. })));
}

#[test]
fn every_truncation_of_a_real_document_is_handled() {
    let text = render(&support::full()).unwrap();
    for cut in (0..text.len()).filter(|&c| text.is_char_boundary(c)) {
        let _ = parse(&text[..cut]);
    }
}

#[test]
fn random_mutations_never_panic() {
    let text = render(&support::escaping()).unwrap();
    let mut rng = Rng::new(7);
    const SPECIALS: &[&str] =
        &["\n", " ", "\t", "-", ":", "|", "|+", "|-9", "'", "\"", "\\x", "#", "- ", "\r", "é"];
    for _ in 0..3000 {
        let mut doc = text.clone();
        for _ in 0..1 + rng.below(4) {
            let mut at = rng.below(doc.len());
            while !doc.is_char_boundary(at) {
                at -= 1;
            }
            let end = (at + rng.below(4)).min(doc.len());
            if doc.is_char_boundary(end) {
                doc.replace_range(at..end, rng.pick(SPECIALS));
            }
        }
        let _ = parse(&doc);
    }
    for _ in 0..500 {
        let _ = parse(&rng.string(400));
    }
}

#[test]
fn wrong_types_and_bad_encodings_are_errors() {
    let apf = |json: &str| {
        format!("write_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {json}\n")
    };
    for json in [
        "[]",
        "null",
        r#"{"pod-network": null}"#,
        r#"{"pod-network": {"mtu": -1}}"#,
        r#"{"pod-network": {"routes": {}}}"#,
        r#"{"pod-network": {"routes": [{"protocol": "unspec"}]}}"#,
        r#"{"pod-network": {"routes": [{"scope": "galaxy"}]}}"#,
        r#"{"pod-network": {}, "sc-pp-prv": "***"}"#,
        r#"{"pod-network": {}"#,
    ] {
        assert!(
            matches!(parse(&apf(json)), Err(UserDataError::ForwarderDecode(_))),
            "{json} accepted"
        );
    }
    let init = |content: &str| {
        format!("write_files:\n  - path: /run/peerpod/initdata\n    content: |\n      {content}\n")
    };
    let not_gzip = base64::engine::general_purpose::STANDARD.encode("plain toml");
    for content in ["!!!notbase64", not_gzip.as_str(), "H4sIAAAAAAAA"] {
        assert!(
            matches!(parse(&init(content)), Err(UserDataError::InitdataDecode(_))),
            "{content}"
        );
    }
}

#[test]
fn malformed_yaml_is_a_syntax_error_with_a_line_number() {
    for (doc, line) in [
        ("write_files:\n  - path: /a\n      content: x\n", 3),
        ("write_files:\n  - path: /a\n    content: >\n      x\n", 3),
        ("write_files:\n  - path: \"/a\n", 2),
        ("write_files:\n  - path: \"/\\q\"\n", 2),
        ("write_files:\n  - path: '/a' x\n", 2),
        ("write_files:\n  - content: x\n", 2),
        ("write_files:\n  - path: /a\n    path: /b\n", 3),
        ("write_files: x\n", 1),
        ("write_files:\n- path: /a\nwrite_files:\n", 3),
        ("  indented: 1\n", 1),
        ("write_files:\n  - path: /a\n    content: |\n        \n      x\n", 4),
        ("write_files:\n  - path: /a\n    content: |x\n", 3),
        ("write_files:\n  - path: [a]\n", 2),
        ("write_files:\n  - path: /a\n    encoding: b64\n    content: '!!'\n", 2),
        ("write_files:\n  - path: /a\n    encoding: [b64]\n", 3),
        ("write_files:\n  - path: /a\n    append: true\n    append: false\n", 4),
        ("write_files:\n\t- path: /a\n", 2),
    ] {
        match parse(doc) {
            Err(UserDataError::Syntax { line: got, .. }) => assert_eq!(got, line, "{doc:?}"),
            other => panic!("{doc:?}: {other:?}"),
        }
    }
}

#[test]
fn too_many_entries_are_refused() {
    let mut doc = String::from("write_files:\n");
    for n in 0..=MAX_FILES {
        doc.push_str(&format!("  - path: /run/x{n}\n"));
    }
    let err = parse(&doc).unwrap_err().to_string();
    assert!(err.contains("more than 64 write_files entries"), "{err}");
}

#[test]
fn long_runs_of_blank_lines_and_ignored_keys_stay_linear() {
    let blanks = "\n".repeat(MAX_USERDATA_BYTES / 2 - 100);
    let doc = format!("write_files:\n  - path: /a\n    content:{blanks}  - path: /b\n");
    assert_eq!(parse(&doc).unwrap().files.len(), 2);
    let keys = "k:\n".repeat(MAX_USERDATA_BYTES / 4);
    assert_eq!(parse(&keys).unwrap().ignored_keys.len(), MAX_FILES);
}
