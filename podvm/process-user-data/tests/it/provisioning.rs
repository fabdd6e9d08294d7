//! Writing the userdata files: the allow-list, tolerance of unknown keys, `encoding: b64`, skipped
//! entries, modes, and logs that name paths but never contents.

use caa_process_user_data::{CIDATA_USER_DATA_PATH, provision_files};
use caa_test_support::LogCapture;
use caa_userdata::{AA_TOML_PATH, APF_JSON_PATH, AUTH_JSON_PATH, CDH_TOML_PATH};

use crate::support::{Root, SECRET, apf_json, closed_url};

/// Runs with `userdata` as the NoCloud file; returns the outcome's written paths and the log.
fn run(root: &Root, userdata: &str) -> (Vec<String>, String) {
    root.write(CIDATA_USER_DATA_PATH, userdata);
    let log = LogCapture::default();
    let subscriber = tracing_subscriber::fmt().with_writer(log.clone()).with_ansi(false).finish();
    let outcome = tracing::subscriber::with_default(subscriber, || {
        provision_files(&root.options(&closed_url())).unwrap()
    });
    (outcome.written, log.text())
}

#[test]
fn unknown_keys_are_ignored_and_only_allowed_paths_written() {
    let root = Root::new();
    let apf_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(apf_json())
    };
    let userdata = format!(
        "#cloud-config\nruncmd:\n  - [sh, -c, 'echo {SECRET}']\nwrite_files:\n- path: {APF_JSON_PATH}\n  encoding: b64\n  owner: root:root\n  permissions: '0644'\n  defer: true\n  content: {apf_b64}\n- path: /etc/passwd\n  content: |\n    {SECRET}\n- path: {AA_TOML_PATH}\n  encoding: gzip\n  content: x\n- path: {CDH_TOML_PATH}\n  append: true\n  content: x\n- path: {AUTH_JSON_PATH}\n  future_key:\n    nested: {SECRET}\n  content: |\n    {{\"auths\":{{}}}}\nusers: []\n"
    );
    let (written, log) = run(&root, &userdata);
    assert_eq!(written, [APF_JSON_PATH, AUTH_JSON_PATH]);
    assert_eq!(root.read(APF_JSON_PATH), apf_json());
    assert_eq!(root.read(AUTH_JSON_PATH), "{\"auths\":{}}\n");
    assert!(!root.at("/etc/passwd").exists());
    assert!(!root.at(CDH_TOML_PATH).exists());
    // aa.toml comes from the default initdata (empty), not from the gzip entry.
    assert_eq!(root.read(AA_TOML_PATH), "");
    for expected in [
        "\"runcmd\"",
        "\"users\"",
        "\"defer\"",
        "\"future_key\"",
        "\"/etc/passwd\"",
        "encoding gzip is not supported",
        "append is not supported",
    ] {
        assert!(log.contains(expected), "{expected} not in {log}");
    }
    assert!(!log.contains(SECRET), "{log}");
}

#[test]
fn files_are_owner_only_and_directories_0755() {
    let root = Root::new();
    let userdata = crate::support::rendered(None);
    let (written, _) =
        run(&root, &format!("{userdata}  - path: /run/peerpod/scratch-space.marker\n"));
    assert_eq!(written.len(), 3);
    for path in written.iter().map(String::as_str).chain(["/run/peerpod/initdata"]) {
        assert_eq!(root.mode(path), 0o600, "{path}");
    }
    assert_eq!(root.read("/run/peerpod/scratch-space.marker"), "");
    assert_eq!(root.mode("/run/peerpod"), 0o755);
    assert_eq!(root.mode("/run"), 0o755);
}

#[test]
fn a_later_entry_for_the_same_path_wins_and_existing_files_are_replaced() {
    let root = Root::new();
    root.write(CDH_TOML_PATH, "old");
    let userdata = format!(
        "write_files:\n  - path: {CDH_TOML_PATH}\n    content: first\n  - path: {CDH_TOML_PATH}\n    content: second\n"
    );
    let (written, _) = run(&root, &userdata);
    assert_eq!(written, [CDH_TOML_PATH, CDH_TOML_PATH]);
    assert_eq!(root.read(CDH_TOML_PATH), "second");
    assert_eq!(root.mode(CDH_TOML_PATH), 0o600);
}
