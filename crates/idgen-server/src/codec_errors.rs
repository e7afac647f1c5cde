//! JSON bodies for the answers actix's HTTP/1 codec writes itself, before any service sees a
//! request: 400 for bytes it cannot parse (a bad request line or header, an HTTP/2 preface, a
//! request line or headers over its buffer), 408 when the head does not arrive in time, 431
//! for too many headers. actix writes them with an empty body and offers no hook, so
//! [`JsonCodecErrors`] wraps each connection's socket and rewrites exactly those answers as they
//! are written, into the API's one error shape.
//!
//! Recognising them costs one comparison per write: they are the only answers that end the
//! write with an empty-bodied head (`content-length: 0` and a blank line) and carry one of those
//! statuses. Every answer the app itself makes has a JSON body (its HEAD answers keep their
//! `content-length`), and the codec closes the connection after such an answer, so it is the
//! last thing written.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use actix_web::http::StatusCode;
use idgen_core::wire::{ErrorBody, ErrorCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;
use crate::observe::metrics::Metrics;

/// How far back from the end of a write an error head can start (its status line, `connection`,
/// `content-length` and `date` headers are about 120 bytes).
const HEAD_WINDOW: usize = 512;

/// A connection's socket, with the codec's own error answers rewritten.
pub struct JsonCodecErrors<IO> {
    io: IO,
    metrics: Arc<Metrics>,
    /// A rewritten write in progress: the bytes, how many are written, and how many of the
    /// caller's it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<IO> JsonCodecErrors<IO> {
    /// `io`, whose rewritten answers are counted in `metrics` (route `unmatched`).
    pub fn new(io: IO, metrics: Arc<Metrics>) -> Self {
        Self { io, metrics, pending: None }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonCodecErrors<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(context, buffer)
    }
}

impl<IO: AsyncWrite + Unpin> JsonCodecErrors<IO> {
    /// Writes what is left of the pending rewrite; `Ok(n)`: the caller's `n` bytes are done.
    fn drain(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((bytes, written, consumed)) = &mut self.pending else { return Poll::Ready(Ok(0)) };
        while *written < bytes.len() {
            match ready!(Pin::new(&mut self.io).poll_write(context, &bytes[*written..]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
        }
        let consumed = *consumed;
        self.pending = None;
        Poll::Ready(Ok(consumed))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonCodecErrors<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            // The fast path: nearly every write ends in a body, not in a blank line.
            let Some((rewritten, status)) =
                buffer.ends_with(b"\r\n\r\n").then(|| rewrite(buffer)).flatten()
            else {
                return Pin::new(&mut self.io).poll_write(context, buffer);
            };
            self.metrics.unreadable(status);
            tracing::debug!(status, "answered a request the HTTP/1 codec could not read");
            self.pending = Some((rewritten, 0, buffer.len()));
        }
        self.drain(context)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(context))?;
        Pin::new(&mut self.io).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(context))?;
        Pin::new(&mut self.io).poll_shutdown(context)
    }
}

/// `buffer` (which ends in a blank line) with a trailing codec error answer given a JSON body,
/// and that answer's status; `None` when it ends in any other answer.
fn rewrite(buffer: &[u8]) -> Option<(Vec<u8>, u16)> {
    let window_start = buffer.len().saturating_sub(HEAD_WINDOW);
    let window = &buffer[window_start..];
    let start = window_start + find_last(window, b"HTTP/1.")?;
    let head = &buffer[start..];
    let status = std::str::from_utf8(head.get(9..12)?).ok()?.parse::<u16>().ok()?;
    let (code, message) = match status {
        400 => (
            ErrorCode::InvalidRequest,
            "the request is not HTTP/1.1 this server can read: a malformed request line or header, or a request line or headers over the size limit (about 64 KB)".to_owned(),
        ),
        408 | 431 => {
            let error = ApiError::Foreign(StatusCode::from_u16(status).ok()?);
            (error.code(), error.message())
        }
        _ => return None,
    };
    let lines: Vec<&[u8]> = head[..head.len() - 4].split(|byte| *byte == b'\n').collect();
    let is_length_zero =
        |line: &&[u8]| line.trim_ascii().eq_ignore_ascii_case(b"content-length: 0");
    if !lines.iter().any(is_length_zero) {
        return None;
    }
    let body = serde_json::to_vec(&ErrorBody::new(code, message)).ok()?;
    let mut out = Vec::with_capacity(start + head.len() + body.len() + 64);
    out.extend_from_slice(&buffer[..start]);
    for line in lines.iter().filter(|line| !is_length_zero(line)) {
        out.extend_from_slice(line.trim_ascii_end());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    Some((out, status))
}

/// Where `needle` last occurs in `haystack`.
fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rewritten: Option<(Vec<u8>, u16)>) -> Option<String> {
        rewritten.map(|(bytes, _)| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn rewrites_only_the_codecs_empty_error_answers() {
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Wed, 02 Dec 2026 03:00:00 GMT\r\n\r\n";
        let rewritten = text(rewrite(head)).expect("a codec 400");
        let (head_part, body) = rewritten.split_once("\r\n\r\n").unwrap();
        assert!(head_part.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{rewritten}");
        assert!(head_part.contains("connection: close\r\n") && head_part.contains("date: "));
        assert!(!head_part.contains("content-length: 0"));
        assert!(head_part.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_request");

        // After earlier (pipelined) answers in the same write: those stay as they were.
        let mut pipelined = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n{\"id\":1}".to_vec();
        pipelined.extend_from_slice(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n",
        );
        let rewritten = text(rewrite(&pipelined)).unwrap();
        assert!(
            rewritten
                .starts_with("HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n{\"id\":1}HTTP/1.1 431")
        );
        assert!(rewritten.contains("\"code\":\"headers_too_large\""), "{rewritten}");
        let timeout = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        assert!(text(rewrite(timeout)).unwrap().contains("\"code\":\"request_timeout\""));

        // The app's own answers are left alone: a redirect, a HEAD answer, an empty 200.
        for kept in [
            &b"HTTP/1.1 302 Found\r\nlocation: /docs/\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 70\r\ncontent-type: application/json\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert_eq!(rewrite(kept), None, "{}", String::from_utf8_lossy(kept));
        }
    }
}
