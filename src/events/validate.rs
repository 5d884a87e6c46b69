//! Semantic validation of decoded events.
//!
//! Decoding guarantees shapes; this module enforces the rules a type cannot:
//! names usable as subject tokens, finite non-negative latencies, consistent
//! counts. It only reads the event, so a rejected input changes nothing.

use super::envelope::{Data, Event};
use super::observation::{Command, Deploy, LatencySummary, Request, Scope, Topology, Window};
use super::reject::Rejection;
use super::subject::is_valid_token;

/// Longest accepted `id` and `source`, in bytes.
pub const MAX_ID_LEN: usize = 512;

const TOKEN_RULE: &str =
    "must be a single NATS subject token: 1-256 bytes, no '.', '*', '>' or whitespace";

/// Checks an event published from outside: valid, and an observation.
pub fn validate_input(event: &Event) -> Result<(), Rejection> {
    let kind = event.event_type();
    if kind.is_decision() {
        return Err(Rejection::DecisionAsInput {
            type_name: kind.name().to_owned(),
        });
    }
    validate(event)
}

/// Checks any event, observation or decision.
pub fn validate(event: &Event) -> Result<(), Rejection> {
    text("id", &event.id)?;
    text("source", &event.source)?;
    token("subject", &event.subject)?;
    match &event.data {
        Data::Request(r) => request(r),
        Data::Window(w) => window(w),
        Data::Health(h) => opt_token("data.instance", &h.instance),
        Data::Deploy(d) => deploy(d),
        Data::Topology(t) => topology(t),
        Data::Actuation(a) => text("data.decision_id", &a.decision_id),
        Data::Command(c) => command(c),
        Data::Tick(_) => Ok(()),
        Data::Config(c) => text("data.hash", &c.hash),
        Data::Breaker(b) => text("data.target", &b.target),
        Data::Prediction(_)
        | Data::Route(_)
        | Data::Rollback(_)
        | Data::Containment(_)
        | Data::Incident(_) => Ok(()),
    }
}

fn text(field: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(Rejection::invalid(
            field,
            value,
            format!("must be 1-{MAX_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

fn token(field: &str, value: &str) -> Result<(), Rejection> {
    if is_valid_token(value) {
        Ok(())
    } else {
        Err(Rejection::invalid(field, value, TOKEN_RULE))
    }
}

fn opt_token(field: &str, value: &Option<String>) -> Result<(), Rejection> {
    value.as_deref().map_or(Ok(()), |v| token(field, v))
}

fn latency(field: &str, value: Option<f64>) -> Result<(), Rejection> {
    match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => Err(Rejection::invalid(
            field,
            v,
            "must be a finite number of milliseconds >= 0",
        )),
        _ => Ok(()),
    }
}

fn request(r: &Request) -> Result<(), Rejection> {
    opt_token("data.instance", &r.instance)?;
    opt_token("data.caller", &r.caller)?;
    latency("data.latency_ms", r.latency_ms)?;
    match (r.status, r.outcome) {
        (None, None) => Err(Rejection::invalid(
            "data.status",
            Option::<u16>::None,
            "a request needs a status (0 = transport error) or an outcome",
        )),
        (Some(s), _) if s > 999 => Err(Rejection::invalid("data.status", s, "must be 0-999")),
        _ => Ok(()),
    }
}

fn summary(s: &LatencySummary) -> Result<(), Rejection> {
    latency("data.latency_ms.p50", s.p50)?;
    latency("data.latency_ms.p90", s.p90)?;
    latency("data.latency_ms.p99", s.p99)?;
    latency("data.latency_ms.max", s.max)?;
    latency("data.latency_ms.mean", s.mean)
}

fn window(w: &Window) -> Result<(), Rejection> {
    opt_token("data.instance", &w.instance)?;
    opt_token("data.caller", &w.caller)?;
    if w.interval_ms == 0 {
        return Err(Rejection::invalid("data.interval_ms", 0, "must be > 0"));
    }
    if w.errors > w.requests {
        return Err(Rejection::invalid(
            "data.errors",
            w.errors,
            format!("must be <= requests ({})", w.requests),
        ));
    }
    if let Some(slow) = w.slow.filter(|&s| s > w.requests) {
        return Err(Rejection::invalid(
            "data.slow",
            slow,
            format!("must be <= requests ({})", w.requests),
        ));
    }
    w.latency_ms.as_ref().map_or(Ok(()), summary)
}

fn deploy(d: &Deploy) -> Result<(), Rejection> {
    text("data.version", &d.version)?;
    match d.canary_weight {
        Some(w) if w > 100 => Err(Rejection::invalid("data.canary_weight", w, "must be 0-100")),
        _ => Ok(()),
    }
}

fn topology(t: &Topology) -> Result<(), Rejection> {
    for (i, dep) in t.dependencies.iter().enumerate() {
        token(&format!("data.dependencies[{i}].callee"), &dep.callee)?;
    }
    for (i, inst) in t.instances.iter().enumerate() {
        token(&format!("data.instances[{i}].id"), &inst.id)?;
    }
    if let Some(r) = t
        .revenue_per_minute
        .filter(|r| !(r.is_finite() && *r >= 0.0))
    {
        return Err(Rejection::invalid(
            "data.revenue_per_minute",
            r,
            "must be finite and >= 0",
        ));
    }
    if let Some(slo) = &t.slo {
        if let Some(a) = slo.availability.filter(|a| !(*a > 0.0 && *a <= 1.0)) {
            return Err(Rejection::invalid(
                "data.slo.availability",
                a,
                "must be a fraction in (0, 1], e.g. 0.999",
            ));
        }
        latency("data.slo.latency_p99_ms", slo.latency_p99_ms)?;
    }
    Ok(())
}

fn command(c: &Command) -> Result<(), Rejection> {
    let scope = c.scope.unwrap_or(Scope::Service);
    let Some(target) = c.target.as_deref() else {
        return match scope {
            Scope::Edge | Scope::Instance => Err(Rejection::invalid(
                "data.target",
                Option::<String>::None,
                "edge and instance commands need a target (`caller->callee`, `service/instance`)",
            )),
            Scope::Service | Scope::System => Ok(()),
        };
    };
    match scope {
        Scope::Service => token("data.target", target),
        Scope::Edge => match target.split_once("->") {
            Some((a, b)) if is_valid_token(a) && is_valid_token(b) => Ok(()),
            _ => Err(Rejection::invalid(
                "data.target",
                target,
                "an edge target is `caller->callee`",
            )),
        },
        Scope::Instance => match target.split_once('/') {
            Some((a, b)) if is_valid_token(a) && is_valid_token(b) => Ok(()),
            _ => Err(Rejection::invalid(
                "data.target",
                target,
                "an instance target is `service/instance`",
            )),
        },
        Scope::System => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::codec::Codec;

    fn event(data: &str) -> Event {
        let text = format!(
            r#"{{"specversion":"1.0","id":"e1","source":"t","type":"faultline.window","subject":"checkout","time":"2026-01-01T00:00:00Z","data":{data}}}"#
        );
        Codec::Json.decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn counts_must_be_consistent() {
        let e = event(r#"{"interval_ms":1000,"requests":5,"errors":6}"#);
        let err = validate_input(&e).unwrap_err().to_string();
        assert_eq!(err, "data.errors = 6: must be <= requests (5)");
    }

    #[test]
    fn names_must_be_tokens() {
        let mut e = event(r#"{"interval_ms":1000,"requests":5,"errors":1}"#);
        assert!(validate_input(&e).is_ok());
        e.subject = "check.out".into();
        let err = validate_input(&e).unwrap_err().to_string();
        assert!(err.starts_with("subject = \"check.out\""), "{err}");
    }

    #[test]
    fn latency_must_be_finite() {
        let mut e = event(r#"{"interval_ms":1000,"requests":5,"errors":1}"#);
        if let Data::Window(w) = &mut e.data {
            w.latency_ms = Some(LatencySummary {
                p99: Some(f64::NAN),
                ..Default::default()
            });
        }
        let err = validate_input(&e).unwrap_err();
        assert_eq!(err.reason(), "invalid");
        assert!(
            err.to_string().contains("data.latency_ms.p99 = NaN"),
            "{err}"
        );
    }

    #[test]
    fn decisions_are_not_inputs() {
        let mut e = event(r#"{"interval_ms":1000,"requests":5,"errors":1}"#);
        e.data = Data::Route(crate::events::decision::RouteDecision {
            strategy: crate::events::decision::RouteStrategy::Weighted,
            weights: Vec::new(),
            ejected: Vec::new(),
            hosts: 0,
            healthy_hosts: 0,
            reason: String::new(),
        });
        assert_eq!(
            validate_input(&e).unwrap_err().reason(),
            "decision_as_input"
        );
    }
}
