//! The published contract stays what it says: committed schemas match the
//! code, every example validates against its schema and decodes, and the
//! frozen wire fixtures (both codecs) still decode to the same events.
//!
//! To regenerate after an intended contract change:
//! `FAULTLINE_BLESS=1 cargo test --test contract` (then review the diff).

use std::path::{Path, PathBuf};

use faultline::events::validate::{validate, validate_input};
use faultline::events::{Codec, Event, EventType};
use faultline::schema;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("FAULTLINE_BLESS").is_some()
}

fn example(kind: EventType) -> (serde_json::Value, Vec<u8>) {
    let path = root().join(format!("schemas/examples/{}.json", kind.name()));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (serde_json::from_slice(&bytes).unwrap(), bytes)
}

#[test]
fn committed_schemas_match_the_code() {
    let mut stale = Vec::new();
    for (name, s) in schema::all() {
        let path = root().join("schemas").join(&name);
        let text = schema::file_text(&s);
        if bless() {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "schemas out of date: {stale:?}; run `faultline schema --out schemas`"
    );
}

#[test]
fn every_example_validates_against_its_schema_and_decodes() {
    for kind in EventType::ALL {
        let (value, bytes) = example(*kind);
        let validator = jsonschema::validator_for(&schema::schema(*kind)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", kind.name());
        let event = Codec::Json
            .decode(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        assert_eq!(event.event_type(), *kind);
        if kind.is_decision() {
            validate(&event).unwrap();
            assert_eq!(
                validate_input(&event).unwrap_err().reason(),
                "decision_as_input"
            );
        } else {
            validate_input(&event).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        }
    }
}

#[test]
fn schemas_reject_what_the_decoder_rejects() {
    let (mut value, _) = example(EventType::Request);
    value["data"]["latency"] = serde_json::json!(3);
    let validator = jsonschema::validator_for(&schema::schema(EventType::Request)).unwrap();
    assert!(
        !validator.is_valid(&value),
        "unknown data field must fail the schema"
    );
    let (mut value, _) = example(EventType::Window);
    value["subject"] = serde_json::json!("a.b");
    let validator = jsonschema::validator_for(&schema::schema(EventType::Window)).unwrap();
    assert!(
        !validator.is_valid(&value),
        "a subject with '.' must fail the schema"
    );
}

fn fixture(kind: EventType, ext: &str) -> PathBuf {
    root().join(format!("tests/fixtures/wire/{}.{ext}", kind.name()))
}

#[test]
fn frozen_wire_fixtures_still_decode() {
    for kind in EventType::ALL {
        let (_, bytes) = example(*kind);
        let expected: Event = Codec::Json.decode(&bytes).unwrap();
        for (codec, ext) in [(Codec::Json, "json"), (Codec::MsgPack, "msgpack")] {
            let path = fixture(*kind, ext);
            if bless() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, codec.encode(&expected)).unwrap();
            }
            let frozen = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let decoded = codec
                .decode(&frozen)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(decoded, expected, "{}", path.display());
            assert_eq!(
                codec.encode(&decoded),
                frozen,
                "{}: encoding changed",
                path.display()
            );
        }
    }
}

#[test]
fn fixtures_cover_every_type() {
    let dir = root().join("tests/fixtures/wire");
    let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        count,
        EventType::ALL.len() * 2,
        "{}",
        Path::new(&dir).display()
    );
}
