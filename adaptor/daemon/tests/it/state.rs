//! `StateStore` on a temp dir: round trips, atomic replacement, crash leftovers, corrupt files,
//! permissions.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use caa_adaptor::SandboxId;
use caa_adaptor::state::{CORRUPT_SUFFIX, Phase, SandboxRecord, StateError, StateStore};

const SID: &str = "27e11ff35fd1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b";

fn record(sid: &str) -> SandboxRecord {
    SandboxRecord::creating(
        SandboxId::new(sid).unwrap(),
        "nginx",
        "default",
        caa_adaptor::naming::instance_name("nginx", &SandboxId::new(sid).unwrap()),
        "mock",
        "op-1",
    )
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn put_get_remove_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StateStore::open(tmp.path().join("state")).unwrap();
    let id = SandboxId::new(SID).unwrap();
    assert!(store.get(&id).unwrap().is_none());

    let mut r = record(SID);
    store.put(&r).unwrap();
    let got = store.get(&id).unwrap().unwrap();
    assert_eq!(got.sandbox_id, id);
    assert_eq!(got.phase, Phase::Creating);
    assert_eq!(got.instance_name, "podvm-nginx-27e11ff3");

    r.phase = Phase::Running;
    r.instance_id = Some("i-1".into());
    r.ips = vec!["192.0.2.7".parse().unwrap()];
    r.vni = Some(555_001);
    store.put(&r).unwrap();
    let got = store.get(&id).unwrap().unwrap();
    assert_eq!(
        (got.phase, got.instance_id.as_deref(), got.vni),
        (Phase::Running, Some("i-1"), Some(555_001))
    );
    assert_eq!(got.ips, r.ips);
    assert_eq!(files(store.dir()), [format!("{SID}.json")], "no temp file is left behind");

    assert!(store.remove(&id).unwrap());
    assert!(!store.remove(&id).unwrap(), "remove is idempotent");
    assert!(store.get(&id).unwrap().is_none());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn permissions_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/state");
    let store = StateStore::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    store.put(&record(SID)).unwrap();
    assert_eq!(mode(&store.path_of(&SandboxId::new(SID).unwrap())), 0o600);

    // An existing directory that is too open is tightened.
    let open_dir = tmp.path().join("open");
    fs::create_dir(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o755)).unwrap();
    StateStore::open(&open_dir).unwrap();
    assert_eq!(mode(&open_dir), 0o700);
}

#[test]
fn a_file_in_the_way_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state");
    fs::write(&path, "").unwrap();
    assert!(matches!(StateStore::open(&path), Err(StateError::NotADirectory { .. })));
}

#[test]
fn list_returns_records_and_cleans_crash_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StateStore::open(tmp.path()).unwrap();
    store.put(&record("aaaa1111")).unwrap();
    store.put(&record("bbbb2222")).unwrap();
    // A previous process died between creating its temp file and the rename.
    let leftover = tmp.path().join(format!(".cccc3333.{}-0.tmp", "0".repeat(32)));
    fs::write(&leftover, b"{\"partial").unwrap();
    // Files that are not records are left alone.
    fs::write(tmp.path().join("README"), "x").unwrap();

    let listed = store.list().unwrap();
    let ids: Vec<_> = listed.iter().map(|r| r.as_ref().unwrap().sandbox_id.to_string()).collect();
    assert_eq!(ids, ["aaaa1111", "bbbb2222"]);
    assert!(!leftover.exists(), "the leftover temp file is removed");
    assert!(tmp.path().join("README").exists());
}

#[test]
fn corrupt_and_unknown_schema_files_are_reported_and_moved_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StateStore::open(tmp.path()).unwrap();
    store.put(&record("good0001")).unwrap();
    fs::write(tmp.path().join("torn0002.json"), b"{\"schema_version\":1,\"sandbox_").unwrap();
    fs::write(tmp.path().join("newer003.json"), br#"{"schema_version":9,"sandbox_id":"newer003"}"#)
        .unwrap();
    // A record whose content names another sandbox than its file.
    let other =
        String::from_utf8(fs::read(store.path_of(&SandboxId::new("good0001").unwrap())).unwrap())
            .unwrap()
            .replace("good0001", "else0004");
    fs::write(tmp.path().join("mism0005.json"), other).unwrap();
    // A `.json` file whose name is no sandbox id.
    fs::write(tmp.path().join("bad..name.json"), "{}").unwrap();

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 5);
    let good: Vec<_> = listed.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].sandbox_id.as_str(), "good0001");
    for failure in listed.iter().filter_map(|r| r.as_ref().err()) {
        let aside = failure.quarantined.as_ref().expect("moved aside");
        assert!(aside.to_str().unwrap().ends_with(CORRUPT_SUFFIX));
        assert!(aside.exists() && !failure.path.exists());
    }
    let errors: Vec<_> = listed.iter().filter_map(|r| r.as_ref().err()).map(|f| &f.error).collect();
    assert!(errors.iter().any(|e| matches!(e, StateError::Decode { .. })));
    assert!(errors.iter().any(|e| matches!(e, StateError::Mismatch { .. })));
    assert!(errors.iter().any(|e| matches!(e, StateError::BadName { .. })));
    assert!(errors.iter().any(|e| {
        let mut chain = String::new();
        let mut cur: Option<&dyn std::error::Error> = Some(*e);
        while let Some(err) = cur {
            chain.push_str(&err.to_string());
            cur = err.source();
        }
        chain.contains("unknown schema version 9")
    }));

    // The next start sees only the good record.
    let again = store.list().unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].is_ok());
}

#[test]
fn get_of_a_corrupt_record_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StateStore::open(tmp.path()).unwrap();
    let id = SandboxId::new("abcd1234").unwrap();
    fs::write(store.path_of(&id), "not json").unwrap();
    assert!(matches!(store.get(&id), Err(StateError::Decode { .. })));
}

#[test]
fn record_paths_stay_inside_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StateStore::open(tmp.path()).unwrap();
    for hostile in ["../escape", "a/b", "/abs", "..", "a\0b"] {
        assert!(SandboxId::new(hostile).is_err(), "{hostile:?}");
    }
    let id = SandboxId::new("ok-id_1.2").unwrap();
    assert_eq!(store.path_of(&id).parent().unwrap(), tmp.path());
}

#[test]
fn concurrent_writers_never_tear_a_record() {
    let tmp = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(StateStore::open(tmp.path()).unwrap());
    let id = SandboxId::new(SID).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|n| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let mut r = record(SID);
                    r.operation_id = format!("op-{n}-{i}");
                    store.put(&r).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..50 {
        if let Some(r) = store.get(&id).unwrap() {
            assert!(r.operation_id.starts_with("op-"));
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(files(tmp.path()), [format!("{SID}.json")]);
}
