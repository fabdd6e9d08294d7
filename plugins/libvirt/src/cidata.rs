//! The NoCloud seed of a pod VM (caa-facts §3.5): an ISO 9660 volume labelled `cidata` with
//! `user-data` (the rendered cloud-config), `meta-data` (`local-hostname: <instance name>`) and
//! an empty `vendor-data`. The pod VM mounts it at `/media/cidata`.

use std::time::SystemTime;

use crate::iso::{self, IsoError, IsoFile};

/// The volume label cloud-init and the pod VM look for.
pub const LABEL: &str = "cidata";

/// The `meta-data` file for an instance.
pub fn meta_data(instance_name: &str) -> String {
    format!("local-hostname: {instance_name}\n")
}

/// The seed ISO. Its bytes hold `user_data` (secret): never log them.
pub fn seed_iso(
    instance_name: &str,
    user_data: &str,
    now: SystemTime,
) -> Result<Vec<u8>, IsoError> {
    let meta = meta_data(instance_name);
    let files = [
        IsoFile { name: "user-data", data: user_data.as_bytes() },
        IsoFile { name: "meta-data", data: meta.as_bytes() },
        IsoFile { name: "vendor-data", data: b"" },
    ];
    iso::build(LABEL, &files, now)
}
