//! Finding and fetching the userdata: the NoCloud file, Azure and AWS metadata services played by
//! local servers, retries, the IMDSv1 fallback, and the timeout.

use std::time::{Duration, Instant};

use caa_process_user_data::{CIDATA_USER_DATA_PATH, Error, Source, provision_files};
use caa_userdata::{APF_JSON_PATH, AUTH_JSON_PATH};

use crate::support::{
    AZURE_PATH, Imds, Reply, Root, SECRET, TOKEN, apf_json, closed_url, raw_get, rendered,
};

#[test]
fn the_cidata_file_wins_over_any_cloud() {
    let root = Root::new();
    root.set_sys_vendor("Amazon EC2");
    root.write(CIDATA_USER_DATA_PATH, &rendered(None));
    let imds = Imds::start(|_, _| Reply::status(500));
    let outcome = provision_files(&root.options(imds.url())).unwrap();
    assert_eq!(outcome.source, Source::Cidata);
    assert_eq!(outcome.written, [APF_JSON_PATH, AUTH_JSON_PATH]);
    assert_eq!(root.read(APF_JSON_PATH).trim_end(), apf_json());
    assert!(imds.seen().is_empty());
}

#[test]
fn the_fake_azure_service_refuses_requests_without_the_metadata_header() {
    let imds = Imds::azure("#cloud-config\n", false);
    assert!(raw_get(imds.url(), AZURE_PATH, "").starts_with("HTTP/1.1 400"));
    assert!(raw_get(imds.url(), AZURE_PATH, "Metadata: true\r\n").starts_with("HTTP/1.1 200"));
}

#[test]
fn azure_is_found_by_dmi_and_its_base64_body_decoded() {
    for chunked in [false, true] {
        let root = Root::new();
        root.set_sys_vendor("Microsoft Corporation");
        let imds = Imds::azure(&rendered(None), chunked);
        let outcome = provision_files(&root.options(imds.url())).unwrap();
        assert_eq!(outcome.source, Source::Azure);
        assert_eq!(root.read(APF_JSON_PATH).trim_end(), apf_json());
        let seen = imds.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].target, AZURE_PATH);
        assert_eq!(seen[0].header("Metadata"), Some("true"));
    }
}

#[test]
fn aws_uses_an_imdsv2_token() {
    let root = Root::new();
    root.set_sys_vendor("Amazon EC2");
    let imds = Imds::aws(&rendered(None), None);
    let outcome = provision_files(&root.options(imds.url())).unwrap();
    assert_eq!(outcome.source, Source::Aws);
    assert_eq!(root.read(AUTH_JSON_PATH), "{\"auths\":{}}\n");
    let seen = imds.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("PUT", "/latest/api/token"));
    assert_eq!(seen[0].header("X-aws-ec2-metadata-token-ttl-seconds"), Some("60"));
    assert_eq!((seen[1].method.as_str(), seen[1].target.as_str()), ("GET", "/latest/user-data"));
    assert_eq!(seen[1].header("X-aws-ec2-metadata-token"), Some(TOKEN));
}

#[test]
fn aws_falls_back_to_imdsv1_when_the_token_is_refused() {
    for refusal in [403, 405] {
        let root = Root::new();
        root.set_sys_vendor("Amazon EC2");
        let imds = Imds::aws(&rendered(None), Some(refusal));
        let outcome = provision_files(&root.options(imds.url())).unwrap();
        assert_eq!(outcome.written, [APF_JSON_PATH, AUTH_JSON_PATH]);
        let seen = imds.seen();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[1].method, "GET");
        assert_eq!(seen[1].header("X-aws-ec2-metadata-token"), None);
    }
}

#[test]
fn server_errors_are_retried() {
    let root = Root::new();
    root.set_sys_vendor("Amazon EC2");
    let userdata = rendered(None);
    let imds = Imds::start(move |req, earlier| match req.method.as_str() {
        "PUT" => Reply::ok(TOKEN),
        _ if earlier.iter().filter(|r| r.method == "GET").count() < 2 => Reply::status(500),
        _ => Reply::ok(userdata.clone()),
    });
    let outcome = provision_files(&root.options(imds.url())).unwrap();
    assert_eq!(outcome.written, [APF_JSON_PATH, AUTH_JSON_PATH]);
    let gets = imds.seen().into_iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 3);
}

#[test]
fn unparseable_user_data_is_retried_until_it_parses() {
    let root = Root::new();
    root.set_sys_vendor("Microsoft Corporation");
    let good = base64_of(&rendered(None));
    let imds = Imds::start(move |_, earlier| match earlier.len() {
        0 => Reply::ok(base64_of("write_files:\n  - content: no path\n")),
        1 => Reply::ok("not base64 !"),
        _ => Reply::ok(good.clone()),
    });
    provision_files(&root.options(imds.url())).unwrap();
    assert_eq!(imds.seen().len(), 3);
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn no_source_means_initdata_only() {
    let root = Root::new();
    root.set_sys_vendor("QEMU");
    let outcome = provision_files(&root.options(&closed_url())).unwrap();
    assert_eq!(outcome.source, Source::None);
    assert!(outcome.written.is_empty());
    assert!(outcome.default_initdata);
    assert!(!root.at(APF_JSON_PATH).exists());
}

#[test]
fn the_timeout_ends_the_retries_with_an_error_naming_source_and_last_failure() {
    let root = Root::new();
    root.set_sys_vendor("Amazon EC2");
    let imds = Imds::start(|req, _| match req.method.as_str() {
        "PUT" => Reply::ok(TOKEN),
        _ => Reply(503, SECRET.into(), false),
    });
    let mut options = root.options(imds.url());
    options.fetch_timeout = Duration::from_secs(1);
    options.retry_interval = Duration::from_millis(100);
    let started = Instant::now();
    let err = provision_files(&options).unwrap_err();
    assert!(started.elapsed() >= options.fetch_timeout);
    let Error::FetchTimeout { origin, attempts, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*origin, Source::Aws);
    assert!(*attempts > 1, "{attempts}");
    let msg = err.to_string();
    assert!(msg.contains("AWS IMDS") && msg.contains("HTTP 503"), "{msg}");
    assert!(!msg.contains(SECRET), "{msg}");
    assert!(!root.at("/run/peerpod/initdata").exists(), "initdata processed after a failure");
}

#[test]
fn a_cidata_file_that_never_parses_times_out_without_quoting_it() {
    let root = Root::new();
    root.write(CIDATA_USER_DATA_PATH, &format!("write_files:\n  - path: [{SECRET}]\n"));
    let mut options = root.options(&closed_url());
    options.fetch_timeout = Duration::from_secs(1);
    options.retry_interval = Duration::from_millis(200);
    let msg = provision_files(&options).unwrap_err().to_string();
    assert!(msg.contains(CIDATA_USER_DATA_PATH), "{msg}");
    assert!(msg.contains("parsing user data: userdata line 2"), "{msg}");
    assert!(!msg.contains(SECRET), "{msg}");
}

#[test]
fn an_unreachable_service_is_a_connection_failure() {
    let root = Root::new();
    root.set_sys_vendor("Microsoft Corporation");
    let mut options = root.options(&closed_url());
    options.fetch_timeout = Duration::from_secs(1);
    options.retry_interval = Duration::from_millis(100);
    let msg = provision_files(&options).unwrap_err().to_string();
    assert!(msg.contains("Azure IMDS") && msg.contains("GET http://127.0.0.1:"), "{msg}");
}
