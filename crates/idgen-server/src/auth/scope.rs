//! What a key may do: its scopes. A kind name allows that kind (issuing and decoding it);
//! `counter:<glob>` allows the counters whose names match (`*` matches any run of characters);
//! `admin` allows the admin routes; `*` allows every kind (and every counter name). A key with
//! no `scopes` may use every kind, and not the admin routes.

use idgen_core::Kind;

/// A key's scopes, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    every_kind: bool,
    kinds: Vec<Kind>,
    /// `counter:<glob>` patterns (a `counter` scope is every name).
    counters: Vec<String>,
    admin: bool,
}

impl Scopes {
    /// What a key without `scopes` may do.
    pub fn every_kind() -> Self {
        Scopes { every_kind: true, kinds: Vec::new(), counters: Vec::new(), admin: false }
    }

    pub fn parse(scopes: &[String]) -> Result<Self, String> {
        let mut parsed = Scopes { every_kind: false, ..Self::every_kind() };
        for scope in scopes {
            match scope.as_str() {
                "*" => parsed.every_kind = true,
                "admin" => parsed.admin = true,
                other => {
                    if let Some(glob) = other.strip_prefix("counter:") {
                        let valid = !glob.is_empty()
                            && glob.len() <= 64
                            && glob.chars().all(|c| {
                                c == '*'
                                    || c.is_ascii_alphanumeric()
                                    || matches!(c, '_' | '.' | '-')
                            });
                        if !valid {
                            return Err(format!(
                                "scope {scope:?}: a counter pattern is 1 to 64 characters from A-Z a-z 0-9 _ . - and *"
                            ));
                        }
                        parsed.counters.push(glob.to_owned());
                    } else if let Some(kind) = Kind::from_name(other) {
                        parsed.kinds.push(kind);
                    } else {
                        return Err(format!(
                            "unknown scope {scope:?}; use a kind name, counter:<pattern>, admin or *"
                        ));
                    }
                }
            }
        }
        Ok(parsed)
    }

    /// Whether the key may issue or decode `kind` (for a counter: some name of it).
    pub fn allows_kind(&self, kind: Kind) -> bool {
        self.every_kind
            || self.kinds.contains(&kind)
            || (kind == Kind::Counter && !self.counters.is_empty())
    }

    /// Whether the key may use the counter `name`.
    pub fn allows_counter(&self, name: &str) -> bool {
        self.every_kind
            || self.kinds.contains(&Kind::Counter)
            || self.counters.iter().any(|glob| glob_matches(glob, name))
    }

    pub fn allows_admin(&self) -> bool {
        self.admin
    }
}

/// `*` matches any run of characters (none included); everything else itself.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (glob, text, expected) in [
            ("orders.*", "orders.eu", true),
            ("orders.*", "orders.", true),
            ("orders.*", "orders", false),
            ("orders.*", "xorders.eu", false),
            ("*", "anything", true),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("*.eu", "orders.eu", true),
            ("*.eu", "orders.eux", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("a*a", "a", false),
        ] {
            assert_eq!(glob_matches(glob, text), expected, "{glob} ~ {text}");
        }
    }

    #[test]
    fn scopes_allow_what_they_name() {
        let parse = |scopes: &[&str]| {
            Scopes::parse(&scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let orders = parse(&["uuid7", "counter:orders.*"]).unwrap();
        assert!(orders.allows_kind(Kind::Uuid7) && orders.allows_kind(Kind::Counter));
        assert!(!orders.allows_kind(Kind::Snowflake) && !orders.allows_admin());
        assert!(orders.allows_counter("orders.eu") && !orders.allows_counter("billing"));
        let everything = parse(&["*"]).unwrap();
        assert!(everything.allows_kind(Kind::Ulid) && everything.allows_counter("x"));
        assert!(!everything.allows_admin());
        let admin = parse(&["admin"]).unwrap();
        assert!(admin.allows_admin() && !admin.allows_kind(Kind::Uuid));
        assert!(parse(&["counter"]).unwrap().allows_counter("any"));
        assert!(Scopes::every_kind().allows_counter("any") && !Scopes::every_kind().allows_admin());
        assert!(parse(&["counter:a/b"]).is_err() && parse(&["nope"]).is_err());
    }
}
