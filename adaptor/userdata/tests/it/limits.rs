//! auth.json size limit, the plugin's userdata size limit, and secrets kept out of `Debug`,
//! errors and logs.

use caa_test_support::LogCapture;

use caa_userdata::{
    AUTH_JSON_LIMIT, AUTH_JSON_PATH, ForwarderConfig, UserData, UserDataError, check_size, parse,
    render,
};

use crate::support::{self, AUTH_SECRET_MARK, INITDATA_TOML, SECRET_KEY_MARK};

/// An auth.json of exactly `len` bytes.
fn auth_of_len(len: usize) -> String {
    let head = r#"{"auths":{"r.io":{"auth":""#;
    let tail = r#""}}}"#;
    format!("{head}{}{tail}", "A".repeat(len - head.len() - tail.len()))
}

#[test]
fn auth_json_at_the_limit_is_kept_and_one_byte_more_is_skipped_with_a_warning() {
    let mut userdata = UserData::new(ForwarderConfig::default());
    userdata.auth_json = Some(auth_of_len(AUTH_JSON_LIMIT));
    let kept = parse(&render(&userdata).unwrap()).unwrap();
    assert_eq!(kept.auth_json.as_deref(), userdata.auth_json.as_deref());

    let big = auth_of_len(AUTH_JSON_LIMIT + 1);
    userdata.auth_json = Some(big.clone());
    userdata.scratch_space = true;
    let capture = LogCapture::default();
    let subscriber =
        tracing_subscriber::fmt().with_writer(capture.clone()).with_ansi(false).finish();
    let text = tracing::subscriber::with_default(subscriber, || render(&userdata).unwrap());
    assert!(!text.contains(AUTH_JSON_PATH));
    assert!(text.ends_with("  - path: /run/peerpod/scratch-space.marker\n"));
    let log = capture.text();
    assert!(log.contains("WARN") && log.contains("auth.json"), "{log}");
    assert!(log.contains("12289") && !log.contains("AAAA"), "{log}");
}

#[test]
fn check_size_names_both_sizes() {
    let text = render(&support::full()).unwrap();
    let size = text.len() as u64;
    check_size(&text, None).unwrap();
    check_size(&text, Some(size)).unwrap();
    let err = check_size(&text, Some(size - 1)).unwrap_err();
    assert!(
        matches!(err, UserDataError::TooLarge { size: s, max } if s == size && max == size - 1)
    );
    let msg = err.to_string();
    assert!(msg.contains(&size.to_string()) && msg.contains(&(size - 1).to_string()), "{msg}");
    assert!(msg.contains("maxUserDataBytes"), "{msg}");
}

#[test]
fn debug_output_never_shows_secrets() {
    let mut userdata = support::full();
    userdata.initdata = Some(caa_userdata::Initdata::Toml(INITDATA_TOML.into()));
    userdata.forwarder.sc_pp_prv = b"PRIVATEBYTES".to_vec();
    let parsed = parse(&render(&userdata).unwrap()).unwrap();
    for debug in [
        format!("{userdata:?}"),
        format!("{userdata:#?}"),
        format!("{:?}", userdata.forwarder),
        format!("{parsed:?}"),
    ] {
        for secret in [SECRET_KEY_MARK, AUTH_SECRET_MARK, "kbs.example", "SERVER", "CLIENT"] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
        assert!(!debug.contains("UFJJVkFURUJZVEVT") && !debug.contains("PRIVATEBYTES"));
        assert!(debug.contains("redacted"));
    }
    // Non-secret fields stay visible for diagnosis.
    assert!(format!("{userdata:?}").contains("nginx"));
}

#[test]
fn decode_errors_do_not_quote_values() {
    let text = "write_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {\"pod-network\": {\"mtu\": \"TOPSECRET\"}, \"tls-server-key\": 5}\n";
    let msg = parse(text).unwrap_err().to_string();
    assert!(msg.starts_with("invalid apf.json"), "{msg}");
    assert!(!msg.contains("TOPSECRET"), "{msg}");
    let missing = "write_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {}\n";
    let msg = parse(missing).unwrap_err().to_string();
    assert!(msg.contains("missing field `pod-network`"), "{msg}");
}
