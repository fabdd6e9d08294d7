//! CSI volumes on EC2 (caa-facts §8.1 steps 6 and 11): ids are validated and must be
//! `available` before the instance is launched; once it runs they are attached under upstream's
//! device names (`/dev/xvdb` … `/dev/xvdz`, then `/dev/xvdba` …) and waited for.

use std::time::Duration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput;
use aws_sdk_ec2::types::{VolumeAttachmentState, VolumeState};
use caa_plugin_proto::{ErrorCode, RpcError, Volume};
use caa_plugin_sdk::Ctx;

use crate::error::from_sdk;

/// Upstream's device name for the `index`-th volume.
pub fn device_name(index: usize) -> String {
    let letter = |n: usize| char::from(b'a' + u8::try_from(n % 26).unwrap_or(0));
    if index < 25 {
        format!("/dev/xvd{}", letter(index + 1))
    } else {
        let rest = index - 25;
        format!("/dev/xvd{}{}", letter(1 + rest / 26), letter(rest % 26))
    }
}

/// Whether `id` looks like an EBS volume id (`vol-` and at least 8 hex digits).
pub fn valid_volume_id(id: &str) -> bool {
    id.strip_prefix("vol-")
        .is_some_and(|hex| hex.len() >= 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Refuses malformed ids and volumes that are not `available`.
pub async fn check_available(ec2: &Client, volumes: &[Volume]) -> Result<(), RpcError> {
    if volumes.is_empty() {
        return Ok(());
    }
    if let Some(bad) = volumes.iter().find(|v| !valid_volume_id(&v.disk_id)) {
        return Err(RpcError::new(
            ErrorCode::UnsupportedSpec,
            format!("invalid volume id {:?}", bad.disk_id),
        ));
    }
    let out = describe(ec2, volumes).await?;
    let busy: Vec<String> = out
        .volumes()
        .iter()
        .filter(|v| v.state() != Some(&VolumeState::Available))
        .map(|v| {
            let state = v.state().map_or("unknown", VolumeState::as_str);
            let attached: Vec<&str> =
                v.attachments().iter().filter_map(|a| a.instance_id()).collect();
            format!("{} is {state} (attached to {attached:?})", v.volume_id().unwrap_or("?"))
        })
        .collect();
    if !busy.is_empty() {
        return Err(RpcError::new(
            ErrorCode::Conflict,
            format!("volumes not available: {}", busy.join(", ")),
        ));
    }
    Ok(())
}

/// Attaches every volume not yet attached to `instance_id` and waits (3 s polls, within the
/// call's deadline and at most 60 s) until each is `attached`.
pub async fn attach_all(
    ec2: &Client,
    ctx: &Ctx,
    instance_id: &str,
    volumes: &[Volume],
) -> Result<(), RpcError> {
    // A retried operation adopts its instance: volumes it already attached stay as they are.
    let before = describe(ec2, volumes).await?;
    let mine = |id: &str| {
        before.volumes().iter().any(|v| {
            v.volume_id() == Some(id)
                && v.attachments().iter().any(|a| a.instance_id() == Some(instance_id))
        })
    };
    for (i, v) in volumes.iter().enumerate() {
        if mine(&v.disk_id) {
            continue;
        }
        let device = v.device_name.clone().unwrap_or_else(|| device_name(i));
        ec2.attach_volume()
            .volume_id(&v.disk_id)
            .instance_id(instance_id)
            .device(&device)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("attaching {} as {device}", v.disk_id), &e))?;
    }
    let limit = tokio::time::Instant::now() + ctx.remaining().min(Duration::from_secs(60));
    loop {
        let out = describe(ec2, volumes).await?;
        let attached = out.volumes().iter().all(|v| {
            v.attachments().iter().any(|a| {
                a.instance_id() == Some(instance_id)
                    && a.state() == Some(&VolumeAttachmentState::Attached)
            })
        });
        if attached {
            return Ok(());
        }
        if tokio::time::Instant::now() >= limit {
            return Err(RpcError::new(
                ErrorCode::TryAgainLater,
                "volumes were not attached in time",
            ));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

async fn describe(ec2: &Client, volumes: &[Volume]) -> Result<DescribeVolumesOutput, RpcError> {
    let ids: Vec<String> = volumes.iter().map(|v| v.disk_id.clone()).collect();
    ec2.describe_volumes()
        .set_volume_ids(Some(ids))
        .send()
        .await
        .map_err(|e| from_sdk("describing the volumes", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_follow_upstream() {
        assert_eq!(device_name(0), "/dev/xvdb");
        assert_eq!(device_name(24), "/dev/xvdz");
        assert_eq!(device_name(25), "/dev/xvdba");
        assert_eq!(device_name(26), "/dev/xvdbb");
        assert_eq!(device_name(51), "/dev/xvdca");
    }

    #[test]
    fn volume_ids_are_checked() {
        assert!(valid_volume_id("vol-0123abcd"));
        assert!(valid_volume_id("vol-0123456789abcdef0"));
        assert!(!valid_volume_id("vol-123"));
        assert!(!valid_volume_id("vol-0123abcg"));
        assert!(!valid_volume_id("disk-0123abcd"));
    }
}
