//! The catalogue of ID kinds: everything the server, the SDK, the CLI and the tests know about
//! a kind comes from here. Each kind's file defines its [`KindInfo`] (`INFO`); the
//! `catalogue!` line below lists it once, and the [`Kind`] enum, [`Kind::ALL`] and [`KINDS`]
//! are generated from that list, so they cannot disagree.

use crate::wire::DecodeResponse;
use crate::{
    BoundsError, DecodeError, counter, ksuid, random, snowflake, timestamp, typeid, ulid, uuid,
    uuid7,
};

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
    /// The smallest and largest ID of one millisecond; `None` for the kinds whose IDs are not
    /// ordered by time.
    pub bounds: Option<Bounder>,
}

/// What `GET /v1/bounds/{kind}` needs of a time-ordered kind.
#[derive(Debug, Clone, Copy)]
pub struct Bounder {
    /// The Unix ms this kind can hold (snowflake: from the context's epoch).
    pub range: fn(&DecodeContext) -> std::ops::RangeInclusive<u64>,
    /// The bounds of the millisecond given, which is in `range`.
    pub at: fn(u64, &DecodeContext) -> TimeBounds,
}

/// The smallest and largest ID a kind can have for one millisecond (one second for ksuid),
/// as text: `WHERE id >= min AND id <= max` selects that time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBounds {
    /// The start of the time the bounds cover (for ksuid, the start of the second).
    pub timestamp_ms: u64,
    /// The smallest ID of that time.
    pub min: String,
    /// The largest ID of that time.
    pub max: String,
}

/// Decodes the text of one ID into the fields `GET /v1/decode/{kind}/{id}` answers.
pub type Decoder = fn(&str, &DecodeContext) -> Result<DecodeResponse, DecodeError>;

/// What a decoder may need to know beyond the ID itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// Unix ms that snowflake time 0 stands for (the server's `IDGEN_SNOWFLAKE_EPOCH_MS`).
    pub snowflake_epoch_ms: u64,
    /// The server's `IDGEN_SNOWFLAKE_LAYOUT`.
    pub snowflake_layout: snowflake::Layout,
    /// Accept only the canonical text of an ID (`?strict=true`): UUIDs lowercase and
    /// hyphenated with a defined version, ULIDs upper case, numbers without leading zeros.
    /// Lenient (the default): whatever the kind's parser reads.
    pub strict: bool,
}

impl Default for DecodeContext {
    fn default() -> Self {
        Self {
            snowflake_epoch_ms: snowflake::DEFAULT_EPOCH_MS,
            snowflake_layout: snowflake::Layout::TWITTER,
            strict: false,
        }
    }
}

impl DecodeContext {
    /// This context, strict or lenient.
    pub fn strict(self, strict: bool) -> Self {
        Self { strict, ..self }
    }
}

/// A request parameter some kinds take, besides `count` (which every kind takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    /// The counter name.
    Name,
    /// The length of a random string.
    Length,
    /// The alphabet of a random string, by name.
    Alphabet,
    /// A random string's own alphabet: the characters themselves.
    Chars,
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
            Param::Chars => "chars",
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
            Param::Chars => {
                "Your own alphabet instead: 2 to 95 distinct printable ASCII characters, percent-encoded (wins over alphabet)"
            }
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

    /// Decodes `id` as an ID of this kind. A time past what RFC 3339 can write (the year
    /// 9999) is refused, for every kind, rather than written with a longer year.
    pub fn decode(self, id: &str, context: &DecodeContext) -> Result<DecodeResponse, DecodeError> {
        let info = self.info();
        let decode = info.decode.ok_or(DecodeError::NotDecodable { kind: info.name })?;
        let response = decode(id, context)?;
        match response.timestamp_ms {
            Some(timestamp_ms) if timestamp_ms > crate::wire::MAX_RFC3339_MS => {
                Err(DecodeError::TimeOutOfRange { kind: info.name, timestamp_ms })
            }
            _ => Ok(response),
        }
    }
}

impl Kind {
    /// The smallest and largest ID of this kind at `unix_ms` (see [`TimeBounds`]). Refused
    /// for a kind not ordered by time and for a time it cannot hold or RFC 3339 cannot write.
    pub fn bounds(self, unix_ms: u64, context: &DecodeContext) -> Result<TimeBounds, BoundsError> {
        let info = self.info();
        let range = self.bounds_range(context);
        let (Some(range), Some(bounder)) = (range, info.bounds) else {
            return Err(BoundsError::NotTimeOrdered { kind: info.name });
        };
        let (first_ms, last_ms) = (*range.start(), *range.end());
        if !range.contains(&unix_ms) {
            return Err(BoundsError::OutOfRange { kind: info.name, unix_ms, first_ms, last_ms });
        }
        Ok((bounder.at)(unix_ms, context))
    }

    /// The Unix ms [`Kind::bounds`] takes for this kind, when it is ordered by time.
    pub fn bounds_range(self, context: &DecodeContext) -> Option<std::ops::RangeInclusive<u64>> {
        let range = (self.info().bounds?.range)(context);
        Some(*range.start()..=(*range.end()).min(crate::wire::MAX_RFC3339_MS))
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

    #[test]
    fn strict_decoding_takes_only_the_canonical_text() {
        let lenient = DecodeContext::default();
        let strict = lenient.strict(true);
        let uuid = "3a3d11a2-c2f6-42bd-8035-9cdbf03ea359";
        let uuid7 = "01a21bf7-6d9f-75c4-8e6a-08a285d83c6f";
        let nil = "00000000-0000-0000-0000-000000000000";
        let max = "ffffffff-ffff-ffff-ffff-ffffffffffff";
        let canonical = [
            (Kind::Uuid, uuid),
            (Kind::Uuid, nil),
            (Kind::Uuid, max),
            (Kind::Uuid7, uuid7),
            (Kind::Ulid, "01M8DZEVD7B92P8E65XMYX0CZX"),
            (Kind::Snowflake, "914059344088137728"),
            (Kind::Timestamp, "1795765530049"),
            (Kind::Timestamp, "0"),
            (Kind::TypeId, "user_01m8y4ew3peqdahftvas6hqk4v"),
            (Kind::Ksuid, "0ujtsYcgvSTl8PAuAdqWYSMnLOv"),
        ];
        for (kind, text) in canonical {
            assert!(kind.decode(text, &strict).is_ok(), "{kind} {text}: canonical");
            assert_eq!(kind.decode(text, &strict), kind.decode(text, &lenient), "{kind} {text}");
        }
        let braced = format!("{{{uuid}}}");
        let urn = format!("urn:uuid:{uuid}");
        let lenient_only = [
            (Kind::Uuid, uuid.to_uppercase()),
            (Kind::Uuid, uuid.replace('-', "")),
            (Kind::Uuid, braced),
            (Kind::Uuid, urn),
            // Versions RFC 9562 does not define (0, 9), and version 4 with Microsoft's variant.
            (Kind::Uuid, "3a3d11a2-c2f6-02bd-8035-9cdbf03ea359".to_owned()),
            (Kind::Uuid, "3a3d11a2-c2f6-92bd-8035-9cdbf03ea359".to_owned()),
            (Kind::Uuid, "3a3d11a2-c2f6-42bd-c035-9cdbf03ea359".to_owned()),
            (Kind::Uuid7, uuid7.to_uppercase()),
            (Kind::Uuid7, uuid7.replace('-', "")),
            (Kind::Ulid, "01m8dzevd7b92p8e65xmyx0czx".to_owned()),
            (Kind::Snowflake, "0914059344088137728".to_owned()),
            (Kind::Timestamp, "01795765530049".to_owned()),
        ];
        for (kind, text) in lenient_only {
            assert!(kind.decode(&text, &lenient).is_ok(), "{kind} {text}: lenient reads it");
            match kind.decode(&text, &strict) {
                Err(DecodeError::Malformed { reason, .. }) => {
                    assert!(reason.starts_with("strict: "), "{kind} {text}: {reason}")
                }
                other => panic!("{kind} {text}: strict gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_time_past_the_year_9999_is_refused_rather_than_printed() {
        use crate::wire::MAX_RFC3339_MS;
        let context = DecodeContext::default();
        let last = Kind::Timestamp.decode(&MAX_RFC3339_MS.to_string(), &context).unwrap();
        assert_eq!(last.time.as_deref(), Some("9999-12-31T23:59:59.999Z"));
        let past = |kind: Kind, text: &str| {
            assert_eq!(
                kind.decode(text, &context),
                Err(DecodeError::TimeOutOfRange {
                    kind: kind.name(),
                    timestamp_ms: MAX_RFC3339_MS + 1
                }),
                "{text}"
            );
        };
        past(Kind::Timestamp, &(MAX_RFC3339_MS + 1).to_string());
        // uuid7, ULID and a TypeID of a uuid7 hold 48-bit ms: up to the year 10889.
        let uuid7 =
            |ms: u64| crate::Uuid::from_u128((u128::from(ms) << 80) | (0x7 << 76) | (0b10 << 62));
        let ulid = |ms: u64| crate::Ulid::from_parts(ms, 0).to_string();
        let typeid = |ms: u64| {
            let mut text = Vec::new();
            crate::typeid::encode_into(&crate::typeid::Prefix::default(), uuid7(ms), &mut text);
            String::from_utf8(text).unwrap()
        };
        for (kind, text) in [
            (Kind::Uuid7, uuid7(MAX_RFC3339_MS).to_string()),
            (Kind::Ulid, ulid(MAX_RFC3339_MS)),
            (Kind::TypeId, typeid(MAX_RFC3339_MS)),
        ] {
            let decoded = kind.decode(&text, &context).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(decoded.time.as_deref(), Some("9999-12-31T23:59:59.999Z"), "{kind}");
        }
        past(Kind::Uuid7, &uuid7(MAX_RFC3339_MS + 1).to_string());
        past(Kind::Ulid, &ulid(MAX_RFC3339_MS + 1));
        past(Kind::TypeId, &typeid(MAX_RFC3339_MS + 1));
        // A TypeID of another version carries no time, so nothing to refuse.
        let mut text = Vec::new();
        let v4 = crate::Uuid::from_u128((u128::MAX >> 1) & !(0xF << 76) | (0x4 << 76));
        crate::typeid::encode_into(&crate::typeid::Prefix::default(), v4, &mut text);
        let decoded = Kind::TypeId.decode(std::str::from_utf8(&text).unwrap(), &context).unwrap();
        assert_eq!(decoded.timestamp_ms, None);
    }

    /// Compares two IDs of `kind` in its order (numbers by value, the rest as text).
    fn order(kind: Kind, a: &str, b: &str) -> std::cmp::Ordering {
        match kind {
            Kind::Snowflake | Kind::Timestamp => {
                a.parse::<u64>().unwrap().cmp(&b.parse::<u64>().unwrap())
            }
            _ => a.cmp(b),
        }
    }

    proptest::proptest! {
        /// Each millisecond's bounds decode to it, and the neighbouring millisecond's lie
        /// outside them: `min..=max` selects exactly that time.
        #[test]
        fn bounds_decode_to_their_time_and_do_not_overlap_their_neighbours(
            offset in 1u64..(1 << 41) - 1,
            pick in 0usize..6,
        ) {
            let context = DecodeContext::default();
            let kind = [Kind::Uuid7, Kind::Ulid, Kind::TypeId, Kind::Snowflake, Kind::Timestamp, Kind::Ksuid][pick];
            let range = kind.bounds_range(&context).expect("time-ordered");
            // A ksuid's bounds cover a second: step by one.
            let step = if kind == Kind::Ksuid { 1_000 } else { 1 };
            let ms = range.start() + step + offset % (range.end() - range.start() - 2 * step);
            let here = kind.bounds(ms, &context).unwrap();
            let (before, after) = (kind.bounds(ms - step, &context).unwrap(), kind.bounds(ms + step, &context).unwrap());
            proptest::prop_assert!(order(kind, &here.min, &here.max).is_le());
            proptest::prop_assert!(order(kind, &before.max, &here.min).is_lt(), "{} {}", before.max, here.min);
            proptest::prop_assert!(order(kind, &here.max, &after.min).is_lt(), "{} {}", here.max, after.min);
            for id in [&here.min, &here.max] {
                let decoded = kind.decode(id, &context.strict(true)).unwrap();
                proptest::prop_assert_eq!(decoded.timestamp_ms, Some(here.timestamp_ms), "{}", id);
            }
        }
    }

    #[test]
    fn bounds_are_refused_for_untimed_kinds_and_times_a_kind_cannot_hold() {
        let context = DecodeContext::default();
        for kind in [Kind::Uuid, Kind::Counter, Kind::Random] {
            assert_eq!(
                kind.bounds(0, &context),
                Err(BoundsError::NotTimeOrdered { kind: kind.name() })
            );
            assert_eq!(kind.bounds_range(&context), None);
        }
        let epoch = snowflake::DEFAULT_EPOCH_MS;
        let refused = |kind: Kind, ms: u64| {
            assert!(
                matches!(kind.bounds(ms, &context), Err(BoundsError::OutOfRange { .. })),
                "{kind} {ms}"
            );
        };
        refused(Kind::Snowflake, epoch - 1);
        refused(Kind::Snowflake, epoch + (1 << 41));
        refused(Kind::Ksuid, ksuid::EPOCH_SECONDS * 1000 - 1);
        refused(Kind::Timestamp, crate::wire::MAX_RFC3339_MS + 1);
        refused(Kind::Uuid7, crate::wire::MAX_RFC3339_MS + 1);
        // The first snowflake ms starts at 1 (0 is not a snowflake); the last ms ends at the
        // largest positive i64.
        assert_eq!(Kind::Snowflake.bounds(epoch, &context).unwrap().min, "1");
        let last = Kind::Snowflake.bounds(epoch + (1 << 41) - 1, &context).unwrap();
        assert_eq!(last.max, i64::MAX.to_string());
        let at = Kind::Uuid7.bounds(1_645_557_742_000, &context).unwrap();
        assert_eq!(
            (at.min.as_str(), at.max.as_str()),
            ("017f22e2-79b0-7000-8000-000000000000", "017f22e2-79b0-7fff-bfff-ffffffffffff")
        );
        let second = Kind::Ksuid.bounds(1_796_590_800_999, &context).unwrap();
        assert_eq!(second.timestamp_ms, 1_796_590_800_000);
        assert_eq!(Kind::Timestamp.bounds(5, &context).unwrap().min, "5");
    }
}
