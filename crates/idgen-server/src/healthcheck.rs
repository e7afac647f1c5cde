//! `idgen-server healthcheck`: asks the server on this host for `/healthz` (or `--path`) and
//! exits 0 on 200, 1 otherwise. For container health checks in images that have no shell and
//! no curl.
//!
//! It reads the same settings as the server (`IDGEN_BIND`, `IDGEN_ADMIN_BIND`, `IDGEN_TLS_*`)
//! and asks on loopback, so one `HEALTHCHECK` line fits every deployment. With TLS on, it only
//! checks that the listener accepts a connection: a TLS client that trusts the server's own
//! certificate would be more code than a liveness probe deserves.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::Config;

/// Longest the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// `Ok` with a one-line summary when the server answered 200 (or accepted, with TLS).
pub fn run(config: &Config, path: &str) -> Result<String, String> {
    let address = loopback(&config.bind)?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    if config.tls_cert.is_some() {
        return Ok(format!("{address} accepts connections (TLS on: HTTP not checked)"));
    }
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|error| error.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("cannot send to {address}: {error}"))?;
    let mut head = Vec::new();
    // The status line is all we need; a slow or endless body is not read.
    let mut buffer = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let read = stream
            .read(&mut buffer)
            .map_err(|error| format!("no answer from {address}: {error}"))?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(format!("GET {path} on {address}: 200")),
        Some(status) => Err(format!("GET {path} on {address}: {status}")),
        None => Err(format!("GET {path} on {address}: not an HTTP answer ({status_line:?})")),
    }
}

/// Where to ask: `bind`'s port on loopback when it listens on every address, else `bind`.
fn loopback(bind: &str) -> Result<SocketAddr, String> {
    let address = bind
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| format!("IDGEN_BIND {bind:?} is not an address"))?;
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, address.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_on_loopback_when_the_server_listens_everywhere() {
        assert_eq!(loopback("0.0.0.0:8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(loopback("[::]:8080").unwrap(), "[::1]:8080".parse().unwrap());
        assert_eq!(loopback("127.0.0.1:9000").unwrap(), "127.0.0.1:9000".parse().unwrap());
        assert!(loopback("nonsense").is_err());
    }
}
