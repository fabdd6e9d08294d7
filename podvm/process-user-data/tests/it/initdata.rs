//! The initdata step: the default when the userdata has none, `[data]` files, digests for each
//! algorithm over the decompressed TOML, and refusal of unknown algorithms.

use caa_process_user_data::{
    CIDATA_USER_DATA_PATH, DEFAULT_INITDATA_TOML, Error, INITDATA_DIGEST_PATH, POLICY_REGO_PATH,
    provision_files,
};
use caa_userdata::{AA_TOML_PATH, CDH_TOML_PATH, INITDATA_PATH, decode_initdata, encode_initdata};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::support::{Root, closed_url, initdata_toml, rendered};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_default_initdata_is_written_with_its_sha256_digest() {
    let root = Root::new();
    let outcome = provision_files(&root.options(&closed_url())).unwrap();
    assert!(outcome.default_initdata);
    let toml = decode_initdata(&root.read(INITDATA_PATH)).unwrap();
    assert_eq!(toml, DEFAULT_INITDATA_TOML);
    let expected = hex(&Sha256::digest(toml.as_bytes()));
    assert_eq!(root.read(INITDATA_DIGEST_PATH), expected);
    assert_eq!(outcome.initdata_digest, expected);
    assert_eq!(outcome.initdata_files, [AA_TOML_PATH]);
    assert_eq!(root.read(AA_TOML_PATH), "");
    for path in [INITDATA_PATH, INITDATA_DIGEST_PATH, AA_TOML_PATH] {
        assert_eq!(root.mode(path), 0o600, "{path}");
    }
}

#[test]
fn initdata_from_the_user_data_writes_its_files_and_digest() {
    let data = [
        ("aa.toml", "[token_configs]\n"),
        ("cdh.toml", "socket = 'x'\n"),
        ("policy.rego", "package agent_policy\n"),
        ("other.conf", "ignored\n"),
        ("../../etc/shadow", "ignored\n"),
    ];
    type Hash = fn(&[u8]) -> Vec<u8>;
    let algorithms: [(&str, Hash); 3] = [
        ("sha256", |b| Sha256::digest(b).to_vec()),
        ("sha384", |b| Sha384::digest(b).to_vec()),
        ("sha512", |b| Sha512::digest(b).to_vec()),
    ];
    for (algorithm, hash) in algorithms {
        let root = Root::new();
        let toml = initdata_toml(algorithm, &data);
        root.write(CIDATA_USER_DATA_PATH, &rendered(Some(&toml)));
        let outcome = provision_files(&root.options(&closed_url())).unwrap();
        assert!(!outcome.default_initdata);
        assert_eq!(outcome.initdata_files, [AA_TOML_PATH, CDH_TOML_PATH, POLICY_REGO_PATH]);
        assert_eq!(root.read(AA_TOML_PATH), "[token_configs]\n");
        assert_eq!(root.read(CDH_TOML_PATH), "socket = 'x'\n");
        assert_eq!(root.read(POLICY_REGO_PATH), "package agent_policy\n");
        assert_eq!(root.mode(POLICY_REGO_PATH), 0o600);
        assert!(!root.at("/run/peerpod/other.conf").exists());
        assert!(!root.at("/etc/shadow").exists());
        let digest = root.read(INITDATA_DIGEST_PATH);
        assert_eq!(digest, hex(&hash(toml.as_bytes())), "{algorithm}");
        assert_eq!(digest.len(), hash(b"").len() * 2);
    }
}

#[test]
fn an_initdata_file_already_on_disk_is_used() {
    let root = Root::new();
    let toml = initdata_toml("sha384", &[("cdh.toml", "x = 1\n")]);
    root.write(INITDATA_PATH, &format!("{}\n", encode_initdata(&toml).unwrap()));
    let outcome = provision_files(&root.options(&closed_url())).unwrap();
    assert!(!outcome.default_initdata);
    assert_eq!(outcome.initdata_files, [CDH_TOML_PATH]);
    assert_eq!(root.read(INITDATA_DIGEST_PATH), hex(&Sha384::digest(toml.as_bytes())));
}

#[test]
fn an_unsupported_algorithm_is_a_clear_error_and_writes_nothing() {
    for algorithm in ["md5", "SHA256", ""] {
        let root = Root::new();
        let toml = initdata_toml(algorithm, &[("aa.toml", "x\n")]);
        root.write(INITDATA_PATH, &encode_initdata(&toml).unwrap());
        let err = provision_files(&root.options(&closed_url())).unwrap_err();
        assert!(matches!(&err, Error::UnsupportedAlgorithm(a) if a == algorithm), "{err:?}");
        assert!(err.to_string().contains("sha256, sha384 or sha512"), "{err}");
        assert!(!root.at(AA_TOML_PATH).exists());
        assert!(!root.at(INITDATA_DIGEST_PATH).exists());
    }
}

#[test]
fn broken_initdata_is_an_error() {
    for content in ["not base64!", "H4sIAAAAAAAA", &encode_initdata("data = 'x'\n").unwrap()] {
        let root = Root::new();
        root.write(INITDATA_PATH, content);
        let err = provision_files(&root.options(&closed_url())).unwrap_err();
        assert!(matches!(err, Error::Initdata(_)), "{content}: {err:?}");
        assert!(err.to_string().starts_with("invalid initdata: "), "{err}");
    }
}
