//! The API keys file (`IDGEN_API_KEYS_FILE`) and the keyring read from it. The file holds the
//! SHA-256 of each secret, never a secret; a presented key is hashed and looked up, which takes
//! the same time for every wrong key. A fast hash is right here because the secrets are long
//! and random (`idg_` and 32 random bytes), as GitHub's and Stripe's tokens are: there is no
//! dictionary to guess from.
//!
//! ```toml
//! [[key]]
//! name = "svc-orders"                 # in logs and metrics, never the secret
//! sha256 = "<64 lowercase hex>"
//! scopes = ["uuid7", "counter:orders.*"]   # optional; absent = every kind, no admin
//! rate_per_second = 100               # optional, IDs per second, with
//! burst = 200                         # optional
//! daily_quota = 1000000               # optional, IDs per UTC day
//! max_new_counters = 100              # optional, counter names this key may create
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rand::RngExt as _;
use serde::Deserialize;
use toml::Spanned;

use super::scope::Scopes;

/// What one key may do, and how much.
#[derive(Debug, Clone)]
pub struct Key {
    /// Shared, so a request can name the key's bucket without copying the name.
    pub name: Arc<str>,
    pub scopes: Scopes,
    /// IDs per second (with `burst`), when limited.
    pub rate_per_second: Option<u32>,
    pub burst: Option<u32>,
    /// IDs per UTC day.
    pub daily_quota: Option<u64>,
    /// Counter names this key may create (since the server started).
    pub max_new_counters: Option<u32>,
    /// IDs issued with it (`idgen_key_ids_issued_total`); kept across reloads by name.
    pub usage: Arc<KeyUsage>,
}

/// Slots of a [`KeyUsage`]: more than the workers of any machine this runs on would use at
/// once; two threads sharing one only cost a contended add.
const USAGE_SLOTS: usize = 16;

static NEXT_USAGE_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static USAGE_SLOT: usize = NEXT_USAGE_SLOT.fetch_add(1, Ordering::Relaxed) % USAGE_SLOTS;
}

/// IDs issued with one key since the server started, counted in a slot per worker thread: a
/// keyed request on one core never writes the cache line another core's requests write (the
/// keyed path was made free of such sharing; a single counter would undo that).
#[derive(Debug, Default)]
pub struct KeyUsage {
    slots: [UsageSlot; USAGE_SLOTS],
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct UsageSlot(AtomicU64);

impl KeyUsage {
    pub fn add(&self, ids: u64) {
        let slot = USAGE_SLOT.with(|slot| *slot);
        self.slots[slot].0.fetch_add(ids, Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        self.slots.iter().map(|slot| slot.0.load(Ordering::Relaxed)).sum()
    }
}

impl Key {
    /// The most IDs at once: `burst`, or the rate without one (a key with no rate has none).
    pub fn burst(&self) -> Option<u32> {
        self.burst.or(self.rate_per_second)
    }

    /// A key called `k` with every kind and these limits (the limiters' tests).
    #[cfg(test)]
    pub(crate) fn limited(
        rate_per_second: Option<u32>,
        burst: Option<u32>,
        daily_quota: Option<u64>,
        max_new_counters: Option<u32>,
    ) -> Key {
        Key {
            name: "k".into(),
            scopes: Scopes::every_kind(),
            rate_per_second,
            burst,
            daily_quota,
            max_new_counters,
            usage: Arc::default(),
        }
    }
}

/// Every key, by the SHA-256 of its secret.
#[derive(Debug, Default)]
pub struct Keyring {
    by_hash: HashMap<[u8; 32], Arc<Key>>,
}

impl Keyring {
    /// The key whose secret is `secret`.
    pub fn find(&self, secret: &str) -> Option<&Arc<Key>> {
        self.by_hash.get(&sha256(secret.as_bytes()))
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Every key with the SHA-256 of its secret.
    pub(super) fn by_hash(&self) -> impl Iterator<Item = (&[u8; 32], &Arc<Key>)> {
        self.by_hash.iter()
    }

    /// Every key, by name.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<Key>> {
        self.by_hash.values()
    }

    /// Reads and checks `path`. The error names the file and the line.
    pub fn load(path: &Path) -> Result<Keyring, String> {
        Self::reload(path, &Keyring::default())
    }

    /// [`Keyring::load`], where a key named as one of `previous` keeps counting its usage.
    pub fn reload(path: &Path, previous: &Keyring) -> Result<Keyring, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let mut keyring =
            Self::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let usage: HashMap<&str, &Arc<KeyUsage>> =
            previous.keys().map(|key| (&*key.name, &key.usage)).collect();
        for key in keyring.by_hash.values_mut() {
            if let Some(kept) = usage.get(&*key.name) {
                Arc::make_mut(key).usage = Arc::clone(kept);
            }
        }
        Ok(keyring)
    }

    /// The keyring a file's text describes.
    pub fn parse(text: &str) -> Result<Keyring, String> {
        let file: File = toml::from_str(text).map_err(|error| {
            let line = error.span().map(|span| line_of(text, span.start));
            let message = error.message().to_owned();
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })?;
        let mut by_hash = HashMap::new();
        let mut names = HashMap::new();
        for entry in file.key {
            let line = line_of(text, entry.name.span().start);
            let at = |problem: String| format!("line {line}: {problem}");
            let name = entry.name.into_inner();
            if name.is_empty() || name.len() > 64 || !name.chars().all(is_name_char) {
                return Err(at(format!(
                    "key name {name:?} must be 1 to 64 characters from A-Z a-z 0-9 _ . -"
                )));
            }
            if let Some(first) = names.insert(name.clone(), line) {
                return Err(at(format!("key name {name:?} is already used on line {first}")));
            }
            let hash = parse_hash(&entry.sha256).ok_or_else(|| {
                at(format!("key {name:?}: sha256 must be 64 lowercase hex digits (the SHA-256 of the secret)"))
            })?;
            let scopes = match &entry.scopes {
                Some(scopes) => {
                    Scopes::parse(scopes).map_err(|e| at(format!("key {name:?}: {e}")))?
                }
                None => Scopes::every_kind(),
            };
            if entry.rate_per_second == Some(0) || entry.burst == Some(0) {
                return Err(at(format!(
                    "key {name:?}: rate_per_second and burst must be at least 1"
                )));
            }
            if entry.burst.is_some() && entry.rate_per_second.is_none() {
                return Err(at(format!("key {name:?}: burst needs rate_per_second")));
            }
            let key = Key {
                name: name.into(),
                scopes,
                rate_per_second: entry.rate_per_second,
                burst: entry.burst,
                daily_quota: entry.daily_quota,
                max_new_counters: entry.max_new_counters,
                usage: Arc::default(),
            };
            if by_hash.insert(hash, Arc::new(key)).is_some() {
                return Err(at("two keys have the same sha256 (the same secret)".to_owned()));
            }
        }
        Ok(Keyring { by_hash })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    key: Vec<FileKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    name: Spanned<String>,
    sha256: String,
    scopes: Option<Vec<String>>,
    rate_per_second: Option<u32>,
    burst: Option<u32>,
    daily_quota: Option<u64>,
    max_new_counters: Option<u32>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(hash)
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// A new secret (`idg_` and 32 bytes from the OS's CSPRNG, base64url) and its file entry.
pub fn new_key(name: &str, scopes: &[String]) -> Result<(String, String), String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_name_char) {
        return Err(format!("--name {name:?} must be 1 to 64 characters from A-Z a-z 0-9 _ . -"));
    }
    if !scopes.is_empty() {
        Scopes::parse(scopes).map_err(|error| format!("--scope: {error}"))?;
    }
    // ThreadRng: ChaCha12 seeded from the OS, a CSPRNG; 256 bits.
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    let secret = format!("idg_{}", base64url(&bytes));
    let mut entry =
        format!("[[key]]\nname = {name:?}\nsha256 = \"{}\"\n", hex(&sha256(secret.as_bytes())));
    if !scopes.is_empty() {
        let list: Vec<String> = scopes.iter().map(|scope| format!("{scope:?}")).collect();
        let _ = writeln!(entry, "scopes = [{}]", list.join(", "));
    }
    Ok((secret, entry))
}

/// Base64 with the URL alphabet and no padding (no `+`, `/` or `=` to quote in a header).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_found_by_its_secret_only() {
        let (secret, entry) =
            new_key("svc-orders", &["uuid7".into(), "counter:orders.*".into()]).unwrap();
        assert!(secret.starts_with("idg_") && secret.len() == 4 + 43, "{secret}");
        assert!(secret[4..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let ring = Keyring::parse(&entry).unwrap();
        let key = ring.find(&secret).expect("the new key");
        assert_eq!(&*key.name, "svc-orders");
        assert!(ring.find("idg_wrong").is_none());
        assert!(!entry.contains(&secret), "the entry never holds the secret");
        let (other, _) = new_key("x", &[]).unwrap();
        assert_ne!(other, secret);
    }

    #[test]
    fn a_bad_file_names_the_line() {
        let good = format!("sha256 = \"{}\"", "a".repeat(64));
        for (text, expected) in [
            (
                format!(
                    "[[key]]\nname = \"a\"\n{good}\n[[key]]\nname = \"a\"\nsha256 = \"{}\"",
                    "b".repeat(64)
                ),
                "line 5: key name \"a\" is already used on line 2",
            ),
            (
                "[[key]]\nname = \"a\"\nsha256 = \"abc\"\n".to_owned(),
                "line 2: key \"a\": sha256 must be 64 lowercase hex digits",
            ),
            (
                format!("[[key]]\nname = \"a\"\n{good}\nscopes = [\"nope\"]\n"),
                "line 2: key \"a\": unknown scope \"nope\"",
            ),
            (format!("[[key]]\nname = \"a\"\n{good}\nrate = 5\n"), "line 4: unknown field `rate`"),
            ("[[key]\n".to_owned(), "line 1:"),
            (format!("[[key]]\nname = \"a b\"\n{good}\n"), "line 2: key name \"a b\" must be"),
            (
                format!("[[key]]\nname = \"a\"\n{good}\nburst = 5\n"),
                "line 2: key \"a\": burst needs rate_per_second",
            ),
        ] {
            let error = Keyring::parse(&text).unwrap_err();
            assert!(error.starts_with(expected), "{error:?} for\n{text}");
        }
        assert!(Keyring::parse("").unwrap().is_empty());
    }

    #[test]
    fn base64url_of_known_bytes() {
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url(b"Man"), "TWFu");
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
