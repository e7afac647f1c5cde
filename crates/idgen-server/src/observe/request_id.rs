//! Request ids: an incoming `X-Request-Id` that is visible ASCII and at most 128 bytes is kept,
//! any other is replaced by one made here (a per-process random prefix and a sequence number,
//! no RNG per request). The id is echoed on every response and is in every log line written
//! while the request runs (through a task-local the log formatter reads).

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::{HeaderName, HeaderValue};

/// The header, as sent and echoed.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id kept as sent.
const MAX_LEN: usize = 128;

tokio::task_local! {
    /// The id of the request whose future is running.
    pub static CURRENT: HeaderValue;
}

/// Makes request ids for one process.
pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        Self { prefix: rand::random(), next: AtomicU64::new(1) }
    }

    /// The id of a request that came with `incoming`.
    pub fn of(&self, incoming: Option<&HeaderValue>) -> HeaderValue {
        if let Some(value) = incoming
            && (1..=MAX_LEN).contains(&value.len())
            && value.as_bytes().iter().all(|byte| (b'!'..=b'~').contains(byte))
        {
            return value.clone();
        }
        self.make()
    }

    /// A new id: 8 hex digits of the process prefix and 16 of the sequence.
    fn make(&self) -> HeaderValue {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        let mut text = [0u8; 24];
        hex(&mut text[..8], u64::from(self.prefix));
        hex(&mut text[8..], sequence);
        HeaderValue::from_bytes(&text).expect("hex digits are a valid header value")
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// `value`'s low `out.len() * 4` bits as lowercase hex into `out`.
fn hex(out: &mut [u8], mut value: u64) {
    for byte in out.iter_mut().rev() {
        *byte = b"0123456789abcdef"[(value & 0xF) as usize];
        value >>= 4;
    }
}

/// The current request's id, if a request is running on this task.
pub fn current() -> Option<String> {
    CURRENT.try_with(|id| id.to_str().unwrap_or_default().to_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_good_ids_and_replaces_the_rest() {
        let ids = RequestIds::new();
        let good = HeaderValue::from_static("req-42_abc.DEF");
        assert_eq!(ids.of(Some(&good)), good);
        let made = ids.of(None);
        assert_eq!(made.len(), 24);
        assert!(made.to_str().unwrap().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(ids.of(None), made, "each made id is new");
        for bad in ["has space", "tab\there", ""] {
            let value = HeaderValue::from_str(bad).unwrap();
            assert_eq!(ids.of(Some(&value)).len(), 24, "{bad:?} is replaced");
        }
        let long = HeaderValue::from_str(&"x".repeat(129)).unwrap();
        assert_eq!(ids.of(Some(&long)).len(), 24);
        let max = HeaderValue::from_str(&"x".repeat(128)).unwrap();
        assert_eq!(ids.of(Some(&max)), max);
        let utf8 = HeaderValue::from_bytes("é".as_bytes()).unwrap();
        assert_eq!(ids.of(Some(&utf8)).len(), 24);
    }
}
