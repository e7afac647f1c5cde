//! segmentio/ksuid's own examples (tests/data/ksuid, with their source note): the valid ones
//! decode to their seconds field, Unix time and payload and encode back to the same text;
//! nil and max are the ends of the range; the invalid ones are refused.

use idgen_core::ksuid::{self, EPOCH_SECONDS, Ksuid};
use serde_json::Value;

fn vectors() -> Value {
    let path = format!("{}/tests/data/ksuid/vectors.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the vectors")).expect("JSON")
}

#[test]
fn the_examples_decode_and_encode_back() {
    let vectors = vectors();
    assert_eq!(vectors["epoch_seconds"], EPOCH_SECONDS);
    let valid = vectors["valid"].as_array().expect("valid rows");
    assert_eq!(valid.len(), 2);
    for row in valid {
        let text = row["ksuid"].as_str().expect("ksuid");
        let ksuid = ksuid::decode(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(u64::from(ksuid.seconds()), row["timestamp_field"].as_u64().unwrap(), "{text}");
        assert_eq!(ksuid.timestamp_ms() / 1000, row["unix_seconds"].as_u64().unwrap(), "{text}");
        if let Some(payload) = row["payload_hex"].as_str() {
            assert_eq!(format!("{:032X}", ksuid.payload()), payload, "{text}");
        }
        if let Some(raw) = row["raw_hex"].as_str() {
            let hex: String = ksuid.to_bytes().iter().map(|byte| format!("{byte:02X}")).collect();
            assert_eq!(hex, raw, "{text}");
        }
        assert_eq!(ksuid.to_string(), text, "{text}");
    }
    let nil = vectors["nil"].as_str().unwrap();
    assert_eq!(ksuid::decode(nil).unwrap(), Ksuid::from_parts(0, 0));
    let max = vectors["max"].as_str().unwrap();
    assert_eq!(ksuid::decode(max).unwrap(), Ksuid::from_parts(u32::MAX, u128::MAX));
    assert_eq!(Ksuid::from_parts(u32::MAX, u128::MAX).to_string(), max);
}

#[test]
fn the_invalid_ones_are_refused() {
    let vectors = vectors();
    let invalid = vectors["invalid"].as_array().expect("invalid rows");
    assert_eq!(invalid.len(), 3);
    for row in invalid {
        let text = row["ksuid"].as_str().expect("ksuid");
        assert!(ksuid::decode(text).is_err(), "{}: {text} accepted", row["why"]);
    }
}
