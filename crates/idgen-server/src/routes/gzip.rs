//! gzip for large answers (batches): negotiated from `Accept-Encoding`, only above
//! [`MIN_BYTES`] (a single ID, or a small batch, would grow or gain nothing worth the CPU).
//! Pure Rust (`flate2` on `miniz_oxide`), at the fastest level: IDs are high-entropy text that
//! no level shrinks much further than level 1 does (10,000 UUIDs: 390 KB to 220 KB).

use std::io::Write as _;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use flate2::Compression;
use flate2::write::GzEncoder;

use super::id_response;

/// Bodies below this go out as they are (about one TCP segment).
pub const MIN_BYTES: usize = 1400;

/// Whether `accept_encoding` accepts gzip (`gzip`, `x-gzip` or `*`, with a non-zero quality).
pub fn accepted(accept_encoding: Option<&HeaderValue>) -> bool {
    let Some(value) = accept_encoding.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let zero = parts.any(|param| {
            param.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0)
        });
        !zero && ["gzip", "x-gzip", "*"].iter().any(|accepted| name.eq_ignore_ascii_case(accepted))
    })
}

/// A batch's 200 (see [`id_response`]), its body gzipped when the client `accepts` it and it
/// is large enough; `Vary: Accept-Encoding` either way, since the answer depends on it.
pub fn batch_response(content_type: &'static str, body: Vec<u8>, accepts: bool) -> HttpResponse {
    let compressed = (accepts && body.len() >= MIN_BYTES).then(|| compress(&body)).flatten();
    let gzipped = compressed.is_some();
    let mut response = id_response(content_type, compressed.unwrap_or(body));
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn compress(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 2), Compression::fast());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let accepts = |value: &'static str| accepted(Some(&HeaderValue::from_static(value)));
        assert!(accepts("gzip"));
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(accepts("x-gzip"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepted(None));
    }
}
