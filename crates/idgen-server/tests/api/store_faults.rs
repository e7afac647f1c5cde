//! The embedded store under faults, with the real binary: `kill -9` at random moments while a
//! client writes new marks as fast as it can (the server must start every time and continue
//! above everything it answered), and a full disk (503 `unavailable`, one log line, and writes
//! that work again once space is freed, without a restart).
//!
//! `IDGEN_TEST_CRASH_ITERATIONS` sets the number of kills (default 30, about 20 s);
//! `IDGEN_TEST_CRASH_SEED` replays a run (every run prints its seed).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use idgen_core::wire::{ErrorCode, IdResponse, IdsResponse};
use reqwest::StatusCode;
use tempfile::TempDir;

use crate::helpers::{Options, TestApp, assert_error, numeric, spawn_app, with_query};

const DEFAULT_ITERATIONS: usize = 30;

/// A small xorshift generator: the test needs reproducible randomness, not good randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
}

/// What the server answered with 200: per counter name and for snowflakes, the highest value.
#[derive(Debug, Default)]
struct Answered {
    counters: HashMap<String, u64>,
    snowflake: u64,
}

impl Answered {
    fn counter(&mut self, name: &str, value: u64) {
        let highest = self.counters.entry(name.to_owned()).or_default();
        *highest = (*highest).max(value);
    }
}

/// One GET; `None` once the server is gone (the request failed or its answer was cut off).
/// Any answer but 200 fails the test: a store that keeps up never refuses.
async fn get_values(client: &reqwest::Client, url: &str) -> Option<Vec<u64>> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status();
    let text = response.text().await.ok()?;
    assert_eq!(status, StatusCode::OK, "{url}: {text}");
    if let Ok(batch) = serde_json::from_str::<IdsResponse>(&text) {
        return Some(numeric(&batch.ids));
    }
    let single: IdResponse = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Some(numeric(&[single.id]))
}

/// Writes as fast as one client can until the server dies: mostly new counter names (one
/// durable write each), some batches that need new blocks, some snowflake batches.
async fn load(address: String, first_name: usize, seed: u64) -> (Answered, usize) {
    let client = crate::helpers::http_client();
    let mut rng = Rng(seed | 1);
    let mut answered = Answered::default();
    let mut next_name = first_name;
    for request in 0.. {
        let (name, url) = match request % 8 {
            0..=5 => {
                next_name += 1;
                let name = format!("n{next_name}");
                let url = with_query("/v1/ids/counter", &[("name", &name)]);
                (Some(name), url)
            }
            6 => {
                let name = format!(
                    "n{}",
                    first_name + 1 + rng.below((next_name - first_name) as u64) as usize
                );
                let url = with_query("/v1/ids/counter", &[("name", &name), ("count", "3000")]);
                (Some(name), url)
            }
            _ => (None, with_query("/v1/ids/snowflake", &[("count", "1000")])),
        };
        let Some(values) = get_values(&client, &format!("{address}{url}")).await else { break };
        let highest = *values.iter().max().expect("at least one value");
        match name {
            Some(name) => answered.counter(&name, highest),
            None => answered.snowflake = answered.snowflake.max(highest),
        }
    }
    (answered, next_name)
}

/// Asks each counter in `names` (and a snowflake) once and checks it continues above what was
/// answered before; records the new values.
async fn check_continues(app: &TestApp, answered: &mut Answered, names: &[String], when: &str) {
    for name in names {
        let before = answered.counters[name];
        let url = app.url(&with_query("/v1/ids/counter", &[("name", name)]));
        let value = get_values(&app.client, &url).await.expect("the server answers")[0];
        assert!(value > before, "{when}: counter {name} issued {value}, but {before} was answered");
        answered.counter(name, value);
    }
    let snowflake: u64 = app.id("snowflake", &[]).await.parse().expect("u64");
    assert!(
        snowflake > answered.snowflake,
        "{when}: snowflake {snowflake} not above {}",
        answered.snowflake
    );
    answered.snowflake = snowflake;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_writes_never_repeats_and_the_server_always_starts() {
    let iterations =
        env_number("IDGEN_TEST_CRASH_ITERATIONS").map_or(DEFAULT_ITERATIONS, |n| n as usize);
    let seed = env_number("IDGEN_TEST_CRASH_SEED").unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as u64
    });
    println!("crash loop: {iterations} iterations, IDGEN_TEST_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let data_dir = tempfile::tempdir().expect("temp dir");
    let options = Options::new().data_dir(data_dir.path()).flag("--worker-id", 5);
    let started = Instant::now();
    let mut answered = Answered::default();
    let mut last_run: Vec<String> = Vec::new();
    let mut names = 0;
    for iteration in 0..iterations {
        // `spawn_app` fails the test if the server does not print its start-up line.
        let app = spawn_app(options.clone());
        let mut check = last_run.clone();
        let all: Vec<&String> = answered.counters.keys().collect();
        for _ in 0..all.len().min(20) {
            check.push(all[rng.below(all.len() as u64) as usize].clone());
        }
        check_continues(&app, &mut answered, &check, &format!("restart {iteration}")).await;

        let writer = tokio::spawn(load(app.address.clone(), names, rng.below(u64::MAX)));
        tokio::time::sleep(Duration::from_millis(20 + rng.below(281))).await;
        app.kill();
        let (run, next) = tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("the client stops once the server is gone")
            .expect("the client task");
        names = next;
        last_run = run.counters.keys().cloned().collect();
        for (name, value) in run.counters {
            answered.counter(&name, value);
        }
        answered.snowflake = answered.snowflake.max(run.snowflake);
    }
    // Every counter ever answered, once more after the last kill.
    let app = spawn_app(options);
    let every: Vec<String> = answered.counters.keys().cloned().collect();
    check_continues(&app, &mut answered, &every, "after the last kill").await;
    println!(
        "crash loop: {iterations} kills, {} counter names, {:.1} s",
        every.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(every.len() > iterations, "the client wrote too little to test anything");
}

/// A tmpfs of a few MB, unmounted on drop (after the server using it is gone).
struct Tmpfs {
    path: PathBuf,
    _mount_point: TempDir,
}

impl Tmpfs {
    /// `None` (with a notice) where mounting is not allowed: it needs root.
    fn mount(size: &str) -> Option<Self> {
        let mount_point = tempfile::tempdir().expect("temp dir");
        let path = mount_point.path().to_owned();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "idgen-test"])
            .arg(&path)
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Self { path, _mount_point: mount_point }),
            Ok(output) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                None
            }
            Err(error) => {
                eprintln!("skipped: cannot run mount: {error}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Fills the file system of `path` to the last page; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("create the filler");
    for chunk in [1 << 16, 1 << 12, 1] {
        let bytes = vec![0xa5u8; chunk];
        while file.write_all(&bytes).is_ok() {}
    }
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_with_503_logs_once_and_recovers_when_space_is_freed() {
    let Some(tmpfs) = Tmpfs::mount("16m") else { return };
    let app = spawn_app(Options::new().data_dir(&tmpfs.path.join("data")));
    let mut answered = Answered::default();
    let first: u64 = app.id("counter", &[("name", "before")]).await.parse().expect("u64");
    answered.counter("before", first);
    let filler = fill(&tmpfs.path);

    // New names until one needs a page the file system does not have.
    let mut refused = None;
    for index in 0..20_000 {
        let name = format!("full{index}");
        let response = app.get_ids("counter", &[("name", &name)]).await;
        if response.status() == StatusCode::OK {
            let body: IdResponse = response.json().await.expect("JSON");
            answered.counter(&name, body.id.parse().expect("u64"));
            continue;
        }
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable).await;
        refused = Some(name);
        break;
    }
    let refused = refused.expect("a write on a full disk is refused");
    println!("full disk: {refused} refused after {} new names", answered.counters.len() - 1);
    // More refusals, and /readyz says so, but the log has one line for the incident.
    for _ in 0..5 {
        let response = app.get_ids("counter", &[("name", &refused)]).await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable).await;
    }
    assert_eq!(app.get("/readyz").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stderr = app.stderr();
    assert_eq!(stderr.matches("mark writes fail").count(), 1, "one line per incident:\n{stderr}");
    assert!(stderr.contains("No space left on device (os error 28)"), "the OS error:\n{stderr}");
    // Six refusals, each counted, one WARN line for them and none per request.
    assert_eq!(stderr.matches("incident=\"refused:not_durable\"").count(), 1, "{stderr}");
    assert_eq!(stderr.matches(" ERROR ").count(), 1, "only the back end's own line:\n{stderr}");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let refused_line = "idgen_refused_total{kind=\"counter\",reason=\"not_durable\"} 6";
    assert!(metrics.lines().any(|line| line == refused_line), "{refused_line} in:\n{metrics}");
    assert!(
        metrics
            .lines()
            .any(|line| line
                == "idgen_http_requests_total{route=\"/v1/ids/{kind}\",status=\"503\"} 6")
    );

    std::fs::remove_file(filler).expect("free the space");
    let value: u64 = app.id("counter", &[("name", &refused)]).await.parse().expect("u64");
    assert_eq!(value, 1, "the refused name starts at 1 once written");
    let names: Vec<String> = answered.counters.keys().cloned().collect();
    check_continues(&app, &mut answered, &names, "after the disk was freed").await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    let stderr = app.stderr();
    assert_eq!(stderr.matches("mark writes work again").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("mark writes fail").count(), 1, "{stderr}");
    if std::env::var_os("IDGEN_TEST_SHOW_LOG").is_some() {
        println!("{stderr}");
    }
    app.kill();
    drop(tmpfs);
}
