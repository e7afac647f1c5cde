//! What a request for IDs carries and what its answer holds: the `random` kind's options, the
//! requests of the typed methods, and the parsing of IDs and of the two answer shapes.

use std::fmt::Display;
use std::str::FromStr;

use idgen_core::Kind;
use idgen_core::random::{Alphabet, Length};
use idgen_core::wire::IdRequest;
use serde::Deserialize;

use crate::Error;

/// Options of the `random` kind. `RandomOptions::default()` is what the server uses when it is
/// given none: 21 characters, alphanumeric.
///
/// ```
/// use idgen_client::{Alphabet, Length, RandomOptions};
///
/// let api_key = RandomOptions::new(Length::new(32)?, Alphabet::Base58);
/// assert_eq!(api_key.length.get(), 32);
/// assert!(Length::new(5000).is_err(), "1..=1024 is checked before any request");
/// // Your own alphabet (NanoID's customAlphabet), checked before any request too.
/// let pin = RandomOptions::new(Length::new(6)?, Alphabet::custom("0123456789")?);
/// assert!(Alphabet::custom("aab").is_err(), "2 to 95 distinct printable ASCII characters");
/// # Ok::<(), idgen_client::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RandomOptions {
    /// Number of characters, 1..=1024.
    pub length: Length,
    /// Characters to draw from.
    pub alphabet: Alphabet,
}

impl RandomOptions {
    /// `length` characters from `alphabet`.
    pub fn new(length: Length, alphabet: Alphabet) -> Self {
        Self { length, alphabet }
    }

    pub(crate) fn to_request(self, count: Option<u32>) -> IdRequest {
        // A caller's own alphabet travels as its characters, a named one by its name.
        let (alphabet, chars) = match self.alphabet {
            Alphabet::Custom(set) => (None, Some(set.to_string())),
            named => (Some(named.name().to_owned()), None),
        };
        IdRequest {
            count,
            name: None,
            length: Some(u32::try_from(self.length.get()).expect("Length is at most 1024")),
            alphabet,
            chars,
            prefix: None,
        }
    }
}

/// A batch of `count` IDs, as the request of [`Client::ids`].
pub(crate) fn counted(count: u32) -> IdRequest {
    IdRequest { count: Some(count), ..IdRequest::default() }
}

/// A TypeID request; an empty prefix is left out (the server's default).
pub(crate) fn prefixed(prefix: &str, count: Option<u32>) -> IdRequest {
    let prefix = (!prefix.is_empty()).then(|| prefix.to_owned());
    IdRequest { count, prefix, ..IdRequest::default() }
}

pub(crate) fn named(name: &str, count: Option<u32>) -> IdRequest {
    IdRequest { count, name: Some(name.to_owned()), ..IdRequest::default() }
}

pub(crate) fn parse_id<T>(kind: Kind, id: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    id.parse().map_err(|error| Error::InvalidResponse {
        message: format!("`{id}` is not a valid {kind} id: {error}"),
    })
}

/// Either answer of `GET /v1/ids/{kind}`: `{"ids": [...]}` or `{"id": ...}`. One struct with
/// both fields rather than an untagged enum, which would buffer the whole document in serde's
/// generic form before trying each shape (a quarter of the CLI's CPU on large batches).
#[derive(Deserialize)]
pub(crate) struct IdAnswer {
    ids: Option<Vec<String>>,
    id: Option<String>,
}

impl IdAnswer {
    pub(crate) fn into_ids(self) -> Result<Vec<String>, Error> {
        match self {
            IdAnswer { ids: Some(ids), .. } => Ok(ids),
            IdAnswer { id: Some(id), .. } => Ok(vec![id]),
            IdAnswer { ids: None, id: None } => Err(Error::InvalidResponse {
                message: "an ID answer without `id` or `ids`".to_owned(),
            }),
        }
    }
}
