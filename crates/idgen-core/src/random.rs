//! Random strings from a CSPRNG over a fixed alphabet, without modulo bias.

use rand::Rng;

use crate::{KindInfo, ParamError};

pub const INFO: KindInfo = KindInfo {
    name: "random",
    description: "random string from a CSPRNG; length 1..=1024 (default 21), alphabets alphanumeric, hex, base58, nanoid",
    sortable: false,
    bits: 125,
};

/// The alphabets a random string can be drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alphabet {
    /// `0-9A-Za-z`
    #[default]
    Alphanumeric,
    /// `0-9a-f`
    Hex,
    /// Bitcoin base58: alphanumeric without `0 O I l`.
    Base58,
    /// NanoID's URL-safe `A-Za-z0-9_-`.
    Nanoid,
}

impl Alphabet {
    /// The characters, in ascending byte order.
    pub fn chars(self) -> &'static [u8] {
        todo!()
    }

    /// The wire name (`alphanumeric`, `hex`, `base58`, `nanoid`).
    pub fn name(self) -> &'static str {
        todo!()
    }
}

impl std::str::FromStr for Alphabet {
    type Err = ParamError;
    fn from_str(name: &str) -> Result<Self, ParamError> {
        let _ = name;
        todo!()
    }
}

/// A validated length, 1..=1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length(usize);

impl Length {
    pub const MAX: usize = 1024;
    pub const DEFAULT: Length = Length(21);

    pub fn new(length: usize) -> Result<Self, ParamError> {
        if (1..=Self::MAX).contains(&length) {
            Ok(Self(length))
        } else {
            Err(ParamError::Length { max: Self::MAX })
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for Length {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A random string of `length` characters from `alphabet`.
pub fn generate<R: Rng + ?Sized>(rng: &mut R, length: Length, alphabet: Alphabet) -> String {
    let _ = (rng, length, alphabet);
    todo!()
}
