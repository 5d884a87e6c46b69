//! What-if: the same inputs under another policy.
//!
//! Both policies are re-run offline over the log's *inputs* (decisions in
//! the log are the old policy's and are left out; each policy's own
//! decisions feed back into its agents, as in `faultline process`). Ticks the
//! engine logged only say that time passed, so they advance the clock and
//! each policy fires its own timers. The baseline is therefore the policy in
//! force re-derived the same way, so every difference shown is the policy's,
//! not an artefact of how a live node attributes timers.
//!
//! Decisions are matched by what they did (agent, service and the change,
//! e.g. `service checkout closed -> open`), occurrence by occurrence in time
//! order, and each pair is classed as the same, earlier or later; what only
//! one policy did is "not at all" or "new". Incidents are paired in order of
//! opening and compared on timing and impact.

use std::collections::BTreeMap;

use serde::Serialize;

use super::range::Selection;
use super::timeline::{Collector, Incident};
use crate::engine::{Engine, ENGINE_SOURCE};
use crate::events::{summary, Data, Event, Timestamp};
use crate::log::Seq;

/// One policy re-run over the inputs.
pub struct Run {
    engine: Engine,
    decisions: Vec<Brief>,
    incidents: Collector,
    out: Vec<Event>,
}

/// A decision, as far as the comparison needs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Brief {
    /// Time.
    pub time: Timestamp,
    /// Agent.
    pub agent: String,
    /// Service.
    pub service: String,
    /// What it did (the matching key).
    pub what: String,
    /// Why.
    pub reason: String,
}

impl Run {
    /// A run of `engine` (fresh, under the policy to compare).
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            decisions: Vec::new(),
            incidents: Collector::new(),
            out: Vec::new(),
        }
    }

    /// Takes the logged record at `seq`; inputs are ingested, engine ticks
    /// advance time, decisions and config records are skipped. Decisions
    /// made for a selected input are kept.
    pub fn record(&mut self, seq: Seq, record: &Event, selection: &Selection) {
        let kind = record.event_type();
        if kind.is_decision() || matches!(record.data, Data::Config(_)) {
            return;
        }
        self.out.clear();
        if record.source == ENGINE_SOURCE && matches!(record.data, Data::Tick(_)) {
            self.engine.advance_to(record.time, &mut self.out);
        } else {
            self.engine.ingest(record.clone(), &mut self.out);
        }
        for d in self.out.iter().filter(|d| d.event_type().is_decision()) {
            if !(selection.in_range(seq, d.time) && selection.about(&d.subject)) {
                continue;
            }
            self.incidents.observe(seq, d);
            self.decisions.push(Brief {
                time: d.time,
                agent: summary::agent(d).to_owned(),
                service: d.subject.clone(),
                what: key(d),
                reason: summary::reason(d).unwrap_or_default(),
            });
        }
    }

    fn finish(self) -> (Vec<Brief>, Vec<Incident>) {
        (self.decisions, self.incidents.finish().incidents)
    }
}

/// What a decision did, without the numbers that vary between policies.
fn key(e: &Event) -> String {
    let v = serde_json::to_value(e).unwrap_or_default();
    let d = &v["data"];
    let s = |k: &str| {
        d[k].as_str()
            .map_or_else(|| d[k].to_string(), str::to_owned)
    };
    let what = match e.event_type().kind() {
        "breaker" => format!("{} {} -> {}", s("scope"), s("target"), s("to")),
        "prediction" => format!("{} {}", s("signal"), s("status")),
        "route" => format!(
            "{} {}/{} hosts healthy",
            s("strategy"),
            s("healthy_hosts"),
            s("hosts")
        ),
        "rollback" => format!("{} {}", s("phase"), s("from_version")),
        "containment" => format!("{} root {}", s("action"), s("root_cause")),
        "incident" => format!("{} {}", s("phase"), s("severity")),
        other => other.to_owned(),
    };
    format!("{} {what}", e.event_type().kind())
}

/// How a decision fared under the other policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Same decision at the same time.
    Same,
    /// Made earlier.
    Earlier,
    /// Made later.
    Later,
    /// Not made at all.
    NotAtAll,
    /// Only the other policy made it.
    New,
}

impl Change {
    /// The name used in reports (as serialised).
    pub fn name(self) -> &'static str {
        match self {
            Change::Same => "same",
            Change::Earlier => "earlier",
            Change::Later => "later",
            Change::NotAtAll => "not_at_all",
            Change::New => "new",
        }
    }
}

/// One decision side by side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// How it changed.
    pub change: Change,
    /// Agent.
    pub agent: String,
    /// Service.
    pub service: String,
    /// What it did.
    pub what: String,
    /// Under the policy in force.
    pub base_time: Option<Timestamp>,
    /// Under the other policy.
    pub other_time: Option<Timestamp>,
    /// other − base, ms.
    pub shift_ms: Option<i64>,
    /// The reason given (the other policy's when it made one).
    pub reason: String,
}

/// An incident under both policies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IncidentChange {
    /// Under the policy in force.
    pub base: Option<Incident>,
    /// Under the other policy.
    pub other: Option<Incident>,
    /// Opening time shift, ms (other − base).
    pub opened_shift_ms: Option<i64>,
    /// Resolution time shift, ms.
    pub resolved_shift_ms: Option<i64>,
    /// Loss estimate, other − base.
    pub loss_change: Option<f64>,
}

/// The what-if comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WhatIf {
    /// Policy in force (hash).
    pub base_policy: String,
    /// The other policy (hash).
    pub other_policy: String,
    /// Counts per change, in [`Change`] order.
    pub counts: BTreeMap<String, u64>,
    /// Every decision that differs, in time order (unchanged ones are only counted).
    pub rows: Vec<Row>,
    /// Incidents side by side.
    pub incidents: Vec<IncidentChange>,
}

fn ms(a: Timestamp, b: Timestamp) -> i64 {
    (b.nanos() - a.nanos()) / 1_000_000
}

/// Compares the two runs.
pub fn compare(base: Run, other: Run, base_policy: String, other_policy: String) -> WhatIf {
    let (base_d, base_i) = base.finish();
    let (other_d, other_i) = other.finish();
    type Key = (String, String, String);
    let mut by_key: BTreeMap<Key, (Vec<&Brief>, Vec<&Brief>)> = BTreeMap::new();
    for b in &base_d {
        by_key
            .entry((b.agent.clone(), b.service.clone(), b.what.clone()))
            .or_default()
            .0
            .push(b);
    }
    for o in &other_d {
        by_key
            .entry((o.agent.clone(), o.service.clone(), o.what.clone()))
            .or_default()
            .1
            .push(o);
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows = Vec::new();
    for ((agent, service, what), (bs, os)) in &by_key {
        for i in 0..bs.len().max(os.len()) {
            let (b, o) = (bs.get(i), os.get(i));
            let change = match (b, o) {
                (Some(b), Some(o)) if b.time == o.time => Change::Same,
                (Some(b), Some(o)) if o.time < b.time => Change::Earlier,
                (Some(_), Some(_)) => Change::Later,
                (Some(_), None) => Change::NotAtAll,
                (None, _) => Change::New,
            };
            *counts.entry(change.name().to_owned()).or_default() += 1;
            if change == Change::Same {
                continue;
            }
            rows.push(Row {
                change,
                agent: agent.clone(),
                service: service.clone(),
                what: what.clone(),
                base_time: b.map(|b| b.time),
                other_time: o.map(|o| o.time),
                shift_ms: b.zip(o).map(|(b, o)| ms(b.time, o.time)),
                reason: o.or(b).map(|x| x.reason.clone()).unwrap_or_default(),
            });
        }
    }
    rows.sort_by_key(|r| r.base_time.or(r.other_time));
    let incidents = (0..base_i.len().max(other_i.len()))
        .map(|i| {
            let (b, o) = (base_i.get(i).cloned(), other_i.get(i).cloned());
            let both = b.as_ref().zip(o.as_ref());
            IncidentChange {
                opened_shift_ms: both.map(|(b, o)| ms(b.opened, o.opened)),
                resolved_shift_ms: both
                    .and_then(|(b, o)| b.resolved.zip(o.resolved))
                    .map(|(b, o)| ms(b, o)),
                loss_change: both.map(|(b, o)| o.loss_estimate - b.loss_estimate),
                base: b,
                other: o,
            }
        })
        .collect();
    WhatIf {
        base_policy,
        other_policy,
        counts,
        rows,
        incidents,
    }
}
