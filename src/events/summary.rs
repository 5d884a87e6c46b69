//! Decisions in words: what changed, in one short phrase, for `tail` and
//! replay reports alike, so a decision reads the same everywhere.

use super::Event;

/// The agent that made a decision (`source` without `faultline/`).
pub fn agent(e: &Event) -> &str {
    e.source.strip_prefix("faultline/").unwrap_or(&e.source)
}

/// What a decision changed, e.g. `service checkout closed -> open`; empty for inputs.
pub fn what(e: &Event) -> String {
    let v = data(e);
    let s = |k: &str| match &v[k] {
        serde_json::Value::String(t) => t.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let f = |k: &str| v[k].as_f64().map_or("-".to_owned(), |x| format!("{x:.2}"));
    match e.event_type().kind() {
        "breaker" => format!(
            "{} {} {} -> {}",
            s("scope"),
            s("target"),
            s("from"),
            s("to")
        ),
        "prediction" => format!("{} {} risk {}", s("signal"), s("status"), f("risk")),
        "route" => format!(
            "{} {}/{} hosts healthy",
            s("strategy"),
            s("healthy_hosts"),
            s("hosts")
        ),
        "rollback" => format!(
            "{} {} -> {}",
            s("phase"),
            s("from_version"),
            s("to_version")
        ),
        "containment" => format!(
            "{} root {} confidence {}",
            s("action"),
            s("root_cause"),
            f("confidence")
        ),
        "incident" => format!("{} {} {}", s("incident_id"), s("phase"), s("severity")),
        _ => String::new(),
    }
}

/// A decision's one-line human reason, if it has one.
pub fn reason(e: &Event) -> Option<String> {
    data(e)["reason"].as_str().map(str::to_owned)
}

/// The numbers behind a decision: its payload's top-level numeric fields, in field order.
pub fn numbers(e: &Event) -> Vec<(String, f64)> {
    let serde_json::Value::Object(map) = data(e) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| v.as_f64().map(|x| (k, x)))
        .collect()
}

/// The payload as JSON (`data` of the envelope).
fn data(e: &Event) -> serde_json::Value {
    match serde_json::to_value(e) {
        Ok(serde_json::Value::Object(mut m)) => m.remove("data").unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}
