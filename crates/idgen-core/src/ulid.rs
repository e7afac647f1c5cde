//! ULID (ulid/spec): 48-bit ms timestamp + 80 random bits, Crockford base32, monotonic.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rand::Rng;

use crate::kind::{Bounder, DecodeContext, TimeBounds};
use crate::wire::DecodeResponse;
use crate::{Clock, DecodeError, IssueError, KindInfo, SystemClock};

/// Catalogue entry of `ulid`: no parameters; decodes the timestamp.
pub const INFO: KindInfo = KindInfo {
    name: "ulid",
    description: "ULID: 48-bit ms timestamp and 80 random bits, 26 Crockford base32 chars, sortable",
    sortable: true,
    time_based: true,
    bits: 128,
    text_len: 26,
    params: &[],
    decode: Some(|text, context: &DecodeContext| {
        // Strict: upper case only, as ULIDs are written (lenient also reads lower case).
        if context.strict && !text.bytes().all(|byte| CROCKFORD.contains(&byte)) {
            let reason = "strict: must be upper-case Crockford base32 (0-9, A-Z without I L O U)";
            return Err(DecodeError::Malformed { kind: INFO.name, reason });
        }
        Ok(DecodeResponse::with_time(text, decode(text)?))
    }),
    bounds: Some(Bounder { range: |_| 0..=MAX_MS, at: bounds_at }),
};

/// The smallest and largest ULID of `unix_ms`: the 80 random bits all clear, then all set.
fn bounds_at(unix_ms: u64, _: &DecodeContext) -> TimeBounds {
    let time = u128::from(unix_ms) << 80;
    TimeBounds {
        timestamp_ms: unix_ms,
        min: ulid::Ulid(time).to_string(),
        max: ulid::Ulid(time | MAX_RANDOM).to_string(),
    }
}

/// The characters of a ULID as written.
const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Largest timestamp a ULID holds (year 10889).
const MAX_MS: u64 = (1 << 48) - 1;
/// Largest 80-bit random part.
const MAX_RANDOM: u128 = (1 << 80) - 1;

/// Issues ULIDs, strictly increasing across all threads of the process.
///
/// Monotonic as in the ULID spec: a later millisecond gets a fresh random part; in the same
/// millisecond, or when the clock reads earlier than the last ULID, the timestamp of the last
/// ULID is kept and its random part is incremented by one.
///
/// **Overflow rule.** If the random part is already `2^80 - 1`, the spec's generator returns an
/// error; this one never does. It moves to the last timestamp + 1 ms with a fresh random part,
/// so the ULID's timestamp runs up to 1 ms ahead of the clock (more only if that, too, were to
/// overflow, which at 2^-80 per fresh value does not happen in practice). Later calls in the
/// clock's current millisecond continue from there, so the output stays strictly increasing.
///
/// State is a `(ms, random)` pair behind a `parking_lot::Mutex`: 128 bits of state does not
/// fit one portable atomic. A fresh random part is drawn only when one is used (a later
/// millisecond, or overflow), inside the lock: under load nearly every call is the same-ms
/// increment, and drawing 80 bits up front for it cost about a tenth of the call
/// (`benches/ratios.rs`), while the in-lock draw happens about once per millisecond.
///
/// The 48-bit timestamp ends in year 10889; a clock beyond that is read as the last
/// millisecond, after which ordering can no longer be kept.
#[derive(Debug)]
pub struct UlidGenerator<C: Clock = SystemClock> {
    clock: C,
    /// `(timestamp_ms, random)` of the last ULID issued (or the floor); `(0, 0)` before either.
    state: Mutex<(u64, u128)>,
    /// Highest timestamp a ULID may carry; `u64::MAX` means unlimited.
    ceiling: AtomicU64,
}

impl<C: Clock> UlidGenerator<C> {
    /// A generator with no floor and an unlimited ceiling.
    pub fn new(clock: C) -> Self {
        Self { clock, state: Mutex::new((0, 0)), ceiling: AtomicU64::new(u64::MAX) }
    }

    /// Never issue a ULID whose timestamp is at or below `unix_ms` (a mark persisted by an
    /// earlier run). Call before the first `generate`.
    pub fn with_floor(self, unix_ms: u64) -> Self {
        {
            let mut state = self.state.lock();
            // The floor's whole millisecond counts as used: the next ULID is at a later one.
            *state = (*state).max((unix_ms.min(MAX_MS), MAX_RANDOM));
        }
        self
    }

    /// Allow timestamps up to and including `unix_ms` (unlimited until first called). The
    /// caller raises it only after persisting a mark at least this high.
    pub fn set_ceiling(&self, unix_ms: u64) {
        self.ceiling.store(unix_ms, Ordering::Release);
    }

    /// The ceiling set last (`u64::MAX` before any).
    pub fn ceiling_ms(&self) -> u64 {
        self.ceiling.load(Ordering::Acquire)
    }

    /// The highest timestamp (Unix ms) issued, or the floor.
    pub fn high_water_ms(&self) -> u64 {
        self.state.lock().0
    }

    /// The next ULID, greater than every ULID this generator issued before (see the type's
    /// docs for what happens when the random part would overflow);
    /// [`IssueError::CeilingReached`] when its timestamp would be above the ceiling.
    pub fn generate<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<ulid::Ulid, IssueError> {
        let now_ms = self.clock.now_ms().min(MAX_MS);
        let ceiling = self.ceiling.load(Ordering::Acquire);
        let mut fresh = || (u128::from(rng.next_u64()) << 16) | u128::from(rng.next_u32() & 0xFFFF);
        let (timestamp_ms, random) = {
            let mut state = self.state.lock();
            let (last_ms, last_random) = *state;
            let next_ms = if now_ms > last_ms {
                now_ms
            } else if last_random < MAX_RANDOM {
                last_ms
            } else {
                (last_ms + 1).min(MAX_MS)
            };
            if next_ms > ceiling {
                return Err(IssueError::CeilingReached { needed: next_ms, ceiling });
            }
            let next = if next_ms == last_ms && last_random < MAX_RANDOM {
                (last_ms, last_random + 1)
            } else {
                (next_ms, fresh())
            };
            *state = next;
            next
        };
        Ok(ulid::Ulid::from_parts(timestamp_ms, random))
    }
}

/// The Unix ms timestamp of a ULID (26 Crockford base32 characters, case-insensitive).
pub fn decode(text: &str) -> Result<u64, DecodeError> {
    let malformed = |reason| DecodeError::Malformed { kind: INFO.name, reason };
    if text.len() != ulid::ULID_LEN {
        return Err(malformed("must be 26 characters"));
    }
    let ulid = ulid::Ulid::from_string(text).map_err(|_| {
        malformed("must use only Crockford base32 characters (0-9, A-Z without I L O U)")
    })?;
    // 26 base32 characters carry 130 bits; the decoder drops the top two silently, so a first
    // character above 7 would alias a different ULID.
    if text.as_bytes()[0] > b'7' {
        return Err(malformed("exceeds 128 bits: the first character must be 0-7"));
    }
    Ok(ulid.timestamp_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const T: u64 = 1_700_000_000_000;

    fn check(text: &str, expected: Result<u64, ()>) {
        let actual = decode(text)
            .map_err(|err| assert!(matches!(err, DecodeError::Malformed { kind: "ulid", .. })));
        assert_eq!(actual, expected, "decoding {text:?}");
    }

    #[test]
    fn decodes_timestamps_and_rejects_malformed_text() {
        check("01ARZ3NDEKTSV4RRFFQ69G5FAV", Ok(1_469_922_850_259)); // the spec's example
        check("01arz3ndektsv4rrffq69g5fav", Ok(1_469_922_850_259)); // case-insensitive
        check("00000000000000000000000000", Ok(0));
        check("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", Ok(MAX_MS)); // largest ULID
        check("80000000000000000000000000", Err(())); // 2^128: overflow
        check("ZZZZZZZZZZZZZZZZZZZZZZZZZZ", Err(()));
        check("01ARZ3NDEKTSV4RRFFQ69G5FA", Err(())); // 25 chars
        check("01ARZ3NDEKTSV4RRFFQ69G5FAVX", Err(())); // 27 chars
        check("", Err(()));
        check("01ARZ3NDEKTSV4RRFFQ69G5FAU", Err(())); // U is not Crockford
        check("01ARZ3NDEKTSV4RRFFQ69G5FA-", Err(()));
        check("01ARZ3NDEKTSV4RRFFQ69G5Fé", Err(())); // 26 bytes, not 26 ASCII chars
    }

    #[test]
    fn same_millisecond_increments_the_random_part() {
        let clock = ManualClock::new(T);
        let generator = UlidGenerator::new(&clock);
        let mut rng = StdRng::seed_from_u64(1);
        let first = generator.generate(&mut rng).unwrap();
        assert_eq!(first.timestamp_ms(), T);
        assert_eq!(first.to_string().len(), 26);
        for step in 1..=1_000u128 {
            let ulid = generator.generate(&mut rng).unwrap();
            assert_eq!((ulid.timestamp_ms(), ulid.random()), (T, first.random() + step));
        }
    }

    #[test]
    fn a_new_millisecond_draws_a_fresh_random_part() {
        let clock = ManualClock::new(T);
        let generator = UlidGenerator::new(&clock);
        let mut rng = StdRng::seed_from_u64(2);
        let first = generator.generate(&mut rng).unwrap();
        clock.advance(1);
        let second = generator.generate(&mut rng).unwrap();
        assert!(second > first);
        assert_eq!(second.timestamp_ms(), T + 1);
        assert_ne!(second.random(), first.random() + 1);
    }

    #[test]
    fn clock_going_back_keeps_the_last_timestamp() {
        let clock = ManualClock::new(T);
        let generator = UlidGenerator::new(&clock);
        let mut rng = StdRng::seed_from_u64(3);
        let mut previous = generator.generate(&mut rng).unwrap();
        for back in [1, 1_000, 86_400_000, T] {
            clock.set(T - back);
            let ulid = generator.generate(&mut rng).unwrap();
            assert!(ulid > previous);
            assert_eq!((ulid.timestamp_ms(), ulid.random()), (T, previous.random() + 1));
            previous = ulid;
        }
    }

    #[test]
    fn random_overflow_moves_to_the_next_millisecond_instead_of_failing() {
        let clock = ManualClock::new(T);
        let generator = UlidGenerator::new(&clock);
        let mut rng = StdRng::seed_from_u64(4);
        *generator.state.lock() = (T, MAX_RANDOM - 1);

        let last_in_ms = generator.generate(&mut rng).unwrap();
        assert_eq!((last_in_ms.timestamp_ms(), last_in_ms.random()), (T, MAX_RANDOM));

        let borrowed = generator.generate(&mut rng).unwrap();
        assert!(borrowed > last_in_ms);
        assert_eq!(borrowed.timestamp_ms(), T + 1, "runs 1 ms ahead of the clock");
        assert_eq!(decode(&borrowed.to_string()), Ok(T + 1));

        // The clock is still at T: the generator continues in the borrowed millisecond.
        let next = generator.generate(&mut rng).unwrap();
        assert_eq!((next.timestamp_ms(), next.random()), (T + 1, borrowed.random() + 1));
    }

    #[test]
    fn strictly_increasing_across_threads() {
        let generator = UlidGenerator::new(SystemClock);
        crate::test_support::assert_unique_on_threads(4, 50_000, || {
            generator.generate(&mut rand::rng()).unwrap()
        });
    }

    proptest! {
        #[test]
        fn strictly_increasing_for_any_clock(
            readings in prop::collection::vec(0..=MAX_MS, 1..200),
            per_reading in 1usize..50,
            seed: u64,
        ) {
            let clock = ManualClock::new(0);
            let generator = UlidGenerator::new(&clock);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut previous: Option<ulid::Ulid> = None;
            let mut high_water = 0;
            for reading in readings {
                clock.set(reading);
                high_water = high_water.max(reading);
                for _ in 0..per_reading {
                    let ulid = generator.generate(&mut rng).unwrap();
                    prop_assert!(previous.is_none_or(|p| p < ulid));
                    prop_assert_eq!(decode(&ulid.to_string()), Ok(high_water));
                    previous = Some(ulid);
                }
            }
        }

        #[test]
        fn decode_round_trips(ms in 0..=MAX_MS, seed: u64) {
            let generator = UlidGenerator::new(ManualClock::new(ms));
            let text = generator.generate(&mut StdRng::seed_from_u64(seed)).unwrap().to_string();
            prop_assert_eq!(text.len(), 26);
            prop_assert_eq!(decode(&text), Ok(ms));
            prop_assert_eq!(decode(&text.to_lowercase()), Ok(ms));
        }
    }

    #[test]
    fn resumes_above_a_floor_and_stops_at_the_ceiling() {
        let clock = ManualClock::new(T);
        let mut rng = StdRng::seed_from_u64(4);
        let generator = UlidGenerator::new(&clock).with_floor(T + 5_000);
        generator.set_ceiling(T + 5_001);
        let first = generator.generate(&mut rng).unwrap();
        assert_eq!(first.timestamp_ms(), T + 5_001);
        let second = generator.generate(&mut rng).unwrap();
        assert!(second > first);
        clock.set(T + 5_002);
        assert_eq!(
            generator.generate(&mut rng),
            Err(IssueError::CeilingReached { needed: T + 5_002, ceiling: T + 5_001 })
        );
        generator.set_ceiling(u64::MAX);
        assert_eq!(generator.generate(&mut rng).unwrap().timestamp_ms(), T + 5_002);
        assert_eq!(generator.high_water_ms(), T + 5_002);
        assert_eq!(UlidGenerator::new(&clock).with_floor(u64::MAX).high_water_ms(), MAX_MS);
    }
}
