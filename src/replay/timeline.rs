//! What happened in the range, in order: every decision with its reason and
//! the numbers behind it, deploys, and the key signal changes; the incidents
//! as the hub saw them; root cause and blast radius as the guard saw them;
//! and the dependency subgraph involved.
//!
//! A [`Collector`] is fed the selected records in log order and keeps only
//! what the report shows: entries up to [`MAX_ENTRIES`] (the rest counted),
//! one summary per incident, the guard's findings, edge counts and bounded
//! signal series.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::signals::{self, Point, Signals};
use crate::events::decision::{IncidentPhase, Severity};
use crate::events::{summary, Data, Event, Timestamp};
use crate::log::Seq;

/// Timeline entries kept; later ones are counted.
pub const MAX_ENTRIES: usize = 20_000;

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// Event time.
    pub time: Timestamp,
    /// Log sequence (of the cause, for a signal change the bucket's first record is not tracked: 0).
    pub seq: Seq,
    /// `decision`, `deploy` or `signal`.
    pub kind: &'static str,
    /// Deciding agent; the publisher's `source` for a deploy; empty for a signal.
    pub agent: String,
    /// The service it is about.
    pub service: String,
    /// Decision type (`breaker`, `incident`, ...), deploy phase, or signal name.
    pub what_kind: String,
    /// What changed.
    pub what: String,
    /// Why (a decision's reason).
    pub reason: String,
    /// The numbers behind it.
    pub numbers: Vec<(String, f64)>,
    /// Decision id (empty for other entries).
    pub id: String,
}

/// One incident as the hub reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// First decision.
    pub opened: Timestamp,
    /// First escalation.
    pub escalated: Option<Timestamp>,
    /// Last mitigation.
    pub mitigated: Option<Timestamp>,
    /// Resolution.
    pub resolved: Option<Timestamp>,
    /// Highest severity.
    pub severity: Severity,
    /// Every service involved.
    pub services: Vec<String>,
    /// The last root cause named.
    pub root_cause: Option<String>,
    /// Highest estimated impact per minute.
    pub impact_per_minute: f64,
    /// Highest loss estimate.
    pub loss_estimate: f64,
    /// Hub decisions about it.
    pub decisions: u64,
}

/// A containment decision: root cause and blast radius as the guard saw them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// When.
    pub time: Timestamp,
    /// Decision id.
    pub id: String,
    /// The action (isolate, shed, ...).
    pub action: String,
    /// Root cause.
    pub root_cause: String,
    /// Confidence 0–1.
    pub confidence: f64,
    /// Ranked candidates (service, score).
    pub candidates: Vec<(String, f64)>,
    /// Blast radius: services affected.
    pub affected: Vec<String>,
    /// Edges acted on.
    pub edges: Vec<String>,
    /// Why.
    pub reason: String,
}

/// A caller → callee edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// Caller.
    pub caller: String,
    /// Callee.
    pub callee: String,
    /// Declared in a topology record.
    pub declared: bool,
    /// Calls seen in the range.
    pub calls: u64,
}

/// Everything the timeline part of a report holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// Decisions, deploys and signal changes in time order.
    pub entries: Vec<Entry>,
    /// Entries not kept.
    pub omitted: u64,
    /// Incidents in range.
    pub incidents: Vec<Incident>,
    /// The guard's findings in range.
    pub findings: Vec<Finding>,
    /// The dependency subgraph involved.
    pub edges: Vec<Edge>,
    /// Signal series per service.
    pub signals: BTreeMap<String, Vec<Point>>,
    /// Bucket width of the series.
    pub bucket_ms: i64,
}

/// Builds a [`Timeline`] from the selected records.
#[derive(Default)]
pub struct Collector {
    entries: Vec<Entry>,
    omitted: u64,
    incidents: BTreeMap<String, Incident>,
    findings: Vec<Finding>,
    edges: BTreeMap<(String, String), (bool, u64)>,
    signals: Signals,
}

impl Collector {
    /// Empty.
    pub fn new() -> Self {
        Self {
            signals: Signals::new(),
            ..Self::default()
        }
    }

    /// Takes a selected record.
    pub fn observe(&mut self, seq: Seq, e: &Event) {
        match &e.data {
            Data::Request(r) => {
                if let Some(c) = &r.caller {
                    self.edge(c, &e.subject, false, 1);
                }
                self.signals.observe(e);
            }
            Data::Window(w) => {
                if let Some(c) = &w.caller {
                    self.edge(c, &e.subject, false, w.requests);
                }
                self.signals.observe(e);
            }
            Data::Topology(t) => {
                for d in &t.dependencies {
                    self.edge(&e.subject, &d.callee, true, 0);
                }
            }
            Data::Deploy(d) => {
                let what = match &d.previous_version {
                    Some(p) => format!("{p} -> {}", d.version),
                    None => d.version.clone(),
                };
                self.push(Entry {
                    time: e.time,
                    seq,
                    kind: "deploy",
                    agent: e.source.clone(),
                    service: e.subject.clone(),
                    what_kind: format!("{:?}", d.phase).to_lowercase(),
                    what,
                    reason: String::new(),
                    numbers: Vec::new(),
                    id: e.id.clone(),
                });
            }
            _ if e.event_type().is_decision() => self.decision(seq, e),
            _ => {}
        }
    }

    fn edge(&mut self, caller: &str, callee: &str, declared: bool, calls: u64) {
        let v = self
            .edges
            .entry((caller.to_owned(), callee.to_owned()))
            .or_default();
        v.0 |= declared;
        v.1 += calls;
    }

    fn push(&mut self, entry: Entry) {
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(entry);
        } else {
            self.omitted += 1;
        }
    }

    fn decision(&mut self, seq: Seq, e: &Event) {
        let cause = e.causeseq.unwrap_or(seq);
        match &e.data {
            Data::Incident(d) => {
                let i = self
                    .incidents
                    .entry(d.incident_id.clone())
                    .or_insert_with(|| Incident {
                        id: d.incident_id.clone(),
                        opened: e.time,
                        escalated: None,
                        mitigated: None,
                        resolved: None,
                        severity: d.severity,
                        services: Vec::new(),
                        root_cause: None,
                        impact_per_minute: 0.0,
                        loss_estimate: 0.0,
                        decisions: 0,
                    });
                i.decisions += 1;
                i.severity = i.severity.max(d.severity);
                let mut services: BTreeSet<String> = i.services.drain(..).collect();
                services.extend(d.services.iter().cloned());
                i.services = services.into_iter().collect();
                if d.root_cause.is_some() {
                    i.root_cause.clone_from(&d.root_cause);
                }
                i.impact_per_minute = i.impact_per_minute.max(d.impact_per_minute);
                i.loss_estimate = i.loss_estimate.max(d.loss_estimate);
                match d.phase {
                    IncidentPhase::Escalated => {
                        i.escalated.get_or_insert(e.time);
                    }
                    IncidentPhase::Mitigated => i.mitigated = Some(e.time),
                    IncidentPhase::Resolved => i.resolved = Some(e.time),
                    _ => {}
                }
            }
            Data::Containment(d) => self.findings.push(Finding {
                time: e.time,
                id: e.id.clone(),
                action: serde_json::to_value(d.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                root_cause: d.root_cause.clone(),
                confidence: d.confidence,
                candidates: d
                    .candidates
                    .iter()
                    .map(|c| (c.service.clone(), c.score))
                    .collect(),
                affected: d.affected.clone(),
                edges: d.edges.clone(),
                reason: d.reason.clone(),
            }),
            _ => {}
        }
        self.push(Entry {
            time: e.time,
            seq: cause,
            kind: "decision",
            agent: summary::agent(e).to_owned(),
            service: e.subject.clone(),
            what_kind: e.event_type().kind().to_owned(),
            what: summary::what(e),
            reason: summary::reason(e).unwrap_or_default(),
            numbers: summary::numbers(e),
            id: e.id.clone(),
        });
    }

    /// The timeline: entries and signal changes merged in time order, and the
    /// subgraph around the services the incidents and the guard involved
    /// (every edge seen when nothing was involved).
    pub fn finish(mut self) -> Timeline {
        let series = self.signals.series();
        for c in signals::changes(&series) {
            self.push(Entry {
                time: c.time,
                seq: 0,
                kind: "signal",
                agent: String::new(),
                service: c.service.clone(),
                what_kind: c.signal.to_owned(),
                what: c.summary.clone(),
                reason: String::new(),
                numbers: vec![("before".into(), c.before), ("after".into(), c.after)],
                id: String::new(),
            });
        }
        // Stable: decisions keep log order within one instant.
        self.entries.sort_by_key(|e| e.time);
        let mut involved: BTreeSet<&str> = BTreeSet::new();
        for i in self.incidents.values() {
            involved.extend(i.services.iter().map(String::as_str));
            involved.extend(i.root_cause.as_deref());
        }
        for f in &self.findings {
            involved.insert(&f.root_cause);
            involved.extend(f.affected.iter().map(String::as_str));
        }
        let edges = self
            .edges
            .iter()
            .filter(|((a, b), _)| {
                involved.is_empty()
                    || involved.contains(a.as_str())
                    || involved.contains(b.as_str())
            })
            .map(|((a, b), (declared, calls))| Edge {
                caller: a.clone(),
                callee: b.clone(),
                declared: *declared,
                calls: *calls,
            })
            .collect();
        let mut incidents: Vec<Incident> = self.incidents.into_values().collect();
        incidents.sort_by(|a, b| (a.opened, &a.id).cmp(&(b.opened, &b.id)));
        Timeline {
            entries: self.entries,
            omitted: self.omitted,
            incidents,
            findings: self.findings,
            edges,
            bucket_ms: self.signals.width_ms(),
            signals: series,
        }
    }
}
