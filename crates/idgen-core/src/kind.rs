//! The catalogue of ID kinds: everything the server, the SDK, the CLI and the tests know about
//! a kind comes from here. Each kind's file defines its [`KindInfo`] (`INFO`); the
//! `catalogue!` line below lists it once, and the [`Kind`] enum, [`Kind::ALL`] and [`KINDS`]
//! are generated from that list, so they cannot disagree.

use crate::wire::DecodeResponse;
use crate::{DecodeError, counter, ksuid, random, snowflake, timestamp, typeid, ulid, uuid, uuid7};

/// What a kind is: its name, what `/v1/kinds` says about it, which parameters it takes and how
/// its IDs are decoded.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// The `{kind}` path segment, e.g. `uuid7`.
    pub name: &'static str,
    /// One sentence for humans.
    pub description: &'static str,
    /// Whether IDs of this kind sort (as strings of equal length, or numerically for the
    /// integer kinds) in generation order.
    pub sortable: bool,
    /// Whether an ID carries the time it was issued, so that holding it back (a client-side
    /// buffer) makes it stale.
    pub time_based: bool,
    /// Size of one ID in bits (for `random`, the entropy of the default length and alphabet).
    pub bits: u32,
    /// Length of one ID as text (for `random`, the default length); a capacity hint.
    pub text_len: usize,
    /// The request parameters this kind reads besides `count`.
    pub params: &'static [Param],
    /// Takes an ID of this kind apart; `None` when its IDs carry nothing to decode.
    pub decode: Option<Decoder>,
}

/// Decodes the text of one ID into the fields `GET /v1/decode/{kind}/{id}` answers.
pub type Decoder = fn(&str, &DecodeContext) -> Result<DecodeResponse, DecodeError>;

/// What a decoder may need to know beyond the ID itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// Unix ms that snowflake time 0 stands for (the server's `IDGEN_SNOWFLAKE_EPOCH_MS`).
    pub snowflake_epoch_ms: u64,
}

impl Default for DecodeContext {
    fn default() -> Self {
        Self { snowflake_epoch_ms: snowflake::DEFAULT_EPOCH_MS }
    }
}

/// A request parameter some kinds take, besides `count` (which every kind takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    /// The counter name.
    Name,
    /// The length of a random string.
    Length,
    /// The alphabet of a random string.
    Alphabet,
    /// A TypeID's type prefix.
    Prefix,
}

impl Param {
    /// The query-string key (and JSON body field).
    pub fn key(self) -> &'static str {
        match self {
            Param::Name => "name",
            Param::Length => "length",
            Param::Alphabet => "alphabet",
            Param::Prefix => "prefix",
        }
    }

    /// What the parameter means and which values it takes.
    pub fn description(self) -> &'static str {
        match self {
            Param::Name => {
                "Counter name, 1 to 64 characters from A-Z a-z 0-9 _ . - (default `default`)"
            }
            Param::Length => "Characters per string, 1 to 1024 (default 21)",
            Param::Alphabet => "alphanumeric (default), hex, base58 or nanoid",
            Param::Prefix => {
                "Type prefix, 0 to 63 of a-z and _, not starting or ending with _ (default none)"
            }
        }
    }
}

/// Generates [`Kind`], [`Kind::ALL`] and [`KINDS`] from one list of `Variant => module` lines,
/// each module defining `pub const INFO: KindInfo`.
macro_rules! catalogue {
    ($($variant:ident => $module:ident,)*) => {
        /// A kind, for dispatch. Parsed from the catalogue name.
        // A kind added later is not a breaking change for code that matches on one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Kind {
            $(#[doc = concat!("See [`", stringify!($module), "`](crate::", stringify!($module), ").")] $variant,)*
        }

        impl Kind {
            /// Every kind, in catalogue order.
            pub const ALL: [Kind; [$(stringify!($variant)),*].len()] = [$(Kind::$variant),*];

            /// The catalogue entry of this kind.
            pub fn info(self) -> &'static KindInfo {
                match self {
                    $(Kind::$variant => &$module::INFO,)*
                }
            }
        }

        /// Every kind idgen serves, in the order `/v1/kinds` lists them.
        pub const KINDS: &[KindInfo] = &[$($module::INFO),*];
    };
}

// Adding a kind: its file in this crate (generator, `INFO`, decoder) and one line here.
catalogue! {
    Uuid => uuid,
    Uuid7 => uuid7,
    Ulid => ulid,
    Snowflake => snowflake,
    Timestamp => timestamp,
    Counter => counter,
    Random => random,
    TypeId => typeid,
    Ksuid => ksuid,
}

impl Kind {
    /// The path name, e.g. `"uuid7"`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Parse a path name; `None` for a kind idgen does not serve.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Whether a batch of this kind comes out strictly increasing.
    pub fn sortable(self) -> bool {
        self.info().sortable
    }

    /// Whether this kind's IDs carry their issue time (see [`KindInfo::time_based`]).
    pub fn time_based(self) -> bool {
        self.info().time_based
    }

    /// Whether this kind reads `param`.
    pub fn takes(self, param: Param) -> bool {
        self.info().params.contains(&param)
    }

    /// Decodes `id` as an ID of this kind.
    pub fn decode(self, id: &str, context: &DecodeContext) -> Result<DecodeResponse, DecodeError> {
        let info = self.info();
        let decode = info.decode.ok_or(DecodeError::NotDecodable { kind: info.name })?;
        decode(id, context)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::ALL.len(), KINDS.len());
        assert_eq!(Kind::from_name("nope"), None);
    }

    #[test]
    fn the_catalogue_is_consistent() {
        for (kind, info) in Kind::ALL.into_iter().zip(KINDS) {
            assert_eq!(kind.name(), info.name, "Kind::ALL and KINDS share one order");
            // Time-based IDs are issued in time order.
            assert!(!info.time_based || info.sortable, "{}", info.name);
            assert!(info.text_len > 0 && info.bits > 0, "{}", info.name);
        }
        assert!(Kind::Counter.takes(Param::Name) && !Kind::Counter.takes(Param::Length));
        assert!(Kind::Random.takes(Param::Length) && Kind::Random.takes(Param::Alphabet));
        let context = DecodeContext::default();
        assert_eq!(
            Kind::Counter.decode("1", &context),
            Err(DecodeError::NotDecodable { kind: "counter" })
        );
        assert_eq!(Kind::Timestamp.decode("5", &context).unwrap().timestamp_ms, Some(5));
    }
}
