//! Redis mode with an injected clock: the `Application` runs in-process (as a library) so that
//! its clock can be set behind the real one.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use idgen_core::Clock;
use idgen_server::config::RedisUrl;
use idgen_server::{Application, Config};
use reqwest::StatusCode;

use crate::helpers::{Options, http_client, now_ms, numeric};
use crate::redis_harness::RedisServer;
use crate::redis_mode::{node, try_ids, worker_of};

/// The real clock shifted by a fixed offset (negative: behind).
struct OffsetClock(i64);

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.0)
    }
}

/// An `Application` served on its own thread until stopped.
struct InProcess {
    /// The node's own data dir (its `redis-node.json`), one per node.
    _data_dir: tempfile::TempDir,
    address: String,
    startup_line: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl InProcess {
    fn start(mut config: Config, offset_ms: i64) -> InProcess {
        let data_dir = tempfile::tempdir().expect("a temp data dir");
        config.data_dir = data_dir.path().to_owned();
        let application = Application::build_with_clock(config, Arc::new(OffsetClock(offset_ms)))
            .unwrap_or_else(|error| panic!("build the application: {error:#}"));
        let address = format!("http://{}", application.address());
        let startup_line = application.startup_line();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(application.run_until(async {
                let _ = stopped.await;
            }))
        });
        InProcess {
            _data_dir: data_dir,
            address,
            startup_line,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    async fn snowflakes(&self, count: usize) -> Result<Vec<u64>, StatusCode> {
        let url = format!("{}/v1/ids/snowflake?count={count}", self.address);
        let response = http_client().get(&url).send().await.expect("GET snowflakes");
        if response.status() != StatusCode::OK {
            return Err(response.status());
        }
        let body: idgen_core::wire::IdsResponse = response.json().await.expect("ids body");
        Ok(numeric(&body.ids))
    }

    async fn ready(&self) -> StatusCode {
        http_client().get(format!("{}/readyz", self.address)).send().await.expect("readyz").status()
    }

    /// Stops like SIGTERM would (drain, settle, release the lease) and waits for it.
    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take().expect("started");
        let outcome = thread.join().expect("the server thread panicked");
        outcome.expect("clean shutdown");
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn config(redis: &RedisServer, worker_id: u16, max_backward_ms: u64) -> Config {
    Config {
        bind: "127.0.0.1:0".to_owned(),
        redis_url: Some(RedisUrl::new(redis.url())),
        worker_id,
        worker_id_fixed: true,
        snowflake_max_backward_ms: max_backward_ms,
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn takeover_with_a_clock_behind_issues_above_the_previous_holder() {
    let Some(redis) =
        RedisServer::start("takeover_with_a_clock_behind_issues_above_the_previous_holder")
    else {
        return;
    };
    // The previous holder of worker 5, on the real clock.
    let mut first = node(&redis, Options::new().flag("--worker-id", 5));
    let mut previous = Vec::new();
    for _ in 0..5 {
        previous.extend(numeric(&try_ids(&first, "snowflake", 1000).await.unwrap()));
    }
    let previous_max = *previous.iter().max().unwrap();
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(15)).success());

    // The next holder's clock is 3 s behind; its backward allowance (10 s) lets it continue
    // from the previous holder's high-water mark instead of refusing.
    let second = InProcess::start(config(&redis, 5, 10_000), -3_000);
    assert!(
        second.startup_line.contains("(mode: redis, worker 5, persistence: "),
        "{}",
        second.startup_line
    );
    let mut taken_over = Vec::new();
    for _ in 0..5 {
        taken_over.extend(second.snowflakes(1000).await.expect("snowflakes"));
    }
    assert!(
        taken_over.iter().all(|id| *id > previous_max && worker_of(*id) == 5),
        "a snowflake at or below the previous holder's {previous_max}"
    );
    let second_max = *taken_over.iter().max().unwrap();
    second.stop();

    // A holder whose clock is 3 s behind with the default 1 s allowance refuses (503) rather
    // than issue below the mark, and says so on /readyz.
    let third = InProcess::start(config(&redis, 5, 1_000), -3_000);
    assert_eq!(third.snowflakes(10).await, Err(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(third.ready().await, StatusCode::SERVICE_UNAVAILABLE);
    third.stop();

    // On the real clock it issues again, above both.
    let fourth = InProcess::start(config(&redis, 5, 1_000), 0);
    let ids = fourth.snowflakes(100).await.expect("snowflakes on the real clock");
    assert!(ids.iter().all(|id| *id > second_max));
    fourth.stop();
}
