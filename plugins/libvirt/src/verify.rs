//! `verifyConfig`'s checks against a live connection: the pool, the network and the base image
//! exist and are usable, the host offers the configured domain type, and the launch security
//! fits the host. Read-only: nothing is created, refreshed or started.

use caa_plugin_proto::Check;

use crate::config::{LaunchSecurity, LibvirtConfig};
use crate::host::Arch;
use crate::session::Session;

/// Runs every check (blocking).
pub fn checks(session: &Session, config: &LibvirtConfig) -> Vec<Check> {
    let check = |name: &str, ok: bool, detail: String| Check {
        name: name.to_owned(),
        ok,
        detail: Some(detail),
    };
    let host = session.host();
    let mut checks = vec![check(
        "connection",
        true,
        format!("connected to {} (host arch {})", config.uri, host.arch.libvirt_name()),
    )];

    let pool = session.conn.lookup_storage_pool_by_name(&config.pool);
    checks.push(match &pool {
        Ok(p) if p.is_active().unwrap_or(false) => {
            check("pool", true, format!("storage pool {} is active", config.pool))
        }
        Ok(_) => check("pool", false, format!("storage pool {} is not active", config.pool)),
        Err(e) => check("pool", false, format!("storage pool {}: {}", config.pool, e.message())),
    });
    checks.push(match session.conn.lookup_network_by_name(&config.network) {
        Ok(n) if n.is_active().unwrap_or(false) => {
            check("network", true, format!("network {} is active", config.network))
        }
        Ok(_) => check("network", false, format!("network {} is not active", config.network)),
        Err(e) => check("network", false, format!("network {}: {}", config.network, e.message())),
    });
    if let Ok(pool) = &pool {
        checks.push(match pool.lookup_storage_vol_by_name(&config.volume) {
            Ok(_) => check("image", true, format!("base volume {} found", config.volume)),
            Err(e) => {
                check("image", false, format!("base volume {}: {}", config.volume, e.message()))
            }
        });
    }
    let offered = host.domain_types.iter().any(|t| t == &config.domain_type);
    checks.push(check(
        "domainType",
        offered,
        format!(
            "domain type {} {} offered for {} (offered: {})",
            config.domain_type,
            if offered { "is" } else { "is not" },
            host.arch.libvirt_name(),
            host.domain_types.join(", ")
        ),
    ));
    let pv_elsewhere = config.launch_security == LaunchSecurity::S390Pv && host.arch != Arch::S390x;
    checks.push(check(
        "launchSecurity",
        !pv_elsewhere,
        if pv_elsewhere {
            "s390-pv launch security needs an s390x host".to_owned()
        } else {
            format!("{:?}", config.launch_security)
        },
    ));
    checks
}
