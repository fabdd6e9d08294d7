//! Kata's direct-assigned volumes as the worker sees them: one directory per volume under
//! `/run/kata-containers/shared/direct-volumes`, named base64url(volume path), holding the CSI
//! driver's `mountInfo.json`. The proxy turns them into CreateContainer annotations.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use caa_kata_protos::agent::Mount;
use serde::{Deserialize, Serialize};

/// Kata's direct-volumes directory.
pub const DIRECT_VOLUMES_DIR: &str = "/run/kata-containers/shared/direct-volumes";

fn encode(path: &str) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(path)
}

fn decode(name: &str) -> Option<String> {
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(name).ok()).and_then(|b| String::from_utf8(b).ok())
}

/// CSI mount sources that have a direct-volume entry (the VM waits for them to be mounted).
pub fn csi_target_paths(dir: &Path, mounts: &[Mount]) -> Vec<String> {
    mounts
        .iter()
        .filter(|m| m.source.contains("/volumes/kubernetes.io~csi/"))
        .filter(|m| dir.join(encode(&m.source)).exists())
        .map(|m| m.source.clone())
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct MountInfo {
    #[serde(default)]
    device: String,
    #[serde(default)]
    fstype: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct CloudVolume {
    mount_point: String,
    fs_type: String,
    lun: String,
    disk_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    encrypt_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    key_id: String,
}

/// The cloud-volumes annotation value: `vol-<n>` → volume, in sorted directory order (the
/// order providers attach disks in, so `lun` matches). `None` when no mount uses one.
pub fn cloud_volumes(
    dir: &Path,
    mounts: &[Mount],
    sandbox_uid: Option<&str>,
) -> Result<Option<String>, std::io::Error> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(d) => d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    names.sort();
    let mut out = BTreeMap::new();
    let mut index = 0u32;
    for name in names {
        let Some(path) = decode(&name) else { continue };
        if let Some(uid) = sandbox_uid
            && path.contains("/pods/")
            && !path.contains(uid)
        {
            continue; // another pod's volume
        }
        let Ok(text) = std::fs::read(dir.join(&name).join("mountInfo.json")) else { continue };
        let Ok(info) = serde_json::from_slice::<MountInfo>(&text) else {
            tracing::warn!(volume = %path, "unreadable mountInfo.json; skipped");
            continue;
        };
        let disk_id = info.metadata.get("cloud-volume-path").cloned().unwrap_or(info.device);
        if disk_id.is_empty() {
            continue;
        }
        let idx = index;
        index += 1;
        let Some(mount) = mounts.iter().find(|m| m.source == path) else { continue };
        out.insert(
            format!("vol-{idx}"),
            CloudVolume {
                mount_point: mount.destination.clone(),
                fs_type: if info.fstype.is_empty() { "ext4".to_owned() } else { info.fstype },
                lun: idx.to_string(),
                disk_id,
                encrypt_type: info.metadata.get("encrypt-type").cloned().unwrap_or_default(),
                key_id: info.metadata.get("kbs-key-id").cloned().unwrap_or_default(),
            },
        );
    }
    if out.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&out).map(Some).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(src: &str, dst: &str) -> Mount {
        let mut m = Mount::new();
        m.source = src.into();
        m.destination = dst.into();
        m
    }

    #[test]
    fn csi_mounts_with_a_direct_volume_are_listed_and_cloud_volumes_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let csi = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pvc-a/mount";
        let other = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pvc-b/mount";
        std::fs::create_dir_all(dir.path().join(encode(csi))).unwrap();
        std::fs::write(
            dir.path().join(encode(csi)).join("mountInfo.json"),
            r#"{"volume-type":"block","device":"/dev/sdb","fstype":"xfs","metadata":{"cloud-volume-path":"vol-123","encrypt-type":"luks2","kbs-key-id":"k1"}}"#,
        )
        .unwrap();
        let mounts = [mount(csi, "/data"), mount(other, "/other"), mount("/tmp/x", "/x")];
        assert_eq!(csi_target_paths(dir.path(), &mounts), vec![csi.to_owned()]);
        let json = cloud_volumes(dir.path(), &mounts, Some("uid-1")).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"vol-0": {"mount_point": "/data", "fs_type": "xfs", "lun": "0",
                "disk_id": "vol-123", "encrypt_type": "luks2", "key_id": "k1"}})
        );
        assert_eq!(cloud_volumes(dir.path(), &mounts, Some("uid-2")).unwrap(), None);
        assert_eq!(cloud_volumes(&dir.path().join("missing"), &mounts, None).unwrap(), None);
    }
}
