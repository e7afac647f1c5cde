//! UUID version 7 (RFC 9562 §5.7), strictly increasing within the process.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use crate::kind::{Bounder, DecodeContext, TimeBounds};
use crate::wire::DecodeResponse;
use crate::{Clock, DecodeError, IssueError, KindInfo, SystemClock, Uuid};

/// Catalogue entry of `uuid7`: no parameters; decodes the timestamp.
pub const INFO: KindInfo = KindInfo {
    name: "uuid7",
    description: "RFC 9562 UUID version 7: 48-bit ms timestamp, counter and random bits, sortable",
    sortable: true,
    time_based: true,
    bits: 128,
    text_len: 36,
    params: &[],
    decode: Some(|text, context: &DecodeContext| {
        if context.strict {
            crate::uuid::check_canonical(text, INFO.name)?;
        }
        Ok(DecodeResponse::with_time(text, decode(text)?))
    }),
    bounds: Some(Bounder { range: |_| 0..=(1 << 48) - 1, at: bounds_at }),
};

/// The smallest and largest uuid7 of `unix_ms`: every bit but the time, version and variant
/// clear, then set.
pub(crate) fn bounds_uuids(unix_ms: u64) -> (Uuid, Uuid) {
    let fixed = (u128::from(unix_ms) << 80) | (0x7 << 76) | (0b10 << 62);
    let rest = (0xFFF << 64) | ((1 << 62) - 1);
    (Uuid::from_u128(fixed), Uuid::from_u128(fixed | rest))
}

fn bounds_at(unix_ms: u64, _: &DecodeContext) -> TimeBounds {
    let (min, max) = bounds_uuids(unix_ms);
    TimeBounds { timestamp_ms: unix_ms, min: min.to_string(), max: max.to_string() }
}

/// Largest timestamp the 48-bit `unix_ts_ms` field holds (year 10889).
const MAX_MS: u64 = (1 << 48) - 1;
/// Bits of the dedicated counter, kept in the low bits of the state word.
const COUNTER_BITS: u32 = 16;
/// A new millisecond seeds the counter with this many random bits: the top counter bit starts
/// at zero, so at least 2^15 more IDs fit in the millisecond before it rolls over (RFC 9562
/// §6.2 "counter rollover guard").
const SEED_MASK: u64 = 0x7FFF;

/// Issues version 7 UUIDs, strictly increasing across all threads of the process.
///
/// This is RFC 9562 §6.2 **Method 1, "Fixed Bit-Length Dedicated Counter"**, with a 16-bit
/// counter spread over the 12 bits of `rand_a` and the top 4 bits of `rand_b`:
///
/// ```text
/// unix_ts_ms (48) | ver 0111 (4) | counter 15..4 (12) | var 10 (2) | counter 3..0 (4) | rand (58)
/// ```
///
/// * A millisecond later than the last one issued seeds the counter with a random 15-bit value
///   (top bit zero, the §6.2 rollover guard), so IDs are not trivially guessable and at least
///   32768 IDs fit in every millisecond.
/// * In the same millisecond, or when the clock reads earlier than the last ID, the counter is
///   incremented and the timestamp of the last ID is reused: the output never goes backwards.
/// * When the 16-bit counter overflows, the timestamp moves to the last one + 1 ms even if the
///   clock has not got there yet (§6.2 allows the timestamp to run ahead of the clock) and the
///   counter starts at 0.
///
/// The whole state is one `AtomicU64` holding `(unix_ms << 16) | counter`, updated with a
/// compare-and-swap loop: no lock, and "counter overflow carries into the timestamp" is plain
/// `state + 1`. Every ID comes from a distinct, larger state word than the one before, and the
/// state word's bits appear in the UUID in the same order, so UUIDs are strictly increasing
/// no matter what the 58 random bits are.
///
/// The 48-bit timestamp field ends in year 10889; past that the generator stays at its last
/// possible value (timestamp and counter all ones) and only the random bits differ.
///
/// # Example
///
/// ```
/// use idgen_core::{ManualClock, uuid7};
/// use rand::SeedableRng;
///
/// let clock = ManualClock::new(1_700_000_000_000);
/// let generator = uuid7::Uuid7Generator::new(&clock);
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
///
/// let first = generator.generate(&mut rng)?;
/// let second = generator.generate(&mut rng)?; // same millisecond: the counter orders them
/// assert!(first < second);
/// assert_eq!(first.get_version_num(), 7);
/// assert_eq!(uuid7::decode(&second.to_string()), Ok(1_700_000_000_000));
/// # Ok::<(), idgen_core::IssueError>(())
/// ```
#[derive(Debug)]
pub struct Uuid7Generator<C: Clock = SystemClock> {
    clock: C,
    /// `(unix_ms << 16) | counter` of the last UUID issued (or of the floor); 0 before either.
    state: AtomicU64,
    /// Highest `unix_ts_ms` a UUID may carry; `u64::MAX` means unlimited.
    ceiling: AtomicU64,
}

impl<C: Clock> Uuid7Generator<C> {
    /// A generator with no floor and an unlimited ceiling.
    pub fn new(clock: C) -> Self {
        Self { clock, state: AtomicU64::new(0), ceiling: AtomicU64::new(u64::MAX) }
    }

    /// Never issue a UUID whose timestamp is at or below `unix_ms` (a mark persisted by an
    /// earlier run), so output keeps increasing across a restart with the clock set back.
    /// Call before the first `generate`.
    pub fn with_floor(self, unix_ms: u64) -> Self {
        // The floor's whole millisecond counts as used: the next UUID is at a later one.
        let floor = (unix_ms.min(MAX_MS) << COUNTER_BITS) | 0xFFFF;
        self.state.fetch_max(floor, Ordering::Relaxed);
        self
    }

    /// Allow timestamps up to and including `unix_ms` (unlimited until first called). The
    /// caller raises it only after persisting a mark at least this high.
    pub fn set_ceiling(&self, unix_ms: u64) {
        // Release pairs with the Acquire load in `reserve`.
        self.ceiling.store(unix_ms, Ordering::Release);
    }

    /// The ceiling set last (`u64::MAX` before any).
    pub fn ceiling_ms(&self) -> u64 {
        self.ceiling.load(Ordering::Acquire)
    }

    /// The highest timestamp (Unix ms) issued, or the floor.
    pub fn high_water_ms(&self) -> u64 {
        self.state.load(Ordering::Relaxed) >> COUNTER_BITS
    }

    /// The next UUID, greater than every UUID this generator issued before;
    /// [`IssueError::CeilingReached`] when its timestamp would be above the ceiling.
    pub fn generate<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<uuid::Uuid, IssueError> {
        Ok(build(self.reserve(rng, 1)?, rng.next_u64()))
    }

    /// `n` UUIDs in increasing order, passed to `each`: the same IDs `n` calls of
    /// [`generate`](Self::generate) made in one instant would give (one millisecond, the
    /// counter counting up and carrying into the timestamp on overflow), for one clock read
    /// and one compare-and-swap. Those two were most of the cost of a large batch. Nothing is
    /// passed to `each` when the batch would reach above the ceiling.
    pub fn generate_batch<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        n: usize,
        mut each: impl FnMut(uuid::Uuid),
    ) -> Result<(), IssueError> {
        if n == 0 {
            return Ok(());
        }
        let mut state = self.reserve(rng, n as u64)?;
        for _ in 0..n {
            each(build(state, rng.next_u64()));
            state = state.saturating_add(1);
        }
        Ok(())
    }

    /// Takes the next `n` (at least 1) state words in one compare-and-swap and returns the
    /// first: a later millisecond than the last one issued starts from a fresh random seed;
    /// the same one, or a clock behind it, counts on from the last word, overflowing into the
    /// timestamp. Saturates only at the end of the 48-bit range (see the type's docs). Takes
    /// nothing when the last word's millisecond would be above the ceiling.
    fn reserve<R: Rng + ?Sized>(&self, rng: &mut R, n: u64) -> Result<u64, IssueError> {
        let now_ms = self.clock.now_ms().min(MAX_MS);
        let ceiling = self.ceiling.load(Ordering::Acquire);
        // Relaxed is enough: the only shared data is this one atomic, and successful CASes on
        // one location are totally ordered (its modification order), which is exactly the
        // order of the IDs. A thread's later CAS is always later in that order.
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let first = if now_ms > current >> COUNTER_BITS {
                (now_ms << COUNTER_BITS) | (u64::from(rng.next_u32()) & SEED_MASK)
            } else {
                current.saturating_add(1)
            };
            let last = first.saturating_add(n - 1);
            let needed = last >> COUNTER_BITS;
            if needed > ceiling {
                return Err(IssueError::CeilingReached { needed, ceiling });
            }
            match self.state.compare_exchange_weak(
                current,
                last,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(first),
                Err(actual) => current = actual,
            }
        }
    }
}

/// Lays out a state word and random bits as a version 7 UUID (see [`Uuid7Generator`]).
fn build(state: u64, random: u64) -> uuid::Uuid {
    let unix_ms = u128::from(state >> COUNTER_BITS);
    let counter = u128::from(state & 0xFFFF);
    let value = (unix_ms << 80)
        | (0x7 << 76)
        | ((counter >> 4) << 64)
        | (0b10 << 62)
        | ((counter & 0xF) << 58)
        | u128::from(random >> 6);
    uuid::Builder::from_u128(value).into_uuid()
}

/// The Unix ms timestamp of a version 7 UUID.
pub fn decode(text: &str) -> Result<u64, DecodeError> {
    let uuid = uuid::Uuid::parse_str(text).map_err(|_| DecodeError::Malformed {
        kind: INFO.name,
        reason: "expected 32 hex digits, optionally hyphenated, braced or with a urn:uuid: prefix",
    })?;
    let is_rfc_variant = uuid.as_bytes()[8] >> 6 == 0b10;
    if uuid.get_version_num() != 7 || !is_rfc_variant {
        return Err(DecodeError::Malformed {
            kind: INFO.name,
            reason: "not a version 7 uuid (version nibble must be 7, variant bits 10)",
        });
    }
    Ok((uuid.as_u128() >> 80) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const T: u64 = 1_700_000_000_000;

    /// The 16-bit dedicated counter of a UUID made by this module.
    fn counter_of(uuid: uuid::Uuid) -> u64 {
        let value = uuid.as_u128();
        ((((value >> 64) & 0xFFF) << 4) | ((value >> 58) & 0xF)) as u64
    }

    fn timestamp_of(uuid: uuid::Uuid) -> u64 {
        (uuid.as_u128() >> 80) as u64
    }

    fn check(text: &str, expected: Result<u64, ()>) {
        let actual = decode(text)
            .map_err(|err| assert!(matches!(err, DecodeError::Malformed { kind: "uuid7", .. })));
        assert_eq!(actual, expected, "decoding {text:?}");
    }

    #[test]
    fn decodes_timestamps_and_rejects_everything_else() {
        check("017f22e2-79b0-7cc3-98c4-dc0c0c07398f", Ok(0x017F_22E2_79B0)); // RFC 9562 A.6
        check("017F22E279B07CC398C4DC0C0C07398F", Ok(0x017F_22E2_79B0));
        check("urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f", Ok(0x017F_22E2_79B0));
        check("ffffffff-ffff-7fff-bfff-ffffffffffff", Ok(MAX_MS));
        check("8f2a3b1c-9d4e-4f60-a1b2-c3d4e5f60718", Err(())); // version 4
        check("017f22e2-79b0-6cc3-98c4-dc0c0c07398f", Err(())); // version 6
        check("017f22e2-79b0-7cc3-c8c4-dc0c0c07398f", Err(())); // microsoft variant
        check("017f22e2-79b0-7cc3-18c4-dc0c0c07398f", Err(())); // ncs variant
        check("00000000-0000-0000-0000-000000000000", Err(()));
        check("", Err(()));
        check("017f22e2-79b0-7cc3-98c4", Err(()));
        check("017f22e2-79b0-7cc3-98c4-dc0c0c07398z", Err(()));
    }

    #[test]
    fn lays_out_timestamp_version_counter_variant() {
        let clock = ManualClock::new(T);
        let generator = Uuid7Generator::new(&clock);
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1_000 {
            let uuid = generator.generate(&mut rng).unwrap();
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(uuid.as_bytes()[8] >> 6, 0b10, "variant bits");
            assert_eq!(timestamp_of(uuid), T);
            assert_eq!(decode(&uuid.to_string()), Ok(T));
        }
        // Built by hand from a known state: every field lands where RFC 9562 §5.7 puts it.
        let uuid = build((T << 16) | 0xABCD, u64::MAX);
        assert_eq!(uuid.as_u128() >> 80, u128::from(T));
        assert_eq!((uuid.as_u128() >> 76) & 0xF, 7);
        assert_eq!((uuid.as_u128() >> 64) & 0xFFF, 0xABC);
        assert_eq!((uuid.as_u128() >> 62) & 0b11, 0b10);
        assert_eq!((uuid.as_u128() >> 58) & 0xF, 0xD);
        assert_eq!(uuid.as_u128() & ((1 << 58) - 1), (1 << 58) - 1);
    }

    #[test]
    fn same_millisecond_counts_up_from_a_guarded_random_seed() {
        let clock = ManualClock::new(T);
        let generator = Uuid7Generator::new(&clock);
        let mut rng = StdRng::seed_from_u64(2);
        let first = generator.generate(&mut rng).unwrap();
        assert!(counter_of(first) <= SEED_MASK, "rollover guard: top counter bit starts at 0");
        let mut previous = first;
        for step in 1..=10_000 {
            let uuid = generator.generate(&mut rng).unwrap();
            assert!(uuid > previous);
            assert_eq!(counter_of(uuid), counter_of(first) + step);
            assert_eq!(timestamp_of(uuid), T);
            previous = uuid;
        }
    }

    #[test]
    fn a_new_millisecond_reseeds_the_counter() {
        let clock = ManualClock::new(T);
        let generator = Uuid7Generator::new(&clock);
        let mut rng = StdRng::seed_from_u64(3);
        let mut seeds = Vec::new();
        let mut previous = generator.generate(&mut rng).unwrap();
        for _ in 0..100 {
            clock.advance(1);
            let uuid = generator.generate(&mut rng).unwrap();
            assert!(uuid > previous);
            assert_eq!(timestamp_of(uuid), clock.now_ms());
            assert!(counter_of(uuid) <= SEED_MASK);
            seeds.push(counter_of(uuid));
            previous = uuid;
        }
        seeds.sort_unstable();
        seeds.dedup();
        assert!(seeds.len() > 90, "seeds should be random, got {} distinct of 100", seeds.len());
    }

    #[test]
    fn counter_overflow_moves_to_the_next_millisecond() {
        let clock = ManualClock::new(T);
        let generator = Uuid7Generator::new(&clock);
        let mut rng = StdRng::seed_from_u64(4);
        // Naturally: the seed is at most 0x7FFF, so at most 0x10000 IDs fit in one ms.
        let mut previous = generator.generate(&mut rng).unwrap();
        let mut rolled_over = None;
        for _ in 0..0x10000 {
            let uuid = generator.generate(&mut rng).unwrap();
            assert!(uuid > previous);
            if timestamp_of(uuid) != T {
                rolled_over = Some(uuid);
                break;
            }
            assert_eq!(counter_of(previous) + 1, counter_of(uuid));
            previous = uuid;
        }
        let rolled_over = rolled_over.expect("counter must roll over within 65536 IDs");
        assert_eq!(counter_of(previous), 0xFFFF);
        assert_eq!((timestamp_of(rolled_over), counter_of(rolled_over)), (T + 1, 0));

        // The clock catching up to the borrowed ms continues the count instead of reseeding.
        clock.set(T + 1);
        let next = generator.generate(&mut rng).unwrap();
        assert_eq!((timestamp_of(next), counter_of(next)), (T + 1, 1));
    }

    #[test]
    fn clock_going_back_keeps_the_last_timestamp() {
        let clock = ManualClock::new(T);
        let generator = Uuid7Generator::new(&clock);
        let mut rng = StdRng::seed_from_u64(5);
        let before = generator.generate(&mut rng).unwrap();
        for back in [1, 1_000, 86_400_000, T] {
            clock.set(T - back);
            let uuid = generator.generate(&mut rng).unwrap();
            assert!(uuid > before);
            assert_eq!(timestamp_of(uuid), T, "clock {back} ms back");
        }
    }

    #[test]
    fn saturates_at_the_end_of_the_48_bit_range() {
        let clock = ManualClock::new(u64::MAX);
        let generator = Uuid7Generator::new(&clock);
        let mut rng = StdRng::seed_from_u64(6);
        generator.state.store((MAX_MS << 16) | 0xFFFE, Ordering::Relaxed);
        let last = generator.generate(&mut rng).unwrap();
        assert_eq!((timestamp_of(last), counter_of(last)), (MAX_MS, 0xFFFF));
        let after = generator.generate(&mut rng).unwrap();
        assert_eq!((timestamp_of(after), counter_of(after)), (MAX_MS, 0xFFFF));
    }

    #[test]
    fn strictly_increasing_across_threads() {
        let generator = Uuid7Generator::new(SystemClock);
        crate::test_support::assert_unique_on_threads(4, 50_000, || {
            generator.generate(&mut rand::rng()).unwrap()
        });
    }

    #[test]
    fn a_batch_is_what_single_calls_in_one_instant_give() {
        let clock = ManualClock::new(1_700_000_000_000);
        let batched = Uuid7Generator::new(&clock);
        // The batch draws the counter's seed, then one u64 per ID, as single calls do when only
        // the first starts a millisecond: replaying the draws rebuilds every ID.
        let mut batch = Vec::new();
        batched.generate_batch(&mut StdRng::seed_from_u64(3), 70_000, |id| batch.push(id)).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let seed = u64::from(rng.next_u32()) & SEED_MASK;
        let first = (1_700_000_000_000 << COUNTER_BITS) | seed;
        for (state, id) in (first..).zip(&batch) {
            assert_eq!(*id, build(state, rng.next_u64()));
        }
        assert!(batch.windows(2).all(|pair| pair[0] < pair[1]));
        // 70,000 > 2^16: the counter carried into the next millisecond, ahead of the clock.
        assert_eq!(timestamp_of(batch[0]), 1_700_000_000_000);
        assert_eq!(timestamp_of(*batch.last().unwrap()), 1_700_000_000_001);
        // What follows a batch is above it; an empty batch issues nothing.
        let next = batched.generate(&mut rand::rng()).unwrap();
        assert!(next > *batch.last().unwrap());
        batched.generate_batch(&mut rand::rng(), 0, |_| panic!("nothing to issue")).unwrap();
    }

    #[test]
    fn batches_and_single_ids_interleave_strictly_increasing_across_threads() {
        let generator = Uuid7Generator::new(SystemClock);
        let ids = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|worker| {
                    let generator = &generator;
                    scope.spawn(move || {
                        let mut rng = rand::rng();
                        let mut ids = Vec::new();
                        for round in 0..2_000 {
                            if (round + worker) % 3 == 0 {
                                ids.push(generator.generate(&mut rng).unwrap());
                            } else {
                                let mut batch = Vec::new();
                                generator
                                    .generate_batch(&mut rng, 1 + round % 50, |id| batch.push(id))
                                    .unwrap();
                                assert!(batch.windows(2).all(|pair| pair[0] < pair[1]));
                                ids.extend(batch);
                            }
                        }
                        // Each thread sees its own IDs increase.
                        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
                        ids
                    })
                })
                .collect();
            workers.into_iter().flat_map(|worker| worker.join().unwrap()).collect::<Vec<_>>()
        });
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicates across threads");
    }

    proptest! {
        #[test]
        fn strictly_increasing_for_any_clock(
            readings in prop::collection::vec(0..=MAX_MS, 1..200),
            per_reading in 1usize..50,
            seed: u64,
        ) {
            let clock = ManualClock::new(0);
            let generator = Uuid7Generator::new(&clock);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut previous: Option<uuid::Uuid> = None;
            let mut high_water = 0;
            for reading in readings {
                clock.set(reading);
                high_water = high_water.max(reading);
                for _ in 0..per_reading {
                    let uuid = generator.generate(&mut rng).unwrap();
                    prop_assert!(previous.is_none_or(|p| p < uuid));
                    // Fewer than 2^15 IDs per ms never roll the counter over.
                    prop_assert_eq!(decode(&uuid.to_string()), Ok(high_water));
                    previous = Some(uuid);
                }
            }
        }

        #[test]
        fn decode_round_trips(ms in 0..=MAX_MS, seed: u64) {
            let generator = Uuid7Generator::new(ManualClock::new(ms));
            let uuid = generator.generate(&mut StdRng::seed_from_u64(seed)).unwrap();
            prop_assert_eq!(decode(&uuid.to_string()), Ok(ms));
            prop_assert_eq!(decode(&uuid.hyphenated().to_string().to_uppercase()), Ok(ms));
        }
    }

    #[test]
    fn resumes_above_a_floor_and_stops_at_the_ceiling() {
        let clock = ManualClock::new(T);
        let mut rng = StdRng::seed_from_u64(9);
        // A floor ahead of the clock (a restart with the clock set back): the next UUID is
        // in the millisecond after it, whatever the clock says.
        let generator = Uuid7Generator::new(&clock).with_floor(T + 5_000);
        generator.set_ceiling(T + 5_001);
        let first = generator.generate(&mut rng).unwrap();
        assert_eq!(timestamp_of(first), T + 5_001);
        assert_eq!(generator.high_water_ms(), T + 5_001);
        // A batch that would carry past the ceiling takes nothing.
        let refused = generator.generate_batch(&mut rng, 70_000, |_| panic!("nothing issued"));
        assert_eq!(
            refused,
            Err(IssueError::CeilingReached { needed: T + 5_002, ceiling: T + 5_001 })
        );
        clock.set(T + 6_000);
        assert_eq!(
            generator.generate(&mut rng),
            Err(IssueError::CeilingReached { needed: T + 6_000, ceiling: T + 5_001 })
        );
        generator.set_ceiling(T + 6_000);
        let next = generator.generate(&mut rng).unwrap();
        assert!(next > first && timestamp_of(next) == T + 6_000);
        // The end of the 48-bit range cannot wrap into a small floor.
        let end = Uuid7Generator::new(&clock).with_floor(u64::MAX);
        assert_eq!(end.high_water_ms(), MAX_MS);
    }
}
