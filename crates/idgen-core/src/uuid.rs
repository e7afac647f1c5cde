//! UUID version 4 (RFC 9562 §5.4): 122 random bits from a CSPRNG.

use rand::Rng;

use crate::kind::DecodeContext;
use crate::wire::DecodeResponse;
use crate::{DecodeError, KindInfo};

/// Catalogue entry of `uuid`: no parameters; decodes version and variant.
pub const INFO: KindInfo = KindInfo {
    name: "uuid",
    description: "RFC 9562 UUID version 4: 122 random bits, not sortable",
    sortable: false,
    time_based: false,
    bits: 128,
    text_len: 36,
    params: &[],
    decode: Some(describe),
    bounds: None,
};

/// What a UUID says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UuidFields {
    /// The version nibble, 0..=15 (4 for the UUIDs `uuid` issues, 7 for `uuid7`).
    pub version: u8,
    /// `rfc9562`, `ncs`, `microsoft` or `future`.
    pub variant: &'static str,
}

/// A fresh version 4 UUID. `rng` must be a CSPRNG in production (`rand::rng()`).
pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    // Overwrites the 4 version bits with 0100 and the 2 variant bits with 10, leaving 122
    // random bits.
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Version and variant of any UUID in its hyphenated, simple, braced or URN form.
pub fn decode(text: &str) -> Result<UuidFields, DecodeError> {
    let uuid = uuid::Uuid::parse_str(text).map_err(|_| DecodeError::Malformed {
        kind: INFO.name,
        reason: "expected 32 hex digits, optionally hyphenated, braced or with a urn:uuid: prefix",
    })?;
    let version = uuid.get_version_num() as u8;
    Ok(UuidFields { version, variant: variant_name(uuid.as_bytes()[8]) })
}

/// Strict mode's rule for the text of a UUID: 36 characters, lowercase hex in 8-4-4-4-12
/// groups, nothing around it (no braces, no `urn:uuid:`, no upper case).
pub(crate) fn check_canonical(text: &str, kind: &'static str) -> Result<(), DecodeError> {
    let canonical = text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => matches!(byte, b'0'..=b'9' | b'a'..=b'f'),
        });
    if canonical {
        return Ok(());
    }
    Err(DecodeError::Malformed {
        kind,
        reason: "strict: must be lowercase hex in 8-4-4-4-12 groups, without braces or urn:uuid:",
    })
}

/// The catalogue's decoder: version and variant. Strict, only the versions RFC 9562 defines
/// (1 to 8, with its variant) and its nil and max UUIDs.
fn describe(text: &str, context: &DecodeContext) -> Result<DecodeResponse, DecodeError> {
    if context.strict {
        check_canonical(text, INFO.name)?;
    }
    let fields = decode(text)?;
    let defined = (1..=8).contains(&fields.version) && fields.variant == "rfc9562";
    let special = text == "00000000-0000-0000-0000-000000000000"
        || text == "ffffffff-ffff-ffff-ffff-ffffffffffff";
    if context.strict && !defined && !special {
        return Err(DecodeError::Malformed {
            kind: INFO.name,
            reason: "strict: not a UUID RFC 9562 defines (version 1 to 8 with its variant, nil or max)",
        });
    }
    Ok(DecodeResponse {
        id: text.to_owned(),
        version: Some(fields.version),
        variant: Some(fields.variant.to_owned()),
        ..DecodeResponse::default()
    })
}

/// The variant is encoded in the leading bits of byte 8 (RFC 9562 §4.1, table 1). Decoded by
/// hand because `uuid::Variant` is `#[non_exhaustive]` and we want a closed set of names.
fn variant_name(byte8: u8) -> &'static str {
    if byte8 & 0x80 == 0x00 {
        "ncs"
    } else if byte8 & 0xC0 == 0x80 {
        "rfc9562"
    } else if byte8 & 0xE0 == 0xC0 {
        "microsoft"
    } else {
        "future"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn check(text: &str, expected: Result<(u8, &str), ()>) {
        let actual = decode(text)
            .map(|fields| (fields.version, fields.variant))
            .map_err(|err| assert!(matches!(err, DecodeError::Malformed { kind: "uuid", .. })));
        assert_eq!(actual, expected, "decoding {text:?}");
    }

    #[test]
    fn decodes_version_and_variant() {
        // Every textual form `Uuid::parse_str` accepts.
        check("8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f60718", Ok((4, "rfc9562")));
        check("8F2A3B1C9D4E4F60A1B2C3D4E5F60718", Ok((4, "rfc9562")));
        check("{8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f60718}", Ok((4, "rfc9562")));
        check("urn:uuid:8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f60718", Ok((4, "rfc9562")));
        // Other versions and every variant.
        check("017f22e2-79b0-7cc3-98c4-dc0c0c07398f", Ok((7, "rfc9562")));
        check("c232ab00-9414-11ec-b3c8-9f6bdeced846", Ok((1, "rfc9562")));
        check("00000000-0000-0000-0000-000000000000", Ok((0, "ncs")));
        check("ffffffff-ffff-ffff-ffff-ffffffffffff", Ok((15, "future")));
        check("8f2a3b1c-9d4e-4f60-c1b2-c3d4e5f60718", Ok((4, "microsoft")));
        check("8f2a3b1c-9d4e-4f60-71b2-c3d4e5f60718", Ok((4, "ncs")));
        check("8f2a3b1c-9d4e-4f60-e1b2-c3d4e5f60718", Ok((4, "future")));
    }

    #[test]
    fn rejects_malformed_text() {
        check("", Err(()));
        check("not-a-uuid", Err(()));
        check("8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f6071", Err(())); // one digit short
        check("8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f607180", Err(())); // one digit long
        check("8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f6071g", Err(())); // not hex
        check("8f2a3b1c-9d4e-4f60-a1b2_c3d4e5f60718", Err(())); // wrong separator
        check(" 8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f60718", Err(()));
    }

    #[test]
    fn sets_version_4_and_rfc_variant_bits() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..1_000 {
            let bytes = *generate(&mut rng).as_bytes();
            assert_eq!(bytes[6] >> 4, 0b0100, "version nibble");
            assert_eq!(bytes[8] >> 6, 0b10, "variant bits");
        }
    }

    #[test]
    fn the_other_122_bits_are_random() {
        // Each of the 122 free bits should be set in roughly half of the UUIDs; a bit stuck at
        // 0 or 1 (for example bytes not filled from the RNG) shows up as 0 or 1000.
        let mut rng = StdRng::seed_from_u64(122);
        let mut ones = [0u32; 128];
        for _ in 0..1_000 {
            let value = generate(&mut rng).as_u128();
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((value >> bit) & 1) as u32;
            }
        }
        let fixed_bits = [76, 77, 78, 79, 62, 63]; // version (4 bits) and variant (2 bits)
        for (bit, count) in ones.iter().enumerate() {
            if !fixed_bits.contains(&bit) {
                assert!((400..=600).contains(count), "bit {bit} set {count} times in 1000");
            }
        }
    }

    proptest! {
        #[test]
        fn decode_round_trips(seed: u64) {
            let uuid = generate(&mut StdRng::seed_from_u64(seed));
            let expected = UuidFields { version: 4, variant: "rfc9562" };
            prop_assert_eq!(decode(&uuid.to_string()), Ok(expected));
            prop_assert_eq!(decode(&uuid.simple().to_string()), Ok(expected));
        }
    }
}
