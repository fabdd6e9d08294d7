//! TCP traffic between namespaces: a round trip that checks every byte both ways, and a one-way
//! bulk transfer for throughput. Shared by the integration tests and the benchmark.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::in_netns;

/// Hang protection only; nothing asserts on time.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + usize::from(seed)) % 251) as u8).collect()
}

fn listen(server_ns: &Path, ip: &str, port: u16) -> (TcpListener, SocketAddr) {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let listener = in_netns(server_ns, move || TcpListener::bind(addr).expect("bind"));
    (listener, addr)
}

fn connect(client_ns: &Path, addr: SocketAddr) -> TcpStream {
    let s = in_netns(client_ns, move || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect through")
    });
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// The client in `client_ns` sends `len` bytes to a server at `ip`:`port` in `server_ns`, which
/// checks them and answers with `len` bytes of its own that the client checks.
pub fn round_trip(client_ns: &Path, server_ns: &Path, ip: &str, port: u16, len: usize) {
    let (listener, addr) = listen(server_ns, ip, port);
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut got = vec![0; len];
        s.read_exact(&mut got).expect("server read");
        assert!(got == pattern(1, len), "server received corrupted data");
        s.write_all(&pattern(2, len)).expect("server write");
    });
    let mut c = connect(client_ns, addr);
    c.write_all(&pattern(1, len)).expect("client write");
    let mut back = vec![0; len];
    c.read_exact(&mut back).expect("client read");
    assert!(back == pattern(2, len), "client received corrupted data");
    server.join().expect("server thread");
}

/// Sends `len` bytes one way and returns MiB/s (measured until the server's one-byte receipt).
pub fn throughput(client_ns: &Path, server_ns: &Path, ip: &str, port: u16, len: usize) -> f64 {
    let (listener, addr) = listen(server_ns, ip, port);
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = vec![0; 256 * 1024];
        let mut total = 0;
        while total < len {
            let n = s.read(&mut buf).expect("server read");
            assert!(n > 0, "early end of stream after {total} bytes");
            total += n;
        }
        s.write_all(&[1]).expect("receipt");
    });
    let chunk = pattern(3, 256 * 1024);
    let start = Instant::now();
    let mut c = connect(client_ns, addr);
    let mut sent = 0;
    while sent < len {
        let n = chunk.len().min(len - sent);
        c.write_all(&chunk[..n]).expect("client write");
        sent += n;
    }
    let mut receipt = [0];
    c.read_exact(&mut receipt).expect("receipt");
    let secs = start.elapsed().as_secs_f64();
    server.join().expect("server thread");
    len as f64 / (1024.0 * 1024.0) / secs
}
