//! The TypeID spec's own test vectors (tests/data/typeid, copied unchanged from
//! jetify-com/typeid 0.3 with their licence note): every valid row decodes to its prefix and
//! UUID and encodes back to exactly its text; every invalid row is refused.

use idgen_core::Uuid;
use idgen_core::typeid::{self, Prefix, TypeId};
use serde_json::Value;

fn rows(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/typeid/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let rows: Vec<Value> = serde_json::from_str(&text).expect("a JSON list");
    assert!(!rows.is_empty(), "{path} holds no rows");
    rows
}

fn field<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_else(|| panic!("{row}: no {key}"))
}

#[test]
fn every_valid_vector_decodes_and_encodes_back() {
    let rows = rows("valid.json");
    assert_eq!(rows.len(), 9, "the spec's valid rows");
    for row in &rows {
        let (name, text) = (field(row, "name"), field(row, "typeid"));
        let uuid = Uuid::parse_str(field(row, "uuid")).expect("a UUID");
        let prefix = Prefix::parse(field(row, "prefix")).expect("a valid prefix");
        let (decoded_prefix, decoded_uuid) =
            typeid::decode(text).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!((&decoded_prefix, decoded_uuid), (&prefix, uuid), "{name}");
        assert_eq!(typeid::encode(&prefix, uuid), text, "{name}");
        let parsed: TypeId = text.parse().expect("parses");
        assert_eq!(parsed.to_string(), text, "{name}");
    }
}

#[test]
fn every_invalid_vector_is_refused() {
    let rows = rows("invalid.json");
    assert_eq!(rows.len(), 21, "the spec's invalid rows");
    for row in &rows {
        let (name, text) = (field(row, "name"), field(row, "typeid"));
        assert!(typeid::decode(text).is_err(), "{name}: {text:?} was accepted");
        assert!(text.parse::<TypeId>().is_err(), "{name}");
    }
}
