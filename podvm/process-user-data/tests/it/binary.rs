//! The `process-user-data` binary end to end: options from flags and from the environment,
//! exit codes, the version block, and logs on stderr without file contents.

use std::process::{Command, Output};

use caa_process_user_data::{CIDATA_USER_DATA_PATH, INITDATA_DIGEST_PATH};
use caa_userdata::{APF_JSON_PATH, AUTH_JSON_PATH};

use crate::support::{Root, SECRET, apf_json, closed_url, rendered};

fn process_user_data(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_process-user-data"));
    command.args(args).env_remove("RUST_LOG");
    for key in ["ROOT", "AZURE_IMDS_URL", "AWS_IMDS_URL", "RETRY_INTERVAL", "NO_CPUID"] {
        command.env_remove(format!("PROCESS_USER_DATA_{key}"));
    }
    command.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn provisions_from_a_cidata_file() {
    let root = Root::new();
    root.write(CIDATA_USER_DATA_PATH, &rendered(None));
    let root_arg = root.path().to_str().unwrap();
    let out =
        process_user_data(&["provision-files", "-t", "5", "--root", root_arg, "--no-cpuid"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(root.read(APF_JSON_PATH).trim_end(), apf_json());
    assert_eq!(root.mode(AUTH_JSON_PATH), 0o600);
    assert_eq!(root.read(INITDATA_DIGEST_PATH).len(), 64);
    assert!(stderr.contains("/run/peerpod/apf.json"), "{stderr}");
    assert!(stderr.contains("provisioning done"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
}

#[test]
fn fails_with_exit_code_1_when_the_timeout_passes() {
    let root = Root::new();
    root.set_sys_vendor("Amazon EC2");
    let url = closed_url();
    let out = process_user_data(
        &["provision-files", "--user-data-fetch-timeout", "1"],
        &[
            ("PROCESS_USER_DATA_ROOT", root.path().to_str().unwrap()),
            ("PROCESS_USER_DATA_AWS_IMDS_URL", &url),
            ("PROCESS_USER_DATA_RETRY_INTERVAL", "0.1"),
            ("PROCESS_USER_DATA_NO_CPUID", "true"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no usable user data from AWS IMDS"), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
}

#[test]
fn version_and_usage() {
    for flag in ["-v", "--version"] {
        let out = process_user_data(&[flag], &[]);
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<_> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        assert!(lines[0].starts_with("process-user-data version "), "{stdout}");
        assert!(lines[1].starts_with("  commit: "), "{stdout}");
        assert!(lines[2].starts_with("  rust: "), "{stdout}");
    }
    let out = process_user_data(&["provision-files", "--bogus"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = process_user_data(&["--help"], &[]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("provision-files"), "{help}");
    let out = process_user_data(&["provision-files", "--help"], &[]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--user-data-fetch-timeout"), "{help}");
    assert!(!help.contains("--root"), "hidden options are listed: {help}");
}
