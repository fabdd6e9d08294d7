//! `sd_notify("READY=1")` once the forwarder listens, for its `Type=notify` unit. Without
//! `NOTIFY_SOCKET` (no systemd, as in our test image and tests) it does nothing.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `READY=1` to `$NOTIFY_SOCKET` if set. Failures are logged, never fatal.
pub fn ready() {
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        send_ready_to(&path);
    }
}

/// Sends `READY=1` to the notify socket `path` (`@name` = abstract socket).
pub fn send_ready_to(path: &OsStr) {
    let result = (|| -> std::io::Result<()> {
        let addr = match path.as_encoded_bytes().strip_prefix(b"@") {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name)?,
            None => SocketAddr::from_pathname(path)?,
        };
        UnixDatagram::unbound()?.send_to_addr(b"READY=1", &addr)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_reaches_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        super::send_ready_to(path.as_os_str());
        let mut buf = [0u8; 32];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
