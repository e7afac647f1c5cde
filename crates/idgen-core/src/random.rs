//! Random strings from a CSPRNG over a named or a caller's alphabet, without modulo bias.

use std::borrow::Cow;

use rand::Rng;

use crate::kind::Param;
use crate::{KindInfo, ParamError};

/// Catalogue entry of `random`: takes `length` and `alphabet`, has no decoder.
pub const INFO: KindInfo = KindInfo {
    name: "random",
    description: "random string from a CSPRNG; length 1..=1024 (default 21), alphabets alphanumeric, hex, base58, nanoid or your own chars",
    sortable: false,
    time_based: false,
    bits: 125,
    text_len: 21,
    params: &[Param::Length, Param::Alphabet, Param::Chars],
    decode: None,
    bounds: None,
};

/// The alphabets a random string can be drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    /// The caller's own characters (the `chars` parameter), like NanoID's `customAlphabet`.
    Custom(CharSet),
}

impl Alphabet {
    /// Every named alphabet, in the order the docs list them.
    pub const ALL: [Alphabet; 4] =
        [Alphabet::Alphanumeric, Alphabet::Hex, Alphabet::Base58, Alphabet::Nanoid];

    /// The characters, in ascending byte order.
    pub fn chars(self) -> Cow<'static, [u8]> {
        match self {
            Alphabet::Custom(set) => Cow::Owned(set.to_bytes()),
            named => Cow::Borrowed(named.named_chars()),
        }
    }

    /// A named alphabet's characters; empty for [`Alphabet::Custom`] (see [`Alphabet::chars`]).
    fn named_chars(self) -> &'static [u8] {
        match self {
            Alphabet::Alphanumeric => {
                b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            }
            Alphabet::Hex => b"0123456789abcdef",
            Alphabet::Base58 => b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz",
            Alphabet::Nanoid => b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
            Alphabet::Custom(_) => b"",
        }
    }

    /// The wire name (`alphanumeric`, `hex`, `base58`, `nanoid`; `custom` for the caller's
    /// own, which travel as `chars`).
    pub fn name(self) -> &'static str {
        match self {
            Alphabet::Alphanumeric => "alphanumeric",
            Alphabet::Hex => "hex",
            Alphabet::Base58 => "base58",
            Alphabet::Nanoid => "nanoid",
            Alphabet::Custom(_) => "custom",
        }
    }

    /// The caller's own alphabet from the text of `chars` (see [`CharSet::parse`]).
    pub fn custom(chars: &str) -> Result<Self, ParamError> {
        CharSet::parse(chars).map(Alphabet::Custom)
    }
}

impl std::fmt::Display for Alphabet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Alphabet {
    type Err = ParamError;
    /// A named alphabet; the caller's own come from [`Alphabet::custom`].
    fn from_str(name: &str) -> Result<Self, ParamError> {
        Alphabet::ALL
            .into_iter()
            .find(|alphabet| alphabet.name() == name)
            .ok_or(ParamError::Alphabet)
    }
}

/// A caller's alphabet: 2 to 95 distinct printable ASCII characters (space to `~`), held as a
/// set of bytes so that it is `Copy` and 16 bytes whatever its size. The order the caller gave
/// them in is not kept: a uniform draw does not depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CharSet([u64; 2]);

impl CharSet {
    /// The most characters `chars` may have, as text (printable ASCII has only 95, so a longer
    /// text always repeats one).
    pub const MAX_TEXT: usize = 256;
    /// The fewest characters: one would give the same string every time.
    pub const MIN: usize = 2;

    /// Reads `text` as a set of 2 to 95 distinct printable ASCII characters; a repeated one,
    /// one outside `' '..='~'` or fewer than two is a [`ParamError::Chars`] saying which.
    pub fn parse(text: &str) -> Result<Self, ParamError> {
        if text.len() > Self::MAX_TEXT {
            return Err(ParamError::Chars { reason: "is longer than 256 characters" });
        }
        let mut set = CharSet([0; 2]);
        for byte in text.bytes() {
            if !(b' '..=b'~').contains(&byte) {
                return Err(ParamError::Chars {
                    reason: "has a character outside printable ASCII",
                });
            }
            if set.contains(byte) {
                return Err(ParamError::Chars { reason: "has a character twice" });
            }
            set.0[usize::from(byte / 64)] |= 1 << (byte % 64);
        }
        if set.len() < Self::MIN {
            return Err(ParamError::Chars { reason: "has fewer than 2 characters" });
        }
        Ok(set)
    }

    /// Whether `byte` is one of the characters.
    pub fn contains(self, byte: u8) -> bool {
        byte < 128 && self.0[usize::from(byte / 64)] & (1 << (byte % 64)) != 0
    }

    /// How many characters.
    pub fn len(self) -> usize {
        (self.0[0].count_ones() + self.0[1].count_ones()) as usize
    }

    /// Never: a set has at least [`CharSet::MIN`] characters.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The characters in ascending byte order.
    pub fn to_bytes(self) -> Vec<u8> {
        (b' '..=b'~').filter(|&byte| self.contains(byte)).collect()
    }

    /// The characters in ascending order, into a table a draw indexes (no allocation).
    fn table(self) -> ([u8; 95], usize) {
        let mut table = [0u8; 95];
        let mut size = 0;
        for byte in (b' '..=b'~').filter(|&byte| self.contains(byte)) {
            table[size] = byte;
            size += 1;
        }
        (table, size)
    }
}

impl std::fmt::Display for CharSet {
    /// The characters in ascending order: what `chars` is sent as.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.to_bytes()).expect("printable ASCII"))
    }
}

impl std::str::FromStr for CharSet {
    type Err = ParamError;
    fn from_str(text: &str) -> Result<Self, ParamError> {
        CharSet::parse(text)
    }
}

/// A validated length, 1..=1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length(usize);

impl Length {
    /// The longest string a request may ask for.
    pub const MAX: usize = 1024;
    /// 21 characters, NanoID's default: about 125 bits of entropy with the default alphabet.
    pub const DEFAULT: Length = Length(21);

    /// Accepts 1..=[`Length::MAX`]; [`ParamError::Length`] otherwise.
    pub fn new(length: usize) -> Result<Self, ParamError> {
        if (1..=Self::MAX).contains(&length) {
            Ok(Self(length))
        } else {
            Err(ParamError::Length { max: Self::MAX })
        }
    }

    /// The number of characters.
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
    let mut out = Vec::with_capacity(length.get());
    generate_into(rng, length, alphabet, &mut out);
    String::from_utf8(out).expect("every alphabet is ASCII")
}

/// Appends a random string of `length` characters from `alphabet` to `out` (ASCII bytes:
/// a `char` push per character costs about three times as much); lets a batch reuse one
/// buffer instead of allocating a `String` per ID.
///
/// Unbiased by rejection sampling: each draw takes the next `bits` bits of a random word, the
/// smallest power of two covering the alphabet (6 bits, 64 values, for 58 or 62 characters),
/// and is used only if it indexes the alphabet. `byte % 62` would instead make the first
/// 256 % 62 = 8 characters 25% more likely than the rest. For the 16- and 64-character
/// alphabets nothing is ever rejected; a caller's 95 characters take 7 bits, a quarter
/// rejected. Draws use disjoint bits of the word, so they are as
/// independent as the words; a 21-character alphanumeric ID takes three words.
pub fn generate_into<R: Rng + ?Sized>(
    rng: &mut R,
    length: Length,
    alphabet: Alphabet,
    out: &mut Vec<u8>,
) {
    Drawer::new(alphabet).generate_into(rng, length, out);
}

/// An alphabet laid out for drawing, made once for a batch: a caller's own alphabet is a set
/// of bits, and laying it out as a table takes about as long as drawing a short string.
#[derive(Debug, Clone)]
pub struct Drawer {
    chars: DrawerChars,
}

#[derive(Debug, Clone)]
enum DrawerChars {
    Named(&'static [u8]),
    Custom([u8; 95], usize),
}

impl Drawer {
    /// `alphabet`'s characters, ready to draw from.
    pub fn new(alphabet: Alphabet) -> Self {
        let chars = match alphabet {
            Alphabet::Custom(set) => {
                let (table, size) = set.table();
                DrawerChars::Custom(table, size)
            }
            named => DrawerChars::Named(named.named_chars()),
        };
        Self { chars }
    }

    /// Appends a random string of `length` characters to `out` (see [`generate_into`]).
    pub fn generate_into<R: Rng + ?Sized>(&self, rng: &mut R, length: Length, out: &mut Vec<u8>) {
        let chars = match &self.chars {
            DrawerChars::Named(chars) => chars,
            DrawerChars::Custom(table, size) => &table[..*size],
        };
        draw(rng, length, chars, out);
    }
}

/// [`generate_into`] over `chars`, which has 2 to 256 entries.
fn draw<R: Rng + ?Sized>(rng: &mut R, length: Length, chars: &[u8], out: &mut Vec<u8>) {
    let size = chars.len();
    let bits = size.next_power_of_two().trailing_zeros();
    let mask = (1u64 << bits) - 1;
    let mut remaining = length.get();
    out.reserve(remaining);
    loop {
        let mut word = rng.next_u64();
        for _ in 0..u64::BITS / bits {
            // `word & mask` < 256, so the cast cannot truncate.
            let index = (word & mask) as usize;
            word >>= bits;
            if index < size {
                out.push(chars[index]);
                remaining -= 1;
                if remaining == 0 {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn check(name: &str, expected: Result<(Alphabet, usize), ParamError>) {
        let actual = name.parse::<Alphabet>().map(|alphabet| (alphabet, alphabet.chars().len()));
        assert_eq!(actual, expected, "alphabet {name:?}");
    }

    #[test]
    fn alphabets_by_wire_name() {
        check("alphanumeric", Ok((Alphabet::Alphanumeric, 62)));
        check("hex", Ok((Alphabet::Hex, 16)));
        check("base58", Ok((Alphabet::Base58, 58)));
        check("nanoid", Ok((Alphabet::Nanoid, 64)));
        check("", Err(ParamError::Alphabet));
        check("Hex", Err(ParamError::Alphabet));
        check("base64", Err(ParamError::Alphabet));
        check("alphanumeric ", Err(ParamError::Alphabet));
        assert_eq!(Alphabet::default(), Alphabet::Alphanumeric);
        for alphabet in Alphabet::ALL {
            assert_eq!(alphabet.to_string().parse(), Ok(alphabet));
        }
    }

    #[test]
    fn alphabets_are_the_documented_sets_in_ascending_order() {
        let set = |ranges: &[std::ops::RangeInclusive<u8>], extra: &[u8]| {
            let mut bytes: Vec<u8> =
                ranges.iter().cloned().flatten().chain(extra.iter().copied()).collect();
            bytes.sort_unstable();
            bytes
        };
        let alphanumeric = set(&[b'0'..=b'9', b'A'..=b'Z', b'a'..=b'z'], &[]);
        let base58: Vec<u8> =
            alphanumeric.iter().copied().filter(|b| !b"0OIl".contains(b)).collect();
        assert_eq!(Alphabet::Alphanumeric.chars(), alphanumeric);
        assert_eq!(Alphabet::Hex.chars(), set(&[b'0'..=b'9', b'a'..=b'f'], &[]));
        assert_eq!(Alphabet::Base58.chars(), base58);
        assert_eq!(Alphabet::Nanoid.chars(), set(&[b'A'..=b'Z', b'a'..=b'z', b'0'..=b'9'], b"_-"));
    }

    #[test]
    fn length_limits() {
        assert_eq!(Length::new(0), Err(ParamError::Length { max: 1024 }));
        assert_eq!(Length::new(1025), Err(ParamError::Length { max: 1024 }));
        assert_eq!(Length::new(1).map(Length::get), Ok(1));
        assert_eq!(Length::new(1024).map(Length::get), Ok(1024));
        assert_eq!(Length::default().get(), 21);
    }

    #[test]
    fn generates_exactly_length_characters_of_the_alphabet() {
        let mut rng = StdRng::seed_from_u64(21);
        for alphabet in Alphabet::ALL.into_iter().chain(custom_alphabets()) {
            for length in [1, 2, 21, 255, 256, 257, 1024] {
                let text = generate(&mut rng, Length::new(length).unwrap(), alphabet);
                assert_eq!(text.len(), length, "{alphabet} length {length}");
                assert!(text.bytes().all(|b| alphabet.chars().contains(&b)), "{alphabet}: {text}");
            }
        }
    }

    #[test]
    fn generate_into_appends() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut out = b"id_".to_vec();
        generate_into(&mut rng, Length::new(8).unwrap(), Alphabet::Hex, &mut out);
        assert_eq!(out.len(), 11);
        assert!(out.starts_with(b"id_"));
        assert!(out[3..].iter().all(|byte| Alphabet::Hex.chars().contains(byte)));
    }

    /// Pearson's chi-square statistic of `counts` against a uniform distribution.
    fn chi_square(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / counts.len() as f64;
        counts.iter().map(|&count| (count as f64 - expected).powi(2) / expected).sum()
    }

    /// How often each character of `alphabet` occurs in `text`.
    fn frequencies(alphabet: Alphabet, text: impl IntoIterator<Item = u8>) -> Vec<u64> {
        let chars = alphabet.chars().into_owned();
        let mut counts = vec![0u64; chars.len()];
        for byte in text {
            let index = chars.binary_search(&byte).expect("only alphabet characters");
            counts[index] += 1;
        }
        counts
    }

    /// Critical values of chi-square with `alphabet size - 1` degrees of freedom at
    /// p = 10^-6 (computed from the regularised incomplete gamma function): a uniform
    /// generator exceeds them once in a million runs, so the test is deterministic with its
    /// seed and would still pass for virtually any other (a uniform sample's statistic is
    /// around its degrees of freedom, 15 to 63).
    fn threshold(alphabet: Alphabet) -> f64 {
        match alphabet.chars().len() {
            3 => 27.63,   // 2 degrees of freedom
            10 => 44.81,  // 9
            16 => 56.49,  // 15
            58 => 122.79, // 57
            62 => 128.52, // 61
            64 => 131.37, // 63
            95 => 174.09, // 94
            size => panic!("no threshold for {size} characters"),
        }
    }

    /// Custom alphabets whose sizes take every kind of draw: 2 bits with one value in four
    /// rejected, 4 bits with six in sixteen, 7 bits with a quarter.
    fn custom_alphabets() -> [Alphabet; 3] {
        let printable: String = (b' '..=b'~').map(char::from).collect();
        ["abc", "9876543210", printable.as_str()].map(|chars| Alphabet::custom(chars).unwrap())
    }

    const SAMPLE_CHARS: usize = 200_000;

    #[test]
    fn characters_are_uniform_over_each_alphabet() {
        let alphabets = Alphabet::ALL.into_iter().chain(custom_alphabets());
        for (seed, alphabet) in alphabets.enumerate() {
            let mut rng = StdRng::seed_from_u64(seed as u64);
            // Whole IDs, as the service hands them out, rather than one long string.
            let text: Vec<u8> = (0..SAMPLE_CHARS / 20)
                .flat_map(|_| generate(&mut rng, Length::new(20).unwrap(), alphabet).into_bytes())
                .collect();
            let statistic = chi_square(&frequencies(alphabet, text));
            assert!(
                statistic < threshold(alphabet),
                "{alphabet}: chi-square {statistic:.1} >= {}",
                threshold(alphabet)
            );
        }
    }

    #[test]
    fn the_uniformity_check_catches_modulo_bias() {
        // The generator this module refuses to be: `byte % 62` gives the first 8 characters
        // probability 5/256 and the others 4/256. At 200k characters the statistic's expected
        // value is about 61 + 1300, an order of magnitude above the threshold.
        let alphabet = Alphabet::Alphanumeric;
        let mut rng = StdRng::seed_from_u64(0);
        let mut bytes = vec![0u8; SAMPLE_CHARS];
        rng.fill_bytes(&mut bytes);
        let biased = bytes.iter().map(|&byte| alphabet.chars()[usize::from(byte) % 62]);
        let statistic = chi_square(&frequencies(alphabet, biased));
        assert!(statistic > 5.0 * threshold(alphabet), "chi-square {statistic:.1}");
        // And over a caller's 95 characters: `byte % 95` favours the first 66 (3/256 against
        // 2/256), expected statistic about 94 + 7,300.
        let alphabet = custom_alphabets()[2];
        let chars = alphabet.chars();
        let biased = bytes.iter().map(|&byte| chars[usize::from(byte) % 95]);
        let statistic = chi_square(&frequencies(alphabet, biased));
        assert!(statistic > 5.0 * threshold(alphabet), "chi-square {statistic:.1}");
    }

    #[test]
    fn a_custom_alphabet_is_2_to_95_distinct_printable_ascii_characters() {
        let reason = |text: &str| match CharSet::parse(text) {
            Err(ParamError::Chars { reason }) => reason,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(reason(""), "has fewer than 2 characters");
        assert_eq!(reason("x"), "has fewer than 2 characters");
        assert_eq!(reason("abca"), "has a character twice");
        assert_eq!(reason("ab\n"), "has a character outside printable ASCII");
        assert_eq!(reason("ab\u{7f}"), "has a character outside printable ASCII");
        assert_eq!(reason("abé"), "has a character outside printable ASCII");
        assert_eq!(reason(&"ab".repeat(129)), "is longer than 256 characters");
        let set = CharSet::parse("ba").unwrap();
        assert_eq!((set.len(), set.to_string()), (2, "ab".to_owned()));
        let printable: String = (b' '..=b'~').map(char::from).collect();
        let all = CharSet::parse(&printable).unwrap();
        assert_eq!((all.len(), all.to_string()), (95, printable.clone()));
        assert!(
            all.contains(b' ') && all.contains(b'~') && !all.contains(0x7f) && !all.contains(200)
        );
        // Its text parses back to the same set, whatever order it was given in.
        let shuffled: String = printable.chars().rev().collect();
        assert_eq!(CharSet::parse(&shuffled), Ok(all));
        assert_eq!(Alphabet::custom("10").map(Alphabet::name), Ok("custom"));
        assert_eq!(Alphabet::custom("10").unwrap().chars().as_ref(), b"01");
    }

    proptest! {
        #[test]
        fn only_alphabet_characters_of_the_requested_length(
            seed: u64,
            length in 1..=Length::MAX,
            alphabet in prop::sample::select(Alphabet::ALL.to_vec()),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let text = generate(&mut rng, Length::new(length).unwrap(), alphabet);
            prop_assert_eq!(text.len(), length);
            prop_assert!(text.bytes().all(|b| alphabet.chars().contains(&b)));
        }

        #[test]
        fn only_a_custom_alphabets_characters(
            seed: u64,
            length in 1..=Length::MAX,
            chars in prop::collection::btree_set(b' '..=b'~', 2..=95),
        ) {
            let text: String = chars.iter().map(|&byte| char::from(byte)).collect();
            let alphabet = Alphabet::custom(&text).unwrap();
            let mut rng = StdRng::seed_from_u64(seed);
            let id = generate(&mut rng, Length::new(length).unwrap(), alphabet);
            prop_assert_eq!(id.len(), length);
            prop_assert!(id.bytes().all(|byte| chars.contains(&byte)));
        }
    }
}
