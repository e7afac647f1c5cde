//! The blocking client against a real server: every method from plain threads with no async
//! runtime, from inside a tokio runtime, failover past a dead server, and its thread stopped
//! with the last clone.

// Each test binary uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::{TestServer, dead_url};
use idgen_client::blocking::Client;
use idgen_client::{Alphabet, Error, ErrorCode, IdRequest, Kind, Length, RandomOptions};

/// One test at a time: one of them counts the process's threads.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many of the process's threads are a blocking client's (named `idgen-client`), from
/// `/proc/self/task`: the test harness starts threads of its own at any time, so the whole
/// count would not do.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "idgen-client")
        .count()
}

#[test]
fn every_method_answers_without_an_async_runtime() {
    let _serial = serial();
    let server = TestServer::start();
    let client = Client::new(&server.url).expect("valid URL");
    assert_eq!(client.uuid().expect("uuid").get_version_num(), 4);
    assert_eq!(client.uuids(3).expect("uuids").len(), 3);
    assert_eq!(client.uuid7().expect("uuid7").get_version_num(), 7);
    let uuid7s = client.uuid7s(50).expect("uuid7s");
    assert!(uuid7s.windows(2).all(|pair| pair[0] < pair[1]));
    let ulids = client.ulids(50).expect("ulids");
    assert!(ulids.windows(2).all(|pair| pair[0] < pair[1]));
    let _ = client.ulid().expect("ulid");
    let snowflake = client.snowflake().expect("snowflake");
    let snowflakes = client.snowflakes(50).expect("snowflakes");
    assert!(snowflakes[0] > snowflake && snowflakes.windows(2).all(|pair| pair[0] < pair[1]));
    let timestamp = client.timestamp().expect("timestamp");
    assert!(client.timestamps(5).expect("timestamps")[0] > timestamp);
    assert_eq!(client.counter("blocking").expect("counter"), 1);
    assert_eq!(client.counters("blocking", 3).expect("counters"), [2, 3, 4]);
    let options = RandomOptions::new(Length::new(32).expect("in range"), Alphabet::Hex);
    let token = client.random(options).expect("random");
    assert!(token.len() == 32 && token.bytes().all(|byte| byte.is_ascii_hexdigit()), "{token}");
    assert_eq!(client.randoms(options, 4).expect("randoms").len(), 4);
    let decoded = client.decode(Kind::Snowflake, &snowflake.to_string()).expect("decode");
    assert_eq!(decoded.worker_id, Some(0));
    let ms = decoded.timestamp_ms.expect("a snowflake has a time").to_string();
    let bounds = client.bounds(Kind::Snowflake, &ms, "").expect("bounds");
    let (min, max): (u64, u64) = (bounds.min.parse().unwrap(), bounds.max.parse().unwrap());
    assert!(min <= snowflake && snowflake <= max, "{snowflake} not in {bounds:?}");
    let request = IdRequest { count: Some(3), name: Some("text".into()), ..IdRequest::default() };
    assert_eq!(client.ids(Kind::Counter, &request).expect("ids"), ["1", "2", "3"]);
    assert_eq!(client.ids_text(Kind::Counter, &request).expect("text"), "4\n5\n6\n");
    assert_eq!(client.kinds().expect("kinds").max_batch, Some(10_000));
    assert_eq!(client.typeid("user").expect("typeid").prefix().as_str(), "user");
    assert_eq!(client.typeids("user", 3).expect("typeids").len(), 3);
    assert_eq!(client.health().expect("healthz").status, "ok");
    assert_eq!(client.ready().expect("readyz").status, "ok");

    // A refusal is the same typed error as the async client's.
    match client.counter("no spaces") {
        Err(Error::Api { status: 400, code: ErrorCode::InvalidCounterName, .. }) => {}
        other => panic!("expected 400 invalid_counter_name, got {other:?}"),
    }
}

#[test]
fn clones_share_it_across_threads_and_the_last_one_stops_its_thread() {
    let _serial = serial();
    let server = TestServer::start();
    let before = threads();
    let client = Client::new(&server.url).expect("valid URL");
    // The thread names itself once it runs, which may be just after `new` returns.
    let named = std::time::Instant::now() + Duration::from_secs(5);
    while threads() == before && std::time::Instant::now() < named {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(threads(), before + 1, "one thread of its own");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                (0..25).map(|_| client.counter("shared").expect("counter")).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut values: Vec<u64> =
        workers.into_iter().flat_map(|worker| worker.join().expect("worker")).collect();
    values.sort_unstable();
    assert_eq!(values, (1..=100).collect::<Vec<u64>>(), "every value once");
    drop(client);
    assert_eq!(threads(), before, "its thread is gone with the last clone");
}

#[tokio::test]
async fn it_works_from_inside_an_async_runtime_too() {
    let _serial = serial();
    let server = TestServer::start();
    let client = Client::new(&server.url).expect("valid URL");
    // Blocks this runtime's thread, but neither panics nor deadlocks: the request runs on
    // the client's own thread.
    assert_eq!(client.uuid7().expect("uuid7").get_version_num(), 7);
    drop(client);
}

#[test]
fn it_fails_over_and_retries_as_the_async_client_does() {
    let _serial = serial();
    let server = TestServer::start();
    let dead = dead_url();
    let client = Client::builder(&dead)
        .endpoints([dead.as_str(), server.url.as_str()])
        .timeout(Duration::from_secs(10))
        .build_blocking()
        .expect("valid URLs");
    assert_eq!(client.snowflakes(10).expect("past the dead one").len(), 10);
    let nowhere = Client::builder(dead_url())
        .retry_policy(idgen_client::RetryPolicy::none())
        .build_blocking()
        .expect("valid URL");
    assert!(matches!(nowhere.uuid(), Err(Error::Transport { .. })));
}
