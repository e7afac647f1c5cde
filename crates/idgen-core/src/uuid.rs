//! UUID version 4 (RFC 9562 §5.4): 122 random bits from a CSPRNG.

use rand::Rng;

use crate::{DecodeError, KindInfo};

pub const INFO: KindInfo = KindInfo {
    name: "uuid",
    description: "RFC 9562 UUID version 4: 122 random bits, not sortable",
    sortable: false,
    bits: 128,
};

/// What a UUID says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UuidFields {
    pub version: u8,
    /// `rfc9562`, `ncs`, `microsoft` or `future`.
    pub variant: &'static str,
}

/// A fresh version 4 UUID. `rng` must be a CSPRNG in production (`rand::rng()`).
pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> uuid::Uuid {
    let _ = rng;
    todo!()
}

/// Version and variant of any UUID in its hyphenated, simple, braced or URN form.
pub fn decode(text: &str) -> Result<UuidFields, DecodeError> {
    let _ = text;
    todo!()
}
