//! The catalogue of ID kinds: one line per kind; each kind's file defines its `INFO`.

use crate::{counter, random, snowflake, timestamp, ulid, uuid, uuid7};

/// What `/v1/kinds` says about a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The `{kind}` path segment, e.g. `uuid7`.
    pub name: &'static str,
    /// One sentence for humans.
    pub description: &'static str,
    /// Whether IDs of this kind sort (as strings of equal length, or numerically for the
    /// integer kinds) in generation order.
    pub sortable: bool,
    /// Size of one ID in bits (for `random`, the entropy of the default length and alphabet).
    pub bits: u32,
}

/// Every kind idgen serves, in the order `/v1/kinds` lists them.
pub const KINDS: &[KindInfo] = &[
    uuid::INFO,
    uuid7::INFO,
    ulid::INFO,
    snowflake::INFO,
    timestamp::INFO,
    counter::INFO,
    random::INFO,
];

/// A kind, for dispatch. Parsed from the catalogue name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Uuid,
    Uuid7,
    Ulid,
    Snowflake,
    Timestamp,
    Counter,
    Random,
}

impl Kind {
    /// Every kind, in catalogue order.
    pub const ALL: [Kind; 7] = [
        Kind::Uuid,
        Kind::Uuid7,
        Kind::Ulid,
        Kind::Snowflake,
        Kind::Timestamp,
        Kind::Counter,
        Kind::Random,
    ];

    /// The catalogue entry of this kind.
    pub fn info(self) -> &'static KindInfo {
        let name = match self {
            Kind::Uuid => uuid::INFO.name,
            Kind::Uuid7 => uuid7::INFO.name,
            Kind::Ulid => ulid::INFO.name,
            Kind::Snowflake => snowflake::INFO.name,
            Kind::Timestamp => timestamp::INFO.name,
            Kind::Counter => counter::INFO.name,
            Kind::Random => random::INFO.name,
        };
        KINDS.iter().find(|info| info.name == name).expect("every Kind is in KINDS")
    }

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
}
