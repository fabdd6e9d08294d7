//! Fails when the committed JSON Schemas under `schema/` differ from the Rust types.
//! Run with `CAA_UPDATE_SCHEMA=1` to rewrite them after an intended change.

use std::path::Path;

#[test]
fn committed_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let update = std::env::var_os("CAA_UPDATE_SCHEMA").is_some();
    let files = caa_plugin_proto::schema::all();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut stale = Vec::new();
    for (name, text) in &files {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
        }
    }
    let on_disk = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(on_disk, files.len(), "schema/ holds files no type generates");
    assert!(stale.is_empty(), "stale schemas {stale:?}: rerun with CAA_UPDATE_SCHEMA=1");
}
