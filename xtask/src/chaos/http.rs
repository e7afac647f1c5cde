//! The chaos load's HTTP/1.1 client: `GET` over a kept-alive `std::net::TcpStream`, reading
//! exactly one response (`Content-Length` or chunked) so that the connection can carry the
//! next request. Anything the transport does wrong (refused, reset, timed out, a response cut
//! short) is a [`Failure`], not an answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest response body read (a 10,000-ID batch of ULIDs is about 300 KB).
const MAX_BODY: usize = 4 << 20;

/// One response as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// The request got no response: the text says why (refused, reset, timeout, cut short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

/// A kept-alive connection to one server.
pub struct Connection {
    address: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(address: SocketAddr, timeout: Duration) -> Result<Connection, Failure> {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))
            .map_err(|error| Failure(format!("connect: {error}")))?;
        stream.set_read_timeout(Some(timeout)).map_err(|error| Failure(error.to_string()))?;
        stream.set_write_timeout(Some(timeout)).map_err(|error| Failure(error.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Connection { address, reader: BufReader::new(stream) })
    }

    /// Sends `GET path` and reads its response. After a failure the connection is unusable.
    pub fn get(&mut self, path: &str) -> Result<Response, Failure> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.address);
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(|error| Failure(format!("send: {error}")))?;
        read_response(&mut self.reader)
    }
}

/// Reads one HTTP/1.1 response from `reader`.
pub fn read_response(reader: &mut impl BufRead) -> Result<Response, Failure> {
    let status_line = read_line(reader)?;
    if status_line.is_empty() {
        return Err(Failure("connection closed before a response".to_owned()));
    }
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| Failure(format!("not an HTTP status line: {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) =
            line.split_once(':').ok_or_else(|| Failure(format!("not a header line: {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        read_chunked(reader)?
    } else {
        let length = find("content-length")
            .map(|value| value.parse::<usize>())
            .transpose()
            .map_err(|_| Failure("bad Content-Length".to_owned()))?
            .unwrap_or(0);
        read_exact(reader, length)?
    };
    Ok(Response { status, headers, body })
}

/// A line without its CRLF ("" at the end of the stream).
fn read_line(reader: &mut impl BufRead) -> Result<String, Failure> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).map_err(|error| Failure(format!("read: {error}")))?;
    if line.len() > 16 << 10 {
        return Err(Failure("header line too long".to_owned()));
    }
    while line.last().is_some_and(|byte| *byte == b'\n' || *byte == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| Failure("non-UTF-8 header".to_owned()))
}

fn read_exact(reader: &mut impl Read, length: usize) -> Result<Vec<u8>, Failure> {
    if length > MAX_BODY {
        return Err(Failure(format!("body of {length} bytes is too large")));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|error| Failure(format!("body cut short: {error}")))?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| Failure(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(Failure("chunked body too large".to_owned()));
        }
        body.extend(read_exact(reader, size)?);
        if !read_line(reader)?.is_empty() {
            return Err(Failure("no CRLF after a chunk".to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_responses_one_after_another() {
        let wire = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nContent-Type: application/json\r\n\r\n{\"id\":\"1\"}HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n2\r\n\":\r\n1\r\n1\r\n1\r\n}\r\n0\r\n\r\n";
        let mut reader = BufReader::new(&wire[..]);
        let first = read_response(&mut reader).unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"{\"id\":\"1\"}"[..]));
        assert_eq!(first.header("content-type"), Some("application/json"));
        let second = read_response(&mut reader).unwrap();
        assert_eq!((second.status, second.body.as_slice()), (503, &b"{\"a\":1}"[..]));
        assert_eq!(second.header("retry-after"), Some("1"));
        assert!(read_response(&mut reader).is_err(), "the stream has ended");
    }

    #[test]
    fn a_cut_response_is_a_failure_not_an_answer() {
        let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{\"id\"";
        assert!(read_response(&mut BufReader::new(&cut[..])).is_err());
        let garbage = b"SSH-2.0-OpenSSH\r\n\r\n";
        assert!(read_response(&mut BufReader::new(&garbage[..])).is_err());
    }
}
