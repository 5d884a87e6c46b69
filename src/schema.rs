//! JSON Schemas of the event contract, generated from the Rust types.
//!
//! One schema per event type: the CloudEvents envelope with `type` fixed to
//! that type and `data` described by the Rust payload type (draft 2020-12).
//! `faultline schema --out schemas` writes them; a test fails when the
//! committed files differ from what the code generates.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::events::subject::TOKEN_PATTERN;
use crate::events::validate::MAX_ID_LEN;
use crate::events::{Data, EventType};

/// The schema of events of type `kind`.
pub fn schema(kind: EventType) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let data = Data::schema_for(kind, &mut generator);
    let defs = generator.take_definitions(true);
    let mut required = vec!["specversion", "id", "source", "type", "subject", "time"];
    if kind != EventType::Tick {
        required.push("data");
    }
    let mut properties = json!({
        "specversion": { "const": "1.0", "description": "CloudEvents version" },
        "id": { "type": "string", "minLength": 1, "maxLength": MAX_ID_LEN, "description": "Unique per event; used as Nats-Msg-Id for dedupe" },
        "source": { "type": "string", "minLength": 1, "maxLength": MAX_ID_LEN, "description": "Producer of the event" },
        "type": { "const": kind.name() },
        "subject": { "type": "string", "pattern": TOKEN_PATTERN, "description": "The service the event is about (a single NATS subject token)" },
        "time": { "type": "string", "format": "date-time", "description": "Event time, RFC 3339" },
        "datacontenttype": { "type": "string" },
        "data": data.to_value(),
    });
    if kind.is_decision() {
        required.extend(["causeseq", "causeid"]);
        properties["causeseq"] = json!({ "type": "integer", "minimum": 1, "description": "Log sequence of the record that caused this decision" });
        properties["causeid"] = json!({ "type": "string", "description": "id of the record that caused this decision" });
    }
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:faultline:schema:{}", kind.name()),
        "title": kind.name(),
        "description": if kind.is_decision() { "A faultline decision (written by agents)" } else { "A faultline observation (published by services)" },
        "type": "object",
        "required": required,
        "properties": properties,
    });
    if !defs.is_empty() {
        root["$defs"] = Value::Object(defs);
    }
    root
}

/// Every schema, with the file name it is committed under.
pub fn all() -> Vec<(String, Value)> {
    EventType::ALL
        .iter()
        .map(|k| (format!("{}.json", k.name()), schema(*k)))
        .collect()
}

/// The text a schema file holds (pretty JSON, trailing newline).
pub fn file_text(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("schemas serialise");
    s.push('\n');
    s
}
