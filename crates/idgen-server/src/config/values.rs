//! Values of settings that are more than a number: the Redis URL (which never shows its
//! password), the rate-limit failure mode, and the parsers of lists, seeds and addresses.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use idgen_core::counter::CounterName;

/// A number (or `true`/`false`), blanks around it allowed.
pub fn number<T: FromStr>(text: &str) -> Option<T> {
    text.trim().parse().ok()
}

/// A Redis URL. It may hold a password, so it never shows in `Debug` or in an error.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for connecting only: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The comma-separated URLs (one, except for Redis Cluster seed nodes).
    pub fn urls(&self) -> Vec<String> {
        self.0.split(',').map(|url| url.trim().to_owned()).collect()
    }

    /// Every URL `redis://` or `rediss://` (TLS, through rustls) with a parsable address (the
    /// only fragment redis-rs takes is `#insecure`), all with the same scheme: Redis Cluster
    /// nodes are reached either all with TLS or all without.
    pub fn is_valid(&self) -> bool {
        use deadpool_redis::redis::IntoConnectionInfo;
        let urls = self.urls();
        let tls = urls.first().is_some_and(|url| url.starts_with("rediss://"));
        let scheme = if tls { "rediss://" } else { "redis://" };
        urls.iter()
            .all(|url| url.starts_with(scheme) && url.as_str().into_connection_info().is_ok())
    }

    /// Whether the URLs use TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.0.trim_start().starts_with("rediss://")
    }

    /// `text` with this URL and its passwords (if any) blanked out, for error messages.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.replace(&self.0, "<IDGEN_REDIS_URL>");
        for url in self.urls() {
            text = text.replace(&url, "<IDGEN_REDIS_URL>");
            if let Some(password) = password_of(&url)
                && !password.is_empty()
            {
                text = text.replace(password, "<password>");
            }
        }
        text
    }
}

pub(super) fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    Some(userinfo.split_once(':').map_or(userinfo, |(_, password)| password))
}

impl RedisUrl {
    #[cfg(test)]
    pub(super) fn password(&self) -> Option<&str> {
        password_of(&self.0)
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(<redacted>)")
    }
}

/// `IDGEN_RATE_LIMIT_FAIL`: when Redis cannot be asked, let requests through or refuse them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateLimitFail {
    /// Let the request through (logged and counted).
    #[default]
    Open,
    /// Answer 503.
    Closed,
}

impl std::str::FromStr for RateLimitFail {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim() {
            "open" => Ok(RateLimitFail::Open),
            "closed" => Ok(RateLimitFail::Closed),
            _ => Err(()),
        }
    }
}

/// `IDGEN_LOG_FORMAT`: how log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

/// `IDGEN_ACCESS_LOG`: which requests get an access-log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccessLog {
    All,
    /// Those answered with a 4xx or 5xx.
    #[default]
    Errors,
    Off,
}

impl std::str::FromStr for AccessLog {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim() {
            "all" => Ok(AccessLog::All),
            "errors" => Ok(AccessLog::Errors),
            "off" => Ok(AccessLog::Off),
            _ => Err(()),
        }
    }
}

/// `name=value,name=value` (blanks around commas allowed).
pub fn parse_seeds(text: &str) -> Result<Vec<(CounterName, u64)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, value) = entry.split_once('=').ok_or("expected name=value")?;
            let name = CounterName::parse(name.trim()).map_err(|e| e.to_string())?;
            let value = value.trim().parse::<u64>().map_err(|e| e.to_string())?;
            Ok((name, value))
        })
        .collect()
}

/// A comma-separated list of IP addresses; blanks around commas are allowed.
pub fn parse_ip_list(text: &str) -> Result<Vec<IpAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| entry.parse::<IpAddr>().map_err(|_| format!("{entry:?} is not an IP address")))
        .collect()
}

/// `host:port` with a numeric port. Name resolution happens when binding, not here, so a
/// hostname is accepted if it has the right shape.
pub fn bind_address_is_valid(bind: &str) -> bool {
    if bind.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match bind.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(|c: char| c.is_whitespace() || c == '/')
                && port.parse::<u16>().is_ok()
                && (host, 0u16).to_socket_addrs().is_ok()
        }
        None => false,
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Levenshtein distance of two short ASCII strings (for "did you mean").
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.as_bytes().iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(x != y));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `IDGEN_WORKER_ID`: a number, or `ordinal` / `ordinal+N`: the number after the last `-` of
/// the host name (a Kubernetes StatefulSet names its pods `idgen-0`, `idgen-1`, ...), plus N.
pub fn worker_id(text: &str, hostname: Option<&str>) -> Option<u16> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix("ordinal") else { return number(text) };
    let offset: u16 = match rest.strip_prefix('+') {
        Some(offset) => number(offset)?,
        None if rest.is_empty() => 0,
        None => return None,
    };
    let ordinal: u16 = hostname?.trim().rsplit_once('-')?.1.parse().ok()?;
    ordinal.checked_add(offset)
}

/// The host name, as a pod or a systemd unit sees it: `$HOSTNAME`, else the kernel's.
pub fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
}

/// `scheme://host[:port]` with no path, query or trailing slash (what a browser sends as
/// `Origin`), or `*`.
pub fn is_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else { return false };
    let host = rest
        .rsplit_once(':')
        .map_or(rest, |(host, port)| if port.parse::<u16>().is_ok() { host } else { "" });
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
}
