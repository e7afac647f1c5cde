//! TypeID (jetify-com/typeid, spec 0.3): a type prefix and a UUIDv7 in 26 lowercase Crockford
//! base32 characters, `user_01h455vb4pex5vsknk084sn02q`.
//!
//! The UUIDs come from the same generator as kind `uuid7` (the server's), so a batch is
//! strictly increasing and, the suffix being a fixed-length encoding in an alphabet of
//! ascending ASCII, sorts as text too.

use std::fmt;

use crate::kind::{Bounder, DecodeContext, TimeBounds};
use crate::wire::DecodeResponse;
use crate::{DecodeError, KindInfo, Param, ParamError, Uuid};

/// Catalogue entry of `typeid`: an optional `prefix`; decodes the prefix, the UUID and, for a
/// UUIDv7, its timestamp.
pub const INFO: KindInfo = KindInfo {
    name: "typeid",
    description: "TypeID 0.3: an optional type prefix and a UUIDv7 as 26 lowercase Crockford base32 chars, sortable",
    sortable: true,
    time_based: true,
    bits: 128,
    text_len: MAX_PREFIX + 1 + SUFFIX_LEN,
    params: &[Param::Prefix],
    decode: Some(|text, _: &DecodeContext| decode_response(text)),
    bounds: Some(Bounder { range: |_| 0..=(1 << 48) - 1, at: bounds_at }),
};

/// The bare suffixes of the smallest and largest TypeID (its uuid7) of `unix_ms`; the server
/// puts the prefix asked for in front of both.
fn bounds_at(unix_ms: u64, _: &DecodeContext) -> TimeBounds {
    let (min, max) = crate::uuid7::bounds_uuids(unix_ms);
    let text = |uuid| {
        let mut out = Vec::with_capacity(SUFFIX_LEN);
        encode_into(&Prefix::default(), uuid, &mut out);
        String::from_utf8(out).expect("base32 is ASCII")
    };
    TimeBounds { timestamp_ms: unix_ms, min: text(min), max: text(max) }
}

/// Longest prefix the spec allows.
pub const MAX_PREFIX: usize = 63;
/// Characters of the base32 suffix: 130 bits, the first character carrying only 3.
pub const SUFFIX_LEN: usize = 26;
/// Crockford's base32 in lower case, without `i l o u`: in ascending ASCII order.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A valid type prefix: empty, or 1 to 63 of `a-z` and `_`, neither starting nor ending with
/// `_`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix(String);

impl Prefix {
    /// Checks `text` against the spec's rule.
    ///
    /// # Errors
    /// [`ParamError::Prefix`] for anything else.
    pub fn parse(text: &str) -> Result<Self, ParamError> {
        if is_valid_prefix(text) { Ok(Self(text.to_owned())) } else { Err(ParamError::Prefix) }
    }

    /// The prefix as given (empty for none).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A TypeID: a prefix and a UUID. Its text is [`encode`]'s; it parses with [`decode`]'s
/// rules. Ordered by prefix, then UUID: within one prefix, as its text sorts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId {
    prefix: Prefix,
    uuid: Uuid,
}

impl TypeId {
    /// The TypeID of `prefix` and `uuid`.
    pub fn new(prefix: Prefix, uuid: Uuid) -> Self {
        Self { prefix, uuid }
    }

    /// The type prefix (empty for none).
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The UUID it encodes.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.prefix, self.uuid))
    }
}

impl std::str::FromStr for TypeId {
    type Err = DecodeError;

    fn from_str(text: &str) -> Result<Self, DecodeError> {
        let (prefix, uuid) = decode(text)?;
        Ok(Self { prefix, uuid })
    }
}

fn is_valid_prefix(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() <= MAX_PREFIX
        && bytes.iter().all(|&byte| byte.is_ascii_lowercase() || byte == b'_')
        && bytes.first() != Some(&b'_')
        && bytes.last() != Some(&b'_')
}

/// Appends the TypeID of `prefix` and `uuid` to `out`: `prefix_suffix`, or the bare suffix
/// for an empty prefix.
pub fn encode_into(prefix: &Prefix, uuid: Uuid, out: &mut Vec<u8>) {
    if !prefix.0.is_empty() {
        out.extend_from_slice(prefix.0.as_bytes());
        out.push(b'_');
    }
    let value = uuid.as_u128();
    out.extend((0..SUFFIX_LEN).map(|index| {
        let shift = 5 * (SUFFIX_LEN - 1 - index);
        ALPHABET[((value >> shift) & 31) as usize]
    }));
}

/// The TypeID of `prefix` and `uuid` as a string.
pub fn encode(prefix: &Prefix, uuid: Uuid) -> String {
    let mut out = Vec::with_capacity(prefix.0.len() + 1 + SUFFIX_LEN);
    encode_into(prefix, uuid, &mut out);
    String::from_utf8(out).expect("prefix and alphabet are ASCII")
}

/// The value of one suffix character; `None` outside the lowercase alphabet.
fn digit(byte: u8) -> Option<u128> {
    ALPHABET.iter().position(|&candidate| candidate == byte).map(|value| value as u128)
}

/// Splits a TypeID into its prefix and UUID, as the spec reads it: the prefix is what comes
/// before the last `_` (none without one; an empty one before a `_` is invalid).
///
/// # Errors
/// [`DecodeError::Malformed`] saying what is wrong.
pub fn decode(text: &str) -> Result<(Prefix, Uuid), DecodeError> {
    let malformed = |reason| DecodeError::Malformed { kind: INFO.name, reason };
    let (prefix, suffix) = match text.rsplit_once('_') {
        Some(("", _)) => return Err(malformed("a `_` separator needs a prefix before it")),
        Some((prefix, suffix)) => (prefix, suffix),
        None => ("", text),
    };
    if !is_valid_prefix(prefix) {
        return Err(malformed(
            "the prefix must be at most 63 of a-z and _, not starting or ending with _",
        ));
    }
    let bytes = suffix.as_bytes();
    if bytes.len() != SUFFIX_LEN {
        return Err(malformed("the suffix must be 26 characters"));
    }
    let mut value = 0u128;
    for &byte in bytes {
        let digit = digit(byte).ok_or(malformed(
            "the suffix must be lowercase Crockford base32 (0-9 and a-z without i, l, o, u)",
        ))?;
        value = (value << 5) | digit;
    }
    // 26 characters carry 130 bits: the first may only use the low 3.
    if digit(bytes[0]).is_some_and(|first| first > 7) {
        return Err(malformed("the suffix is above 128 bits (its first character is above 7)"));
    }
    Ok((Prefix(prefix.to_owned()), Uuid::from_u128(value)))
}

/// What `/v1/decode/typeid/{id}` answers: the prefix, the UUID and, when it is a version 7
/// UUID, its time.
fn decode_response(text: &str) -> Result<DecodeResponse, DecodeError> {
    let (prefix, uuid) = decode(text)?;
    let mut response = match crate::uuid7::decode(&uuid.to_string()) {
        Ok(ms) => DecodeResponse::with_time(text, ms),
        Err(_) => DecodeResponse { id: text.to_owned(), ..DecodeResponse::default() },
    };
    response.prefix = Some(prefix.0);
    response.uuid = Some(uuid.hyphenated().to_string());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefixes_follow_the_spec() {
        for good in ["", "user", "pre_fix", "a", &"a".repeat(63)] {
            assert!(Prefix::parse(good).is_ok(), "{good:?}");
        }
        for bad in ["_user", "user_", "User", "us3r", "pre.fix", "préfix", " a", &"a".repeat(64)] {
            assert_eq!(Prefix::parse(bad), Err(ParamError::Prefix), "{bad:?}");
        }
    }

    #[test]
    fn decodes_what_it_encodes_with_the_spec_example() {
        let prefix = Prefix::parse("user").unwrap();
        let uuid = Uuid::parse_str("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
        assert_eq!(encode(&prefix, uuid), "user_01h455vb4pex5vsknk084sn02q");
        assert_eq!(decode("user_01h455vb4pex5vsknk084sn02q").unwrap(), (prefix, uuid));
        let bare = decode("01h455vb4pex5vsknk084sn02q").unwrap();
        assert_eq!(bare, (Prefix::default(), uuid));
        let response = decode_response("user_01h455vb4pex5vsknk084sn02q").unwrap();
        assert_eq!(response.prefix.as_deref(), Some("user"));
        assert_eq!(response.uuid.as_deref(), Some("01890a5d-ac96-774b-bcce-b302099a8057"));
        assert_eq!(response.timestamp_ms, Some(0x0189_0a5d_ac96));
        // Not a UUIDv7: no time to tell.
        let nil = decode_response("00000000000000000000000000").unwrap();
        assert_eq!((nil.timestamp_ms, nil.time), (None, None));
    }

    proptest! {
        #[test]
        fn round_trips_and_keeps_the_order_of_the_uuids(a: u128, b: u128, name in "[a-z]{0,20}") {
            let prefix = Prefix::parse(&name).unwrap();
            let (ta, tb) = (encode(&prefix, Uuid::from_u128(a)), encode(&prefix, Uuid::from_u128(b)));
            prop_assert_eq!(decode(&ta).unwrap(), (prefix.clone(), Uuid::from_u128(a)));
            prop_assert_eq!(a.cmp(&b), ta.cmp(&tb));
        }
    }
}
