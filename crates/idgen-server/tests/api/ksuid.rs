//! Kind `ksuid` over HTTP: batches strictly increasing with the server's second, decoding to
//! the time and payload, segmentio's examples through `/v1/decode/ksuid/{id}`, and the durable
//! mark: after a restart on the same data dir every KSUID is above the last one issued.

use idgen_core::ksuid::Ksuid;
use idgen_core::wire::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::{Options, assert_error, now_ms, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn batches_increase_and_decode_to_their_second_and_payload() {
    let app = spawn_app(Options::new());
    let before = now_ms();
    let ids = app.ids("ksuid", 1000, &[]).await;
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing as text");
    let parsed: Vec<Ksuid> = ids.iter().map(|id| id.parse().expect("a KSUID")).collect();
    assert!(parsed.windows(2).all(|pair| pair[0] < pair[1]));
    let second = parsed[0].timestamp_ms();
    assert!(second + 1000 > before && second <= now_ms(), "{second} vs {before}");
    let (decoded, raw) = app.decoded("ksuid", &ids[0]).await;
    assert_eq!(decoded.timestamp_ms, Some(second), "{raw}");
    assert_eq!(decoded.payload, Some(format!("{:032x}", parsed[0].payload())), "{raw}");

    let (decoded, raw) = app.decoded("ksuid", "0ujtsYcgvSTl8PAuAdqWYSMnLOv").await;
    assert_eq!(decoded.time.as_deref(), Some("2017-10-10T04:00:47.000Z"), "{raw}");
    assert_eq!(decoded.payload.as_deref(), Some("b5a1cd34b5f99d1154fb6853345c9735"), "{raw}");
    for bad in
        ["aaaaaaaaaaaaaaaaaaaaaaaaaaa", "aWgEPTl1tmebfsQzFP4bxwgy80-", "0ujtsYcgvSTl8PAuAdqWYSMnLO"]
    {
        let response = app.decode("ksuid", bad).await;
        assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidId).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_continues_above_the_last_ksuid() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut last: Option<Ksuid> = None;
    for life in 0..5 {
        let app = spawn_app(Options::new().data_dir(data_dir.path()));
        let ids = app.ids("ksuid", 100, &[]).await;
        let first: Ksuid = ids[0].parse().expect("a KSUID");
        if let Some(last) = last {
            // The mark covers whole seconds: a new life starts in a later second.
            assert!(first.seconds() > last.seconds(), "life {life}: {first:?} after {last:?}");
        }
        last = Some(ids[99].parse().expect("a KSUID"));
        app.kill();
    }
}
