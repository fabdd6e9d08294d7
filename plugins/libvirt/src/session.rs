//! The blocking side: one libvirt connection and the host facts read when it opened, and the
//! domain operations the provider needs (find, define, start, addresses, remove, list). Every
//! method here blocks on libvirt and is called from `tokio::task::spawn_blocking`; the handles
//! are `Send + Sync`. Storage operations are in [`crate::storage`].

use std::sync::Once;

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;
use virt::sys;

use crate::error::{Context as _, Error};
use crate::host::HostInfo;
use crate::metadata::DomainRecord;

/// A domain and what its XML says.
#[derive(Debug)]
pub struct Found {
    /// The libvirt handle.
    pub domain: Domain,
    /// Its XML, read.
    pub record: DomainRecord,
}

/// An open libvirt connection.
#[derive(Debug)]
pub struct Session {
    pub(crate) conn: Connect,
    host: HostInfo,
    test_driver: bool,
}

/// Stops libvirt's default error handler from printing every error to stderr; errors are
/// returned and logged by the plugin instead.
pub fn quiet_libvirt() {
    static ONCE: Once = Once::new();
    ONCE.call_once(virt::error::clear_error_callback);
}

impl Session {
    /// Connects to `uri` and reads the host capabilities.
    pub fn open(uri: &str) -> Result<Session, Error> {
        quiet_libvirt();
        let conn = Connect::open(Some(uri)).doing(|| format!("connecting to {uri}"))?;
        let caps = conn.capabilities().doing(|| "reading host capabilities".to_owned())?;
        let host = HostInfo::from_capabilities(&caps)?;
        let driver = conn.driver_type().doing(|| "reading the driver type".to_owned())?;
        Ok(Session { conn, host, test_driver: driver.eq_ignore_ascii_case("test") })
    }

    /// The underlying connection, for tools and tests that look at what the plugin made.
    pub fn connect(&self) -> &Connect {
        &self.conn
    }

    /// The host facts.
    pub fn host(&self) -> &HostInfo {
        &self.host
    }

    /// Whether this is libvirt's `test://` driver, which cannot upload volumes.
    pub fn is_test_driver(&self) -> bool {
        self.test_driver
    }

    /// Whether the connection still works (a local check, no round trip).
    pub fn is_alive(&self) -> bool {
        self.conn.is_alive().unwrap_or(false)
    }

    /// Every domain with its XML; domains that vanish while being listed are skipped.
    pub fn domains(&self) -> Result<Vec<Found>, Error> {
        let domains = self.conn.list_all_domains(0).doing(|| "listing domains".to_owned())?;
        let mut found = Vec::with_capacity(domains.len());
        for domain in domains {
            match read(domain) {
                Ok(Some(f)) => found.push(f),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// The domain named `name`, if any.
    pub fn by_name(&self, name: &str) -> Result<Option<Found>, Error> {
        match self.conn.lookup_domain_by_name(name) {
            Ok(domain) => read(domain),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(Error::libvirt(format!("looking up domain {name}"), e)),
        }
    }

    /// The domain with UUID `uuid`, if any (an id that is not a UUID names no domain).
    pub fn by_uuid(&self, uuid: &str) -> Result<Option<Found>, Error> {
        match self.conn.lookup_domain_by_uuid_string(uuid) {
            Ok(domain) => read(domain),
            Err(e) if gone(&e) || code(&e) == Some(ErrorNumber::InvalidArg) => Ok(None),
            Err(e) => Err(Error::libvirt(format!("looking up domain {uuid}"), e)),
        }
    }

    /// Defines a persistent domain and returns it with its UUID.
    pub fn define(&self, xml: &str, name: &str) -> Result<(Domain, String), Error> {
        let domain =
            self.conn.define_domain_xml(xml).doing(|| format!("defining domain {name}"))?;
        let uuid = domain.uuid_string().doing(|| format!("reading the UUID of {name}"))?;
        Ok((domain, uuid))
    }
}

/// Starts `domain` unless it runs.
pub fn start(domain: &Domain, name: &str) -> Result<(), Error> {
    if domain.is_active().doing(|| format!("reading the state of {name}"))? {
        return Ok(());
    }
    match domain.create() {
        Ok(()) => Ok(()),
        Err(e) if code(&e) == Some(ErrorNumber::OperationInvalid) => Ok(()),
        Err(e) => Err(Error::libvirt(format!("starting domain {name}"), e)),
    }
}

/// The addresses the libvirt network's DHCP server leased to the domain's interfaces, IPv4
/// first. The ARP source is not used: it fails on recent kernels (testbeds-local §2).
pub fn lease_addresses(domain: &Domain, name: &str) -> Result<Vec<String>, Error> {
    let interfaces = domain
        .interface_addresses(sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
        .doing(|| format!("reading the DHCP leases of {name}"))?;
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for address in interfaces.iter().flat_map(|i| &i.addrs) {
        let list = if address.addr.contains(':') { &mut v6 } else { &mut v4 };
        if !list.contains(&address.addr) {
            list.push(address.addr.clone());
        }
    }
    v4.extend(v6);
    Ok(v4)
}

/// libvirt's word for the domain's state (`running`, `shutoff`, ...).
pub fn state_word(domain: &Domain) -> String {
    let word = match domain.state() {
        Ok((Enum::Known(state), _)) => match state {
            DomainState::NoState => "nostate",
            DomainState::Running => "running",
            DomainState::Blocked => "blocked",
            DomainState::Paused => "paused",
            DomainState::Shutdown => "shutdown",
            DomainState::Shutoff => "shutoff",
            DomainState::Crashed => "crashed",
            DomainState::PMSuspended => "pmsuspended",
        },
        _ => "unknown",
    };
    word.to_owned()
}

impl Session {
    /// Removes a domain: stops it, deletes the volumes it was created with (the ones its
    /// metadata lists, else every file-backed disk, as upstream does), then undefines it with
    /// its NVRAM when libvirt supports the flag. A volume that cannot be deleted fails the call
    /// before the undefine, so that a retry still finds the volumes through the domain.
    pub fn remove(&self, found: &Found, pool: &str) -> Result<(), Error> {
        let Found { domain, record } = found;
        let name = record.name.as_str();
        if domain.is_active().unwrap_or(false) {
            match domain.destroy() {
                Ok(()) => {}
                Err(e) if gone(&e) || code(&e) == Some(ErrorNumber::OperationInvalid) => {}
                Err(e) => return Err(Error::libvirt(format!("stopping domain {name}"), e)),
            }
        }
        let volumes = match &record.meta {
            Some(meta) => &meta.volumes,
            None => &record.disk_files,
        };
        self.delete_volumes(volumes, pool)?;
        let undefined = match domain.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM) {
            Err(e)
                if matches!(
                    code(&e),
                    Some(
                        ErrorNumber::InvalidArg
                            | ErrorNumber::NoSupport
                            | ErrorNumber::ArgumentUnsupported
                            | ErrorNumber::OperationUnsupported
                    )
                ) =>
            {
                domain.undefine()
            }
            other => other,
        };
        match undefined {
            Ok(()) => Ok(()),
            Err(e) if gone(&e) => Ok(()),
            Err(e) => Err(Error::libvirt(format!("undefining domain {name}"), e)),
        }
    }
}

fn read(domain: Domain) -> Result<Option<Found>, Error> {
    match domain.xml_desc(0) {
        Ok(xml) => Ok(Some(Found { record: DomainRecord::from_xml(&xml)?, domain })),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(Error::libvirt("reading a domain's XML", e)),
    }
}

pub(crate) fn code(e: &virt::error::Error) -> Option<ErrorNumber> {
    match e.code() {
        Enum::Known(code) => Some(code),
        Enum::Unknown(_) => None,
    }
}

fn gone(e: &virt::error::Error) -> bool {
    code(e) == Some(ErrorNumber::NoDomain)
}
