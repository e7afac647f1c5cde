//! KSUID (segmentio/ksuid): 32 bits of seconds since 1,400,000,000 and 128 random bits, as 27
//! base62 characters; strictly increasing within the process.
//!
//! The server keeps a durable mark for it (as for uuid7 and ulid), in whole seconds, so its
//! output does not go backwards across a restart even with the clock set back.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rand::Rng;

use crate::kind::{Bounder, DecodeContext, TimeBounds};
use crate::wire::DecodeResponse;
use crate::{Clock, DecodeError, IssueError, KindInfo, SystemClock};

/// Catalogue entry of `ksuid`: no parameters; decodes the time and the payload.
pub const INFO: KindInfo = KindInfo {
    name: "ksuid",
    description: "KSUID: 32-bit seconds since 2014-05-13 and a 128-bit random payload, 27 base62 chars, sortable",
    sortable: true,
    time_based: true,
    bits: 160,
    text_len: TEXT_LEN,
    params: &[],
    decode: Some(|text, _: &DecodeContext| decode_response(text)),
    bounds: Some(Bounder { range: |_| EPOCH_SECONDS * 1000..=MAX_MS, at: bounds_at }),
};

/// The smallest and largest KSUID of the second `unix_ms` falls in: the payload all clear,
/// then all set.
fn bounds_at(unix_ms: u64, _: &DecodeContext) -> TimeBounds {
    let second = unix_ms / 1000;
    let seconds = u32::try_from(second - EPOCH_SECONDS).expect("in the range");
    TimeBounds {
        timestamp_ms: second * 1000,
        min: Ksuid::from_parts(seconds, 0).to_string(),
        max: Ksuid::from_parts(seconds, u128::MAX).to_string(),
    }
}

/// KSUID time 0 in Unix seconds (2014-05-13T16:53:20Z).
pub const EPOCH_SECONDS: u64 = 1_400_000_000;
/// Characters of a KSUID.
pub const TEXT_LEN: usize = 27;
/// The last Unix ms a KSUID's 32-bit seconds field holds (its second's last millisecond).
pub const MAX_MS: u64 = (EPOCH_SECONDS + u32::MAX as u64) * 1000 + 999;
/// `0-9A-Za-z`: base62 in ascending ASCII order, so that the text sorts as the bytes do.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A KSUID: the seconds field and the payload, ordered as its bytes (and its text) are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ksuid {
    seconds: u32,
    payload: u128,
}

impl Ksuid {
    /// The KSUID of `seconds` (since [`EPOCH_SECONDS`]) and `payload`.
    pub fn from_parts(seconds: u32, payload: u128) -> Self {
        Self { seconds, payload }
    }

    /// Seconds since [`EPOCH_SECONDS`].
    pub fn seconds(self) -> u32 {
        self.seconds
    }

    /// The 128-bit payload.
    pub fn payload(self) -> u128 {
        self.payload
    }

    /// Unix ms of the start of its second.
    pub fn timestamp_ms(self) -> u64 {
        (EPOCH_SECONDS + u64::from(self.seconds)) * 1000
    }

    /// The 20 bytes: the seconds big-endian, then the payload big-endian.
    pub fn to_bytes(self) -> [u8; 20] {
        let mut bytes = [0; 20];
        bytes[..4].copy_from_slice(&self.seconds.to_be_bytes());
        bytes[4..].copy_from_slice(&self.payload.to_be_bytes());
        bytes
    }

    /// Appends the 27 base62 characters to `out`.
    pub fn encode_into(self, out: &mut Vec<u8>) {
        // Long division of the 160-bit number, as five 32-bit words, by 62^5 (below 2^30, so a
        // word and the remainder fit a u64): five digits a pass, six passes for the 27 digits
        // (the top three of the 30 are 0: a KSUID is below 62^27). A byte at a time by 62
        // took 540 divisions an ID, about a tenth of a single-ID request's time.
        const CHUNK: u64 = 62u64.pow(5);
        let bytes = self.to_bytes();
        let mut words = [0u32; 5];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_be_bytes(chunk.try_into().expect("4 bytes"));
        }
        let mut digits = [b'0'; 30];
        for pass in (0..6).rev() {
            let mut remainder = 0u64;
            for word in words.iter_mut() {
                let value = (remainder << 32) | u64::from(*word);
                // Below 2^32: `remainder` < 62^5 < 2^30.
                *word = (value / CHUNK) as u32;
                remainder = value % CHUNK;
            }
            for digit in digits[pass * 5..pass * 5 + 5].iter_mut().rev() {
                *digit = ALPHABET[(remainder % 62) as usize];
                remainder /= 62;
            }
        }
        debug_assert!(digits[..3].iter().all(|&digit| digit == b'0'), "below 62^27");
        out.extend_from_slice(&digits[30 - TEXT_LEN..]);
    }
}

impl std::fmt::Display for Ksuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = Vec::with_capacity(TEXT_LEN);
        self.encode_into(&mut text);
        f.write_str(std::str::from_utf8(&text).expect("base62 is ASCII"))
    }
}

impl std::str::FromStr for Ksuid {
    type Err = DecodeError;

    fn from_str(text: &str) -> Result<Self, DecodeError> {
        decode(text)
    }
}

/// Reads 27 base62 characters.
///
/// # Errors
/// [`DecodeError::Malformed`] for another length, another character, or a value above the
/// largest KSUID (`aWgEPTl1tmebfsQzFP4bxwgy80V`).
pub fn decode(text: &str) -> Result<Ksuid, DecodeError> {
    let malformed = |reason| DecodeError::Malformed { kind: INFO.name, reason };
    let bytes = text.as_bytes();
    if bytes.len() != TEXT_LEN {
        return Err(malformed("must be 27 characters"));
    }
    let mut number = [0u8; 20];
    for &character in bytes {
        let digit = ALPHABET
            .iter()
            .position(|&candidate| candidate == character)
            .ok_or(malformed("must use only base62 characters (0-9, A-Z, a-z)"))?;
        // number = number * 62 + digit, from the lowest byte up.
        let mut carry = digit as u32;
        for byte in number.iter_mut().rev() {
            let value = u32::from(*byte) * 62 + carry;
            *byte = value as u8;
            carry = value >> 8;
        }
        if carry != 0 {
            return Err(malformed("exceeds 160 bits (the largest is aWgEPTl1tmebfsQzFP4bxwgy80V)"));
        }
    }
    let seconds = u32::from_be_bytes(number[..4].try_into().expect("4 bytes"));
    let payload = u128::from_be_bytes(number[4..].try_into().expect("16 bytes"));
    Ok(Ksuid { seconds, payload })
}

/// What `/v1/decode/ksuid/{id}` answers: the time of its second and the payload in hex.
fn decode_response(text: &str) -> Result<DecodeResponse, DecodeError> {
    let ksuid = decode(text)?;
    let mut response = DecodeResponse::with_time(text, ksuid.timestamp_ms());
    response.payload = Some(format!("{:032x}", ksuid.payload));
    Ok(response)
}

/// Issues KSUIDs, strictly increasing across all threads of the process.
///
/// As ULID's monotonic mode, per second: a later second gets a fresh random payload; in the
/// same second, or when the clock reads earlier than the last KSUID, the last KSUID's second
/// is kept and its payload is incremented by one. A payload already at `2^128 - 1` moves to
/// the next second with a fresh payload (running ahead of the clock rather than repeating).
/// The floor, the ceiling and the high water are in Unix ms, as the server's other time
/// marks, and cover whole seconds.
#[derive(Debug)]
pub struct KsuidGenerator<C: Clock = SystemClock> {
    clock: C,
    /// The last KSUID issued, `(seconds, payload)`; `(0, 0)` before any.
    state: Mutex<(u32, u128)>,
    /// Highest Unix ms a KSUID's second may start at; `u64::MAX` means unlimited.
    ceiling: AtomicU64,
}

/// A fresh 128-bit payload.
fn fresh<R: Rng + ?Sized>(rng: &mut R) -> u128 {
    (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
}

/// Seconds since the KSUID epoch of Unix ms `ms`, within the field's range.
fn seconds_of(ms: u64) -> u32 {
    u32::try_from((ms / 1000).saturating_sub(EPOCH_SECONDS)).unwrap_or(u32::MAX)
}

fn ms_of(seconds: u32) -> u64 {
    (EPOCH_SECONDS + u64::from(seconds)) * 1000
}

impl<C: Clock> KsuidGenerator<C> {
    /// A generator with no floor and an unlimited ceiling.
    pub fn new(clock: C) -> Self {
        Self { clock, state: Mutex::new((0, 0)), ceiling: AtomicU64::new(u64::MAX) }
    }

    /// Never issue a KSUID in the second of `unix_ms` or earlier (a mark persisted by an
    /// earlier run). Call before the first `generate`.
    pub fn with_floor(self, unix_ms: u64) -> Self {
        {
            let mut state = self.state.lock();
            *state = (*state).max((seconds_of(unix_ms), u128::MAX));
        }
        self
    }

    /// Allow KSUIDs whose second starts at or before `unix_ms`. The caller raises it only
    /// after persisting a mark at least this high.
    pub fn set_ceiling(&self, unix_ms: u64) {
        self.ceiling.store(unix_ms, Ordering::Release);
    }

    /// The ceiling set last (`u64::MAX` before any).
    pub fn ceiling_ms(&self) -> u64 {
        self.ceiling.load(Ordering::Acquire)
    }

    /// The last millisecond of the second of the last KSUID issued (or of the floor).
    pub fn high_water_ms(&self) -> u64 {
        let (seconds, _) = *self.state.lock();
        if seconds == 0 { 0 } else { ms_of(seconds) + 999 }
    }

    /// The next KSUID, greater than every one this generator issued before;
    /// [`IssueError::CeilingReached`] when its second would start above the ceiling.
    pub fn generate<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Ksuid, IssueError> {
        let now = seconds_of(self.clock.now_ms());
        let ceiling = self.ceiling.load(Ordering::Acquire);
        let mut state = self.state.lock();
        let (last, last_payload) = *state;
        let next = if now > last {
            (now, fresh(rng))
        } else if last_payload < u128::MAX {
            (last, last_payload + 1)
        } else if last < u32::MAX {
            (last + 1, fresh(rng))
        } else {
            return Err(IssueError::CeilingReached { needed: MAX_MS, ceiling });
        };
        // A ceiling below the second's last millisecond still allows the second: the mark is
        // raised to cover the whole second before it is used (see `high_water_ms`).
        if ms_of(next.0) > ceiling {
            return Err(IssueError::CeilingReached { needed: ms_of(next.0) + 999, ceiling });
        }
        *state = next;
        Ok(Ksuid { seconds: next.0, payload: next.1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const T: u64 = 1_700_000_000_000;

    #[test]
    fn the_same_second_increments_the_payload_and_a_new_one_draws_afresh() {
        let clock = ManualClock::new(T);
        let generator = KsuidGenerator::new(&clock);
        let mut rng = StdRng::seed_from_u64(1);
        let first = generator.generate(&mut rng).unwrap();
        assert_eq!(first.timestamp_ms(), T);
        for step in 1..=100u128 {
            let next = generator.generate(&mut rng).unwrap();
            assert_eq!((next.seconds(), next.payload()), (first.seconds(), first.payload() + step));
        }
        clock.advance(1000);
        let later = generator.generate(&mut rng).unwrap();
        assert_eq!(later.seconds(), first.seconds() + 1);
        assert!(later > first);
        // The clock going back keeps the last second.
        clock.set(T - 60_000);
        let after = generator.generate(&mut rng).unwrap();
        assert_eq!((after.seconds(), after.payload()), (later.seconds(), later.payload() + 1));
    }

    #[test]
    fn a_full_payload_moves_to_the_next_second_and_the_ceiling_holds() {
        let clock = ManualClock::new(T);
        let generator = KsuidGenerator::new(&clock).with_floor(T - 1000);
        let mut rng = StdRng::seed_from_u64(2);
        assert_eq!(generator.high_water_ms(), T - 1000 + 999);
        let first = generator.generate(&mut rng).unwrap();
        assert_eq!(first.timestamp_ms(), T, "above the floor's second");
        *generator.state.lock() = (first.seconds(), u128::MAX);
        let next = generator.generate(&mut rng).unwrap();
        assert_eq!(next.seconds(), first.seconds() + 1);
        generator.set_ceiling(next.timestamp_ms());
        *generator.state.lock() = (next.seconds(), u128::MAX);
        assert!(matches!(generator.generate(&mut rng), Err(IssueError::CeilingReached { .. })));
    }

    proptest! {
        #[test]
        fn text_round_trips_and_sorts_as_the_value(a: (u32, u128), b: (u32, u128)) {
            let (ka, kb) = (Ksuid::from_parts(a.0, a.1), Ksuid::from_parts(b.0, b.1));
            let (ta, tb) = (ka.to_string(), kb.to_string());
            prop_assert_eq!(ta.len(), TEXT_LEN);
            prop_assert_eq!(decode(&ta).unwrap(), ka);
            prop_assert_eq!(ka.cmp(&kb), ta.cmp(&tb));
        }
    }
}
