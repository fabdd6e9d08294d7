//! Storage on the blocking side: the per-VM volumes in the configured pool (a qcow2 overlay on
//! the base image and a raw volume holding the cidata ISO, uploaded through a libvirt stream),
//! and their removal by path. Volumes left by a create that died before defining its domain
//! carry the VM's name and are replaced.

use std::time::{Duration, Instant};

use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::error::{Context as _, Error};
use crate::session::{Session, code};
use crate::volume::{self, BaseVolume};

/// Pause between refresh attempts of a busy pool.
const REFRESH_RETRY: Duration = Duration::from_millis(500);

/// The paths of a VM's volumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volumes {
    /// The qcow2 root overlay.
    pub root: String,
    /// The cidata ISO.
    pub cidata: String,
}

/// What the volumes are made from.
#[derive(Debug)]
pub struct VolumeRequest<'a> {
    /// Pool name.
    pub pool: &'a str,
    /// Base image volume name.
    pub image: &'a str,
    /// VM name (volume names derive from it).
    pub vm: &'a str,
    /// Configured root disk size, GiB.
    pub root_disk_gib: u64,
    /// The seed ISO (holds user data: never logged).
    pub iso: &'a [u8],
    /// Give up refreshing a busy pool after this.
    pub deadline: Instant,
}

impl Session {
    /// Creates the root overlay and the cidata volume (with the ISO uploaded, except on the test
    /// driver, which cannot). On failure nothing of them remains, as far as libvirt lets us.
    pub fn create_volumes(&self, req: &VolumeRequest<'_>) -> Result<Volumes, Error> {
        let pool = self
            .conn
            .lookup_storage_pool_by_name(req.pool)
            .doing(|| format!("looking up storage pool {}", req.pool))?;
        let base = base_volume(&pool, req)?;
        let root_name = volume::root_name(req.vm);
        let capacity = volume::root_capacity(req.root_disk_gib, &base);
        let root = create(&pool, &root_name, &volume::overlay_xml(&root_name, capacity, &base))?;
        let cidata = self.create_cidata(&pool, req);
        let cidata = match cidata {
            Ok(cidata) => cidata,
            Err(e) => {
                delete_quietly(&root, &root_name);
                return Err(e);
            }
        };
        let paths = [&root, &cidata].map(|v| v.path().doing(|| "reading a volume path".to_owned()));
        match paths {
            [Ok(root_path), Ok(cidata_path)] => {
                Ok(Volumes { root: root_path, cidata: cidata_path })
            }
            [Err(e), _] | [_, Err(e)] => {
                delete_quietly(&root, &root_name);
                delete_quietly(&cidata, &volume::cidata_name(req.vm));
                Err(e)
            }
        }
    }

    fn create_cidata(
        &self,
        pool: &StoragePool,
        req: &VolumeRequest<'_>,
    ) -> Result<StorageVol, Error> {
        let name = volume::cidata_name(req.vm);
        let vol = create(pool, &name, &volume::raw_xml(&name, req.iso.len() as u64))?;
        if self.is_test_driver() {
            tracing::debug!(volume = %name, "test driver: ISO upload skipped (not supported)");
            return Ok(vol);
        }
        match self.upload(&vol, req.iso, &name) {
            Ok(()) => Ok(vol),
            Err(e) => {
                delete_quietly(&vol, &name);
                Err(e)
            }
        }
    }

    fn upload(&self, vol: &StorageVol, bytes: &[u8], name: &str) -> Result<(), Error> {
        let action = || format!("uploading the cidata ISO to volume {name}");
        let stream = Stream::new(&self.conn, 0).doing(action)?;
        if let Err(e) = vol.upload(&stream, 0, bytes.len() as u64, 0) {
            let _ = stream.abort();
            return Err(Error::libvirt(action(), e));
        }
        let mut sent = 0;
        while sent < bytes.len() {
            match stream.send(&bytes[sent..]) {
                Ok(n) if n > 0 => sent += n.unsigned_abs(),
                Ok(_) => {
                    let _ = stream.abort();
                    return Err(Error::Task(format!("{}: the stream accepted no data", action())));
                }
                Err(e) => {
                    let _ = stream.abort();
                    return Err(Error::libvirt(action(), e));
                }
            }
        }
        stream.finish().doing(action)
    }

    /// Deletes the volumes at `paths`; a path libvirt does not know (after a refresh of `pool`)
    /// is already gone.
    pub fn delete_volumes(&self, paths: &[String], pool: &str) -> Result<(), Error> {
        let mut refreshed = false;
        for path in paths {
            let vol = match self.conn.lookup_storage_vol_by_path(path) {
                Ok(vol) => vol,
                Err(e) if code(&e) == Some(ErrorNumber::NoStorageVolume) && !refreshed => {
                    refreshed = true;
                    if let Ok(p) = self.conn.lookup_storage_pool_by_name(pool) {
                        let _ = p.refresh(0);
                    }
                    match self.conn.lookup_storage_vol_by_path(path) {
                        Ok(vol) => vol,
                        Err(e) if code(&e) == Some(ErrorNumber::NoStorageVolume) => continue,
                        Err(e) => {
                            return Err(Error::libvirt(format!("looking up volume {path}"), e));
                        }
                    }
                }
                Err(e) if code(&e) == Some(ErrorNumber::NoStorageVolume) => continue,
                Err(e) => return Err(Error::libvirt(format!("looking up volume {path}"), e)),
            };
            match vol.delete(0) {
                Ok(()) => {}
                Err(e) if code(&e) == Some(ErrorNumber::NoStorageVolume) => {}
                Err(e) => return Err(Error::libvirt(format!("deleting volume {path}"), e)),
            }
        }
        Ok(())
    }
}

/// The base image, refreshing the pool once if it is not known yet (an image copied into the
/// pool's directory by hand); a pool busy with other volume jobs is retried until the deadline.
fn base_volume(pool: &StoragePool, req: &VolumeRequest<'_>) -> Result<BaseVolume, Error> {
    let vol = match pool.lookup_storage_vol_by_name(req.image) {
        Ok(vol) => vol,
        Err(e) if code(&e) == Some(ErrorNumber::NoStorageVolume) => {
            refresh(pool, req)?;
            pool.lookup_storage_vol_by_name(req.image)
                .map_err(|_| Error::NoBaseVolume(req.image.to_owned()))?
        }
        Err(e) => return Err(Error::libvirt(format!("looking up volume {}", req.image), e)),
    };
    let xml = vol.xml_desc(0).doing(|| format!("reading volume {}", req.image))?;
    BaseVolume::from_xml(&xml)
}

fn refresh(pool: &StoragePool, req: &VolumeRequest<'_>) -> Result<(), Error> {
    loop {
        match pool.refresh(0) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() + REFRESH_RETRY < req.deadline => {
                tracing::debug!(pool = req.pool, error = %e.message(), "pool refresh failed; retrying");
                std::thread::sleep(REFRESH_RETRY);
            }
            Err(e) => {
                return Err(Error::libvirt(format!("refreshing storage pool {}", req.pool), e));
            }
        }
    }
}

/// Creates volume `name`, replacing a leftover of the same name.
fn create(pool: &StoragePool, name: &str, xml: &str) -> Result<StorageVol, Error> {
    if let Ok(stale) = pool.lookup_storage_vol_by_name(name) {
        tracing::warn!(volume = name, "replacing a volume left by an earlier create");
        stale.delete(0).doing(|| format!("deleting leftover volume {name}"))?;
    }
    StorageVol::create_xml(pool, xml, 0).doing(|| format!("creating volume {name}"))
}

fn delete_quietly(vol: &StorageVol, name: &str) {
    if let Err(e) = vol.delete(0) {
        tracing::warn!(volume = name, error = %e.message(), "could not delete volume during rollback");
    }
}
