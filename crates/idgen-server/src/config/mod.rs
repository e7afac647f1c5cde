//! Settings: one [`Config`] read from `IDGEN_*` environment variables (through envy) and
//! command-line flags (clap), the flag winning, then validated once.
//!
//! Every setting is declared once, in [`settings`]; `Config`, `Flags`, `Setting` and the tables
//! in docs/configuration.md are generated from that declaration ([`declare`], [`docs`]).
//! Every problem becomes a [`ConfigError`] that names the setting as the operator gave it
//! (`IDGEN_WORKER_ID` or `--worker-id`) and says what a valid value looks like; `main` prints it
//! on one line and exits with status 2.

mod command;
mod declare;
#[cfg(test)]
mod docs;
mod settings;
mod values;

use std::collections::HashMap;

use idgen_core::snowflake::Layout;

pub use command::{Command, HealthcheckArgs, KeysCommand, NewKeyArgs, RecoverArgs};
pub use settings::{Config, Flags, Group, Setting};
pub use values::{AccessLog, LogFormat, RateLimitFail, RedisUrl};

/// Every environment variable idgen-server reads starts with this.
pub const ENV_PREFIX: &str = "IDGEN_";

impl Setting {
    /// `--` and the field in kebab case, as clap derives it for [`Flags`].
    pub fn flag(self) -> String {
        format!("--{}", self.field().replace('_', "-"))
    }

    /// The `--help` line: what the setting is, its variable and its default.
    pub fn help_line(self) -> String {
        let default = self.shown_default().replace('`', "");
        format!("{} [env: {}, default: {default}]", self.help(), self.env_var())
    }
}

/// `IDGEN_*` variables that are not server settings but are meant for other programs sharing
/// the environment: the `idgen` CLI and SDK (`IDGEN_URL`, ...) and the test suite.
const OTHER_PROGRAMS_VARIABLES: &[&str] =
    &["IDGEN_URL", "IDGEN_API_KEY", "IDGEN_API_KEY_FILE", "IDGEN_CA_FILE", "IDGEN_REQUIRE_REDIS"];

/// Settings whose value may hold a secret: each also reads `<VARIABLE>_FILE` (a mounted
/// secret), and as a flag gets a warning.
const SECRET_SETTINGS: &[Setting] = &[Setting::RedisUrl];

/// `IDGEN_X_FILE=path` of a secret setting becomes `IDGEN_X=<the file, trimmed>`.
fn read_secret_files(vars: Vec<(String, String)>) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::with_capacity(vars.len());
    for (name, value) in &vars {
        let secret =
            SECRET_SETTINGS.iter().find(|s| name.strip_suffix("_FILE") == Some(s.env_var()));
        let Some(setting) = secret else {
            out.push((name.clone(), value.clone()));
            continue;
        };
        let problem = |problem: String| ConfigError { name: name.clone(), problem };
        if vars.iter().any(|(other, _)| other == setting.env_var()) {
            return Err(problem(format!("set either {} or {name}, not both", setting.env_var())));
        }
        let text = std::fs::read_to_string(value)
            .map_err(|error| problem(format!("cannot read {value}: {error}")))?;
        out.push((setting.env_var().to_owned(), text.trim().to_owned()));
    }
    Ok(out)
}

/// Whether `name` is a setting or a variable of another idgen program.
fn is_known_variable(name: &str) -> bool {
    Setting::ALL.iter().any(|setting| setting.env_var() == name)
        || OTHER_PROGRAMS_VARIABLES.contains(&name)
}

/// Why an unknown `IDGEN_*` variable stops the server (a typo would silently leave the
/// default, e.g. worker id 0 on every node), with the closest real setting.
fn unknown_variable(name: &str) -> String {
    let closest = Setting::ALL
        .iter()
        .map(|setting| (values::edit_distance(name, setting.env_var()), setting.env_var()))
        .min()
        .filter(|(distance, _)| *distance <= 3.max(name.len() / 4));
    match closest {
        Some((_, suggestion)) => {
            format!("not an idgen-server setting; did you mean {suggestion}?")
        }
        None => "not an idgen-server setting; `idgen-server --help` lists them".to_owned(),
    }
}

/// Where a setting's value came from, so the error names what the operator typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env,
    Flag,
}

/// A bad setting. Displays as `invalid IDGEN_WORKER_ID: must be an integer from 0 to 1023`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}: {problem}")]
pub struct ConfigError {
    name: String,
    problem: String,
}

impl ConfigError {
    pub fn new(setting: Setting, source: Source, problem: impl Into<String>) -> Self {
        let name = match source {
            Source::Env => setting.env_var().to_owned(),
            Source::Flag => setting.flag(),
        };
        Self { name, problem: problem.into() }
    }

    /// The variable or flag the error is about.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Config {
    /// The process's settings: `IDGEN_*` variables, then `flags`, validated.
    pub fn load(flags: Flags) -> Result<Config, ConfigError> {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| {
                // A variable that is not UTF-8 cannot be one of ours unless its name is; keep the
                // name so a non-UTF-8 value of an IDGEN_ variable is still reported.
                let name = name.into_string().ok()?;
                let value = value.into_string().unwrap_or_else(|_| "\u{fffd}".to_owned());
                Some((name, value))
            })
            .collect();
        // The Rust ecosystem's usual variable, when the operator did not set ours.
        let log = Setting::Log.env_var();
        if flags.log.is_none()
            && !vars.iter().any(|(name, _)| name == log)
            && let Some((_, filter)) = vars.iter().find(|(name, _)| name == "RUST_LOG")
        {
            vars.push((log.to_owned(), filter.clone()));
        }
        Self::from_sources(vars, flags)
    }

    /// [`Config::load`] with the environment given explicitly (tests never touch the real one).
    /// For each setting the flag's text wins over the variable's; both go through the same
    /// parser, so a bad value gets the same message from either.
    pub fn from_sources(
        vars: impl IntoIterator<Item = (String, String)>,
        flags: Flags,
    ) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> =
            vars.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
        let vars = read_secret_files(vars)?;
        if let Some((name, _)) = vars.iter().find(|(name, _)| !is_known_variable(name)) {
            return Err(ConfigError { name: name.clone(), problem: unknown_variable(name) });
        }
        for &setting in SECRET_SETTINGS {
            let flag = setting.flag_text(&flags);
            // Each comma-separated URL (a cluster's seeds) may carry a password.
            let holds_secret = flag.is_some_and(|text| {
                text.split(',').any(|url| values::password_of(url).is_some_and(|p| !p.is_empty()))
            });
            if holds_secret {
                // Before the log subscriber exists; one line on stderr.
                eprintln!(
                    "idgen-server: warning: {} shows its secret to every local user in the process list; use {} or {}_FILE",
                    setting.flag(),
                    setting.env_var(),
                    setting.env_var()
                );
            }
        }
        let raw: settings::RawEnv =
            envy::prefixed(ENV_PREFIX).from_iter(vars).map_err(|error| ConfigError {
                name: "IDGEN_* settings".to_owned(),
                problem: error.to_string(),
            })?;
        let mut config = Config::default();
        let mut sources = HashMap::new();
        for &setting in Setting::ALL {
            let (text, source) = match (setting.flag_text(&flags), setting.env_text(&raw)) {
                (Some(text), _) => (text, Source::Flag),
                (None, Some(text)) => (text, Source::Env),
                (None, None) => continue,
            };
            if !setting.assign(&mut config, text) {
                return Err(ConfigError::new(setting, source, setting.expectation()));
            }
            sources.insert(setting, source);
        }
        config.worker_id_fixed = sources.contains_key(&Setting::WorkerId);
        config.finish(&sources)?;
        Ok(config)
    }

    /// Derived values and range checks, after the merge.
    fn finish(&mut self, sources: &HashMap<Setting, Source>) -> Result<(), ConfigError> {
        self.rate_limit_burst = self.effective_burst();
        let source = |setting| sources.get(&setting).copied().unwrap_or(Source::Env);
        // First, for its messages: a worker id's range depends on the layout.
        self.check_layout(values::now_ms())
            .map_err(|(setting, problem)| ConfigError::new(setting, source(setting), problem))?;
        self.validate()
            .map_err(|setting| ConfigError::new(setting, source(setting), setting.expectation()))
    }

    /// What the snowflake layout asks of the other settings: a worker id within its field,
    /// and an epoch plus its time bits at least 10 years past `now_ms`.
    fn check_layout(&self, now_ms: u64) -> Result<(), (Setting, String)> {
        let layout = self.snowflake_layout;
        let max = layout.max_worker();
        if self.worker_id > max {
            let under = if layout == Layout::TWITTER {
                String::new()
            } else {
                format!(
                    " (IDGEN_SNOWFLAKE_LAYOUT={layout} has {} worker bits)",
                    layout.worker_bits()
                )
            };
            let problem = format!(
                "must be an integer from 0 to {max}, or ordinal or ordinal+N (the number after the last - of the host name, plus N){under}"
            );
            return Err((Setting::WorkerId, problem));
        }
        const TEN_YEARS_MS: u64 = 10 * 365_250 * 86_400;
        let end = layout.end_ms(self.snowflake_epoch_ms);
        if end < now_ms.saturating_add(TEN_YEARS_MS) {
            let years = end.saturating_sub(now_ms) as f64 / (365.25 * 86_400_000.0);
            let problem = format!(
                "{layout} with IDGEN_SNOWFLAKE_EPOCH_MS={} ends at {}: {years:.1} years are left, at least 10 are needed (more time bits, a longer unit or a later epoch)",
                self.snowflake_epoch_ms,
                idgen_core::wire::rfc3339_ms(end.min(idgen_core::wire::MAX_RFC3339_MS)),
            );
            return Err((Setting::SnowflakeLayout, problem));
        }
        Ok(())
    }

    /// The rate-limit burst: `IDGEN_RATE_LIMIT_BURST`, or the per-second rate when that is 0
    /// (the one place this rule is written).
    pub fn effective_burst(&self) -> u32 {
        if self.rate_limit_burst == 0 { self.rate_limit_per_second } else { self.rate_limit_burst }
    }

    /// The first setting whose value is out of range, on its own or together with another.
    /// (The data dir is checked when the store opens it, the bind address when the listener
    /// binds.)
    pub fn validate(&self) -> Result<(), Setting> {
        if let Some(setting) = Setting::ALL.iter().copied().find(|setting| !setting.is_valid(self))
        {
            return Err(setting);
        }
        let check = |ok: bool, setting| if ok { Ok(()) } else { Err(setting) };
        check(self.worker_id <= self.snowflake_layout.max_worker(), Setting::WorkerId)?;
        check(
            self.redis_url.as_ref().is_none_or(|url| self.redis_cluster || url.urls().len() == 1),
            Setting::RedisUrl,
        )?;
        check(self.redis_wait_replicas == 0 || !self.redis_cluster, Setting::RedisWaitReplicas)?;
        check(self.seed_counters.is_empty() || self.redis_url.is_some(), Setting::SeedCounters)?;
        check(self.tls_cert.is_some() == self.tls_key.is_some(), Setting::TlsCert)?;
        let wildcard = self.cors_origins.iter().any(|origin| origin == "*");
        check(!wildcard || self.api_keys_file.is_none(), Setting::CorsOrigins)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::PathBuf;

    use idgen_core::counter::CounterName;

    use super::values::bind_address_is_valid;
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load(env: &[(&str, &str)], flags: Flags) -> Result<Config, ConfigError> {
        Config::from_sources(vars(env), flags)
    }

    fn check_error(env: &[(&str, &str)], flags: Flags, expected: &str) {
        let error = load(env, flags).expect_err("the settings should be refused");
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn defaults_without_any_setting() {
        let config = load(&[], Flags::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.bind, "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./idgen-data"));
        assert_eq!(config.worker_id, 0);
        assert_eq!(config.snowflake_epoch_ms, 1_577_836_800_000);
        assert_eq!(config.snowflake_max_backward_ms, 1000);
        assert_eq!(config.max_batch, 10_000);
        assert_eq!(config.max_counters, 10_000);
        assert_eq!((config.rate_limit_per_second, config.rate_limit_burst), (0, 0));
        assert!(config.trusted_proxies.is_empty());
        assert_eq!(config.log, "info");
    }

    #[test]
    fn environment_is_read_and_flags_win() {
        let env = [
            ("IDGEN_BIND", "127.0.0.1:0"),
            ("IDGEN_WORKER_ID", "7"),
            ("IDGEN_MAX_BATCH", "50"),
            ("IDGEN_TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ("IDGEN_URL", "http://ignored.invalid"),
            ("PATH", "/bin"),
        ];
        let config = load(&env, Flags::default()).unwrap();
        assert_eq!(config.bind, "127.0.0.1:0");
        assert_eq!(config.worker_id, 7);
        assert_eq!(config.max_batch, 50);
        assert_eq!(
            config.trusted_proxies,
            vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]
        );

        let flags = Flags {
            worker_id: Some("9".into()),
            data_dir: Some("/tmp/x".into()),
            trusted_proxies: Some("192.168.0.1".into()),
            ..Flags::default()
        };
        let config = load(&env, flags).unwrap();
        assert_eq!(config.worker_id, 9);
        assert_eq!(config.max_batch, 50);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.trusted_proxies, vec!["192.168.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn burst_defaults_to_the_rate() {
        let config = load(&[("IDGEN_RATE_LIMIT_PER_SECOND", "5")], Flags::default()).unwrap();
        assert_eq!((config.rate_limit_per_second, config.rate_limit_burst), (5, 5));
        let config = load(
            &[("IDGEN_RATE_LIMIT_PER_SECOND", "5"), ("IDGEN_RATE_LIMIT_BURST", "2")],
            Flags::default(),
        )
        .unwrap();
        assert_eq!((config.rate_limit_per_second, config.rate_limit_burst), (5, 2));
    }

    #[test]
    fn bad_environment_names_the_variable() {
        let worker = "invalid IDGEN_WORKER_ID: must be an integer from 0 to 1023, or ordinal or ordinal+N (the number after the last - of the host name, plus N)";
        check_error(&[("IDGEN_WORKER_ID", "abc")], Flags::default(), worker);
        check_error(&[("IDGEN_WORKER_ID", "1024")], Flags::default(), worker);
        check_error(&[("IDGEN_WORKER_ID", "70000")], Flags::default(), worker);
        check_error(&[("IDGEN_WORKER_ID", "-1")], Flags::default(), worker);
        check_error(
            &[("IDGEN_MAX_BATCH", "0")],
            Flags::default(),
            "invalid IDGEN_MAX_BATCH: must be an integer from 1 to 1000000",
        );
        check_error(
            &[("IDGEN_BIND", "nonsense")],
            Flags::default(),
            "invalid IDGEN_BIND: must be host:port, e.g. 127.0.0.1:8080 (port 0 picks a free port)",
        );
        check_error(
            &[("IDGEN_TRUSTED_PROXIES", "10.0.0.1,proxy")],
            Flags::default(),
            "invalid IDGEN_TRUSTED_PROXIES: must be a comma-separated list of IP addresses, e.g. 10.0.0.1,10.0.0.2",
        );
        check_error(
            &[("IDGEN_LOG", "[[[")],
            Flags::default(),
            "invalid IDGEN_LOG: must be a log filter, e.g. info or idgen_server=debug,warn",
        );
        check_error(
            &[("IDGEN_SNOWFLAKE_EPOCH_MS", "99999999999999")],
            Flags::default(),
            "invalid IDGEN_SNOWFLAKE_EPOCH_MS: must be an integer number of ms since the Unix epoch, not in the future",
        );
        // The first bad one of several good ones is found.
        check_error(
            &[("IDGEN_MAX_BATCH", "10"), ("IDGEN_RATE_LIMIT_BURST", "x"), ("IDGEN_LOG", "warn")],
            Flags::default(),
            "invalid IDGEN_RATE_LIMIT_BURST: must be an integer from 0 (same as the rate) to 1000000",
        );
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let flags = Flags { worker_id: Some("5000".into()), ..Flags::default() };
        check_error(
            &[],
            flags,
            "invalid --worker-id: must be an integer from 0 to 1023, or ordinal or ordinal+N (the number after the last - of the host name, plus N)",
        );
        let flags = Flags { max_counters: Some("many".into()), ..Flags::default() };
        check_error(&[], flags, "invalid --max-counters: must be an integer from 1 to 1000000");
        // A good flag rescues a bad variable.
        let flags = Flags { worker_id: Some("3".into()), ..Flags::default() };
        assert_eq!(load(&[("IDGEN_MAX_BATCH", "20")], flags).unwrap().worker_id, 3);
        let flags = Flags { bind: Some("127.0.0.1:99999".into()), ..Flags::default() };
        assert_eq!(load(&[], flags).unwrap_err().name(), "--bind");
    }

    #[test]
    fn a_repeated_flag_takes_the_last_value() {
        use clap::Parser;
        let flags = Flags::try_parse_from(["idgen-server", "--worker-id", "1", "--worker-id", "2"])
            .unwrap();
        assert_eq!(flags.worker_id.as_deref(), Some("2"));
    }

    #[test]
    fn redis_settings_from_env_and_flags() {
        let config = load(&[], Flags::default()).unwrap();
        assert_eq!(config.redis_url, None);
        assert_eq!(config.redis_prefix, "idgen:");
        assert_eq!((config.counter_block, config.lease_ttl_ms), (1, 10_000));
        assert_eq!(config.rate_limit_fail, RateLimitFail::Open);
        assert!(!config.worker_id_fixed);

        let env = [
            ("IDGEN_REDIS_URL", "redis://:pw@127.0.0.1:7000/2"),
            ("IDGEN_REDIS_PREFIX", "ids:"),
            ("IDGEN_COUNTER_BLOCK", "1000"),
            ("IDGEN_LEASE_TTL_MS", "3000"),
            ("IDGEN_RATE_LIMIT_FAIL", "closed"),
            ("IDGEN_SEED_COUNTERS", "orders=1500, default=42"),
            ("IDGEN_WORKER_ID", "4"),
        ];
        let config = load(&env, Flags::default()).unwrap();
        assert_eq!(config.redis_url, Some(RedisUrl::new("redis://:pw@127.0.0.1:7000/2")));
        assert_eq!(config.redis_prefix, "ids:");
        assert_eq!((config.counter_block, config.lease_ttl_ms), (1000, 3000));
        assert_eq!(config.rate_limit_fail, RateLimitFail::Closed);
        assert_eq!(
            config.seed_counters,
            vec![
                (CounterName::parse("orders").unwrap(), 1500),
                (CounterName::parse("default").unwrap(), 42)
            ]
        );
        assert!(config.worker_id_fixed);

        let flags = Flags {
            counter_block: Some("5".into()),
            rate_limit_fail: Some("open".into()),
            redis_url: Some("redis://localhost:6380".into()),
            ..Flags::default()
        };
        let config = load(&env, flags).unwrap();
        assert_eq!(config.counter_block, 5);
        assert_eq!(config.rate_limit_fail, RateLimitFail::Open);
        assert_eq!(config.redis_url, Some(RedisUrl::new("redis://localhost:6380")));
        let flags = Flags { worker_id: Some("8".into()), ..Flags::default() };
        assert!(load(&[], flags).unwrap().worker_id_fixed);
    }

    #[test]
    fn bad_redis_settings_name_the_setting_and_hide_the_url() {
        let url = "invalid IDGEN_REDIS_URL: must be redis://[user:password@]host:port[/db] or rediss://[user:password@]host:port[/db] (TLS), or with IDGEN_REDIS_CLUSTER=true a comma-separated list of such URLs, all redis:// or all rediss://";
        check_error(&[("IDGEN_REDIS_URL", "http://host")], Flags::default(), url);
        check_error(&[("IDGEN_REDIS_URL", "redisss://:pw@host:6380")], Flags::default(), url);
        // redis-rs takes no URL fragment but `#insecure`.
        check_error(
            &[("IDGEN_REDIS_URL", "rediss://:pw@host:6380/#nocheck")],
            Flags::default(),
            url,
        );
        check_error(&[("IDGEN_REDIS_URL", "redis://a:1,redis://b:2")], Flags::default(), url);
        let cluster =
            [("IDGEN_REDIS_URL", "redis://a:1, redis://b:2"), ("IDGEN_REDIS_CLUSTER", "true")];
        let config = load(&cluster, Flags::default()).unwrap();
        assert!(config.redis_cluster);
        assert_eq!(config.redis_url.unwrap().urls(), ["redis://a:1", "redis://b:2"]);
        check_error(
            &[("IDGEN_COUNTER_BLOCK", "0")],
            Flags::default(),
            "invalid IDGEN_COUNTER_BLOCK: must be an integer from 1 to 1000000",
        );
        check_error(
            &[("IDGEN_LEASE_TTL_MS", "100")],
            Flags::default(),
            "invalid IDGEN_LEASE_TTL_MS: must be an integer from 300 to 3600000",
        );
        check_error(
            &[("IDGEN_RATE_LIMIT_FAIL", "sometimes")],
            Flags::default(),
            "invalid IDGEN_RATE_LIMIT_FAIL: must be open or closed",
        );
        let env = [("IDGEN_REDIS_WAIT_REPLICAS", "1"), ("IDGEN_REDIS_CLUSTER", "true")];
        assert_eq!(load(&env, Flags::default()).unwrap_err().name(), "IDGEN_REDIS_WAIT_REPLICAS");
        let flags = Flags { redis_wait_replicas: Some("2".into()), ..Flags::default() };
        assert_eq!(load(&[], flags).unwrap().redis_wait_replicas, 2);
        let flags = Flags { redis_prefix: Some("a b".into()), ..Flags::default() };
        assert_eq!(load(&[], flags).unwrap_err().name(), "--redis-prefix");
        for seeds in ["orders", "orders=x", "bad name=1"] {
            let env = [("IDGEN_REDIS_URL", "redis://h:1"), ("IDGEN_SEED_COUNTERS", seeds)];
            assert_eq!(load(&env, Flags::default()).unwrap_err().name(), "IDGEN_SEED_COUNTERS");
        }
        // Seeds only mean something in Redis mode.
        let error = load(&[("IDGEN_SEED_COUNTERS", "a=1")], Flags::default()).unwrap_err();
        assert_eq!(error.name(), "IDGEN_SEED_COUNTERS");
    }

    #[test]
    fn rediss_urls_are_accepted() {
        for good in [
            "rediss://:pw@host:6380",
            "rediss://user:pw@10.0.0.1:6380/2",
            "rediss://127.0.0.1:7000/#insecure",
        ] {
            let config = load(&[("IDGEN_REDIS_URL", good)], Flags::default()).unwrap();
            let url = config.redis_url.unwrap();
            assert_eq!(url, RedisUrl::new(good));
            assert!(url.is_tls(), "{good}");
        }
        assert!(!RedisUrl::new("redis://h:1").is_tls());
        let flags = Flags { redis_url: Some("rediss://h:6380".into()), ..Flags::default() };
        assert!(load(&[], flags).unwrap().redis_url.unwrap().is_tls());
        let cluster = [
            ("IDGEN_REDIS_URL", "rediss://a:1/#insecure, rediss://b:2/#insecure"),
            ("IDGEN_REDIS_CLUSTER", "true"),
        ];
        let config = load(&cluster, Flags::default()).unwrap();
        assert_eq!(config.redis_url.unwrap().urls().len(), 2);
        // Still invalid: a TLS URL with a bad address, and cluster nodes of mixed schemes.
        for bad in [
            vec![("IDGEN_REDIS_URL", "rediss://")],
            vec![("IDGEN_REDIS_URL", "rediss://:pw@0.0.0.0:6380")],
            vec![("IDGEN_REDIS_URL", "rediss://a:1,redis://b:2"), ("IDGEN_REDIS_CLUSTER", "true")],
            vec![("IDGEN_REDIS_URL", "redis://a:1,rediss://b:2"), ("IDGEN_REDIS_CLUSTER", "true")],
        ] {
            let error = load(&bad, Flags::default()).unwrap_err();
            assert_eq!(error.name(), "IDGEN_REDIS_URL", "{bad:?}");
            assert!(!error.to_string().contains("pw@"), "{error}");
        }
        // A rediss:// URL hides its password like a redis:// one.
        let url = RedisUrl::new("rediss://user:hunter2@db.internal:6380/#insecure");
        assert_eq!(
            url.redact("TLS to rediss://user:hunter2@db.internal:6380/#insecure failed: hunter2"),
            "TLS to <IDGEN_REDIS_URL> failed: <password>"
        );
        assert!(
            !format!("{:?}", Config { redis_url: Some(url), ..Config::default() })
                .contains("hunter2")
        );
    }

    #[test]
    fn the_redis_url_never_shows() {
        let url = RedisUrl::new("redis://user:hunter2@db.internal:6379/0");
        let config = Config { redis_url: Some(url.clone()), ..Config::default() };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("db.internal"), "{debug}");
        assert_eq!(
            url.redact("failed on redis://user:hunter2@db.internal:6379/0 with hunter2"),
            "failed on <IDGEN_REDIS_URL> with <password>"
        );
        assert_eq!(RedisUrl::new("redis://:pw@h:1").password(), Some("pw"));
        assert_eq!(RedisUrl::new("redis://h:1").password(), None);
    }

    #[test]
    fn bind_shapes() {
        for good in ["127.0.0.1:0", "[::1]:8080", "0.0.0.0:80", "localhost:8080"] {
            assert!(bind_address_is_valid(good), "{good}");
        }
        for bad in ["", "127.0.0.1", ":80", "127.0.0.1:http", "1.2.3.4:65536", "a b:80"] {
            assert!(!bind_address_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_variables_refuse_with_the_closest_setting() {
        check_error(
            &[("IDGEN_WORKERID", "3")],
            Flags::default(),
            "invalid IDGEN_WORKERID: not an idgen-server setting; did you mean IDGEN_WORKER_ID?",
        );
        check_error(
            &[("IDGEN_RATE_LIMIT_PER_SEC", "3")],
            Flags::default(),
            "invalid IDGEN_RATE_LIMIT_PER_SEC: not an idgen-server setting; did you mean IDGEN_RATE_LIMIT_PER_SECOND?",
        );
        check_error(
            &[("IDGEN_COLOUR_SCHEME", "dark")],
            Flags::default(),
            "invalid IDGEN_COLOUR_SCHEME: not an idgen-server setting; `idgen-server --help` lists them",
        );
        // The CLI's and the test suite's variables may share the environment.
        let shared = [("IDGEN_URL", "http://h:1"), ("IDGEN_REQUIRE_REDIS", "1")];
        assert!(load(&shared, Flags::default()).is_ok());
        assert_eq!(values::edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn worker_ids_from_the_host_name_ordinal() {
        assert_eq!(values::worker_id("7", None), Some(7));
        assert_eq!(values::worker_id("ordinal", Some("idgen-3")), Some(3));
        assert_eq!(values::worker_id("ordinal", Some("idgen-orders-12\n")), Some(12));
        assert_eq!(values::worker_id("ordinal+100", Some("idgen-3")), Some(103));
        assert_eq!(values::worker_id(" ordinal+0 ", Some("idgen-0")), Some(0));
        for (text, host) in [
            ("ordinal", Some("idgen")),
            ("ordinal", Some("idgen-x")),
            ("ordinal", None),
            ("ordinal-1", Some("idgen-3")),
            ("ordinal+", Some("idgen-3")),
            ("ordinals", Some("idgen-3")),
            ("ordinal+65535", Some("idgen-3")),
        ] {
            assert_eq!(values::worker_id(text, host), None, "{text} on {host:?}");
        }
        // Out of range after the offset: refused by the range check.
        let config = Config { worker_id: 1024, ..Config::default() };
        assert_eq!(config.validate(), Err(Setting::WorkerId));
    }

    #[test]
    fn secrets_come_from_files_and_security_settings_are_checked_together() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("redis-url");
        std::fs::write(&file, "redis://:pw@127.0.0.1:6379\n").unwrap();
        let path = file.to_str().unwrap();
        let config = load(&[("IDGEN_REDIS_URL_FILE", path)], Flags::default()).unwrap();
        assert_eq!(config.redis_url.unwrap().urls(), ["redis://:pw@127.0.0.1:6379"]);
        let both = [("IDGEN_REDIS_URL_FILE", path), ("IDGEN_REDIS_URL", "redis://x:1")];
        let error = load(&both, Flags::default()).unwrap_err();
        assert_eq!(error.name(), "IDGEN_REDIS_URL_FILE");
        let missing = dir.path().join("none");
        let error = load(&[("IDGEN_REDIS_URL_FILE", missing.to_str().unwrap())], Flags::default());
        assert!(
            error.unwrap_err().to_string().starts_with("invalid IDGEN_REDIS_URL_FILE: cannot read")
        );
        // Only the secret settings have a _FILE form.
        let error = load(&[("IDGEN_BIND_FILE", path)], Flags::default()).unwrap_err();
        assert_eq!(error.name(), "IDGEN_BIND_FILE");

        let cert_only = [("IDGEN_TLS_CERT", "/etc/idgen/cert.pem")];
        assert_eq!(load(&cert_only, Flags::default()).unwrap_err().name(), "IDGEN_TLS_CERT");
        let cors = [("IDGEN_CORS_ORIGINS", "https://app.example.com, http://localhost:3000")];
        let config = load(&cors, Flags::default()).unwrap();
        assert_eq!(config.cors_origins, ["https://app.example.com", "http://localhost:3000"]);
        for bad in ["https://app.example.com/", "app.example.com", "ftp://x", "https://x:port"] {
            let error = load(&[("IDGEN_CORS_ORIGINS", bad)], Flags::default()).unwrap_err();
            assert_eq!(error.name(), "IDGEN_CORS_ORIGINS", "{bad}");
        }
        let wildcard_with_keys =
            [("IDGEN_CORS_ORIGINS", "*"), ("IDGEN_API_KEYS_FILE", "/etc/idgen/keys.toml")];
        let error = load(&wildcard_with_keys, Flags::default()).unwrap_err();
        assert_eq!(error.name(), "IDGEN_CORS_ORIGINS");
    }
}
