//! The hub agent's pure core: decisions in, incidents and coordination out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::HubConfig;
use super::coordinate::{Action, Desk, Say};
use super::incident::{impact, severity, Incident, ServiceInfo};
use crate::actors::guard::graph::Graph;
use crate::engine::{decode_state, encode_state, slot, Agent, Proposal};
use crate::events::decision::{
    BlockCause, BreakerDecision, BreakerState, ContainmentAction, ContainmentDecision,
    Coordination, EscalationTrigger, IncidentDecision, IncidentPhase, IncidentStatus, Prediction,
    PredictionStatus, RollbackDecision, RollbackPhase, Severity, TimelineEntry, Verdict,
};
use crate::events::observation::{Command, CommandAction, Scope};
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// Agent name in decision ids, sources and subjects.
pub const NAME: &str = "hub";

/// Everything the hub keeps (its snapshot).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HubState {
    clock: Option<Timestamp>,
    interval: Option<i64>,
    graph: Graph,
    /// Services by name.
    pub services: BTreeMap<String, ServiceInfo>,
    /// Incidents not yet resolved, by id.
    pub incidents: BTreeMap<String, Incident>,
    desk: Desk,
}

/// The hub agent.
pub struct HubAgent {
    config: Arc<HubConfig>,
    state: HubState,
}

/// What one decision means to the hub.
struct Reading {
    /// Signal key and whether it is unhealthy after this decision.
    signal: Option<(String, bool)>,
    /// Opens an incident when nothing related is open.
    significant: bool,
    services: BTreeSet<String>,
    root: Option<String>,
    escalation: Option<EscalationTrigger>,
    start: Option<(String, String)>,
    end: Option<(String, bool)>,
    summary: String,
}

impl Reading {
    fn new(service: &str, summary: String) -> Self {
        Self {
            signal: None,
            significant: false,
            services: BTreeSet::from([service.to_owned()]),
            root: None,
            escalation: None,
            start: None,
            end: None,
            summary,
        }
    }
}

fn breaker(service: &str, b: &BreakerDecision) -> Reading {
    let mut r = Reading::new(
        service,
        format!(
            "breaker {} {} -> {}",
            b.target,
            b.from.as_str(),
            b.to.as_str()
        ),
    );
    let scope = format!("{:?}", b.scope).to_lowercase();
    r.signal = Some((format!("breaker:{scope}:{}", b.target), b.to.is_tripped()));
    r.significant = matches!(b.to, BreakerState::Open | BreakerState::ForcedOpen);
    if b.scope == Scope::Service {
        if b.to.is_tripped() {
            r.start = Some((b.target.clone(), b.to.as_str().to_owned()));
        } else {
            r.end = Some((b.target.clone(), false));
        }
    }
    r
}

fn prediction(service: &str, p: &Prediction, high_risk: f64) -> Reading {
    let mut key = format!("prediction:{service}:{}", p.signal.as_str());
    for part in [&p.instance, &p.version].into_iter().flatten() {
        key.push(':');
        key.push_str(part);
    }
    let status = match p.status {
        PredictionStatus::Anomaly => "anomaly",
        PredictionStatus::BreachRisk => "breach risk",
        PredictionStatus::Clear => "clear",
    };
    let mut r = Reading::new(
        service,
        format!(
            "{} {status} (score {:.2}, risk {:.2})",
            p.signal.as_str(),
            p.score,
            p.risk
        ),
    );
    r.signal = Some((key, p.status != PredictionStatus::Clear));
    r.significant = p.status == PredictionStatus::BreachRisk && p.risk >= high_risk;
    r
}

/// `None` for phases the hub does not follow (analyses that pass nothing on).
fn rollback(service: &str, d: &RollbackDecision) -> Option<Reading> {
    let phase = format!("{:?}", d.phase).to_lowercase();
    let mut r = Reading::new(
        service,
        format!(
            "rollback {phase} {} -> {}",
            d.from_version,
            d.to_version.as_deref().unwrap_or("-")
        ),
    );
    let key = format!("rollback:{service}");
    match d.phase {
        RollbackPhase::Initiated => {
            r.signal = Some((key, true));
            r.significant = true;
            r.start = Some((service.to_owned(), "initiated".to_owned()));
        }
        RollbackPhase::Succeeded => {
            r.signal = Some((key, false));
            r.end = Some((service.to_owned(), true));
        }
        RollbackPhase::Failed | RollbackPhase::Aborted | RollbackPhase::Ineffective => {
            r.signal = Some((key, false));
            r.end = Some((service.to_owned(), false));
            if d.phase == RollbackPhase::Ineffective {
                r.escalation = Some(EscalationTrigger::RollbackIneffective);
            }
        }
        RollbackPhase::Blocked => {
            r.signal = Some((format!("blocked:{service}"), true));
            r.significant = true;
            r.escalation = Some(if d.blocked_by == Some(BlockCause::StormGuard) {
                EscalationTrigger::StormGuard
            } else {
                EscalationTrigger::RollbackBlocked
            });
        }
        RollbackPhase::Analysis if d.verdict == Some(Verdict::Pass) => {
            r.signal = Some((format!("blocked:{service}"), false));
            r.summary = format!("analysis of {} passes", d.from_version);
        }
        RollbackPhase::Step | RollbackPhase::ApprovalRequired => {}
        RollbackPhase::Analysis | RollbackPhase::Inconclusive => return None,
    }
    Some(r)
}

fn containment(c: &ContainmentDecision) -> Reading {
    let root = c.root_cause.as_str();
    let mut r = Reading::new(
        root,
        match c.lifted {
            Some(l) => format!("lift {} on {}", l.as_str(), c.edges.join(", ")),
            None => format!(
                "{}: root cause {root} (confidence {:.2}) on {}",
                c.action.as_str(),
                c.confidence,
                c.edges.join(", ")
            ),
        },
    );
    r.services.extend(c.affected.iter().cloned());
    let storm = c.action == ContainmentAction::RetryBudget
        || c.lifted == Some(ContainmentAction::RetryBudget);
    let key = if storm {
        format!("storm:{}", c.edges.join(","))
    } else {
        format!("containment:{root}")
    };
    let lifting = c.action == ContainmentAction::Lift;
    r.signal = Some((key, !lifting));
    r.significant = !lifting;
    if !storm {
        r.root = Some(root.to_owned());
        if lifting {
            r.end = Some((root.to_owned(), false));
        } else {
            r.start = Some((root.to_owned(), c.action.as_str().to_owned()));
        }
    }
    r
}

impl HubAgent {
    /// A hub with no incidents.
    pub fn new(config: Arc<HubConfig>) -> Self {
        Self {
            config,
            state: HubState::default(),
        }
    }

    /// The state (for tests and the node's status page).
    pub fn state(&self) -> &HubState {
        &self.state
    }

    fn decision(&self, i: &Incident, phase: IncidentPhase, reason: String) -> IncidentDecision {
        IncidentDecision {
            incident_id: i.id.clone(),
            phase,
            status: i.status,
            severity: i.severity,
            services: i.services.iter().cloned().collect(),
            root_cause: i.root_cause.clone(),
            impact_per_minute: i.impact,
            loss_estimate: i.loss,
            timeline: if matches!(phase, IncidentPhase::Opened | IncidentPhase::Resolved) {
                i.timeline.clone()
            } else {
                Vec::new()
            },
            coordination: None,
            escalation: None,
            acknowledged_by: i.acknowledged_by.clone(),
            reason,
        }
    }

    fn emit(&self, id: &str, phase: IncidentPhase, reason: String, out: &mut Vec<Proposal>) {
        let i = &self.state.incidents[id];
        out.push(Proposal::new(
            i.subject.clone(),
            Data::Incident(self.decision(i, phase, reason)),
        ));
    }

    /// The open incident `services` belong to: one that already follows the
    /// signal, else one involving a related service within the window.
    fn find(
        &self,
        key: Option<&str>,
        services: &BTreeSet<String>,
        now: Timestamp,
    ) -> Option<String> {
        if let Some(k) = key {
            if let Some(i) = self
                .state
                .incidents
                .values()
                .find(|i| i.signals.contains_key(k))
            {
                return Some(i.id.clone());
            }
        }
        let since = now
            .nanos()
            .saturating_sub((self.config.group_window_ms as i64).saturating_mul(1_000_000));
        let related = |i: &Incident| {
            services.iter().any(|s| {
                i.services.contains(s) || {
                    let radius = self.state.graph.dependents(s);
                    i.services
                        .iter()
                        .any(|t| radius.contains(t) || self.state.graph.dependents(t).contains(s))
                }
            })
        };
        self.state
            .incidents
            .values()
            .filter(|i| i.last.nanos() >= since)
            .find(|i| related(i))
            .map(|i| i.id.clone())
    }

    fn on_decision(&mut self, seq: Seq, record: &Event, r: Reading, out: &mut Vec<Proposal>) {
        let now = record.time;
        let key = r.signal.as_ref().map(|(k, _)| k.as_str());
        let id = match self.find(key, &r.services, now) {
            Some(id) => id,
            None if r.significant => {
                let id = format!("inc-{seq}");
                self.state
                    .incidents
                    .insert(id.clone(), Incident::new(id.clone(), &record.subject, now));
                id
            }
            None => {
                self.coordinate(&r, "", record, out);
                return;
            }
        };
        let kind = record
            .data
            .event_type()
            .name()
            .trim_start_matches("faultline.")
            .to_owned();
        let entry = TimelineEntry {
            time: now,
            decision_id: record.id.clone(),
            kind: kind.clone(),
            service: record.subject.clone(),
            summary: r.summary.clone(),
        };
        let info = &self.state.services;
        let i = self.state.incidents.get_mut(&id).expect("incident");
        let opened = i.timeline.is_empty() && i.dropped == 0;
        let grew = !r.services.is_subset(&i.services);
        i.services.extend(r.services.iter().cloned());
        let new_root = r.root.is_some() && r.root != i.root_cause;
        if new_root {
            i.root_cause = r.root.clone();
        }
        if let Some((k, unhealthy)) = &r.signal {
            i.signals.insert(k.clone(), *unhealthy);
        }
        i.last = now;
        i.record(entry);
        let value = impact(&i.services, info);
        i.account(now, value);
        let before = i.severity;
        i.severity = i
            .severity
            .max(severity(&self.config, &i.services, info, value));
        let back = i.status == IncidentStatus::Mitigated && i.unhealthy() > 0;
        if back {
            i.status = IncidentStatus::Open;
            i.resolve_at = None;
        }
        let (n, sev) = (i.services.len(), i.severity);
        if opened {
            let reason = format!(
                "opened on {kind} of {}: {}; {n} service(s), {:.2}/min at risk",
                record.subject, r.summary, value
            );
            self.emit(&id, IncidentPhase::Opened, reason, out);
        } else if grew || new_root || sev > before || back {
            let mut why = Vec::new();
            if back {
                why.push(format!("{} unhealthy again", key.unwrap_or("a signal")));
            }
            if grew {
                why.push(format!("now {n} services"));
            }
            if new_root {
                why.push(format!("root cause {}", r.root.as_deref().unwrap_or("-")));
            }
            if sev > before {
                why.push(format!("severity {} -> {}", before.as_str(), sev.as_str()));
            }
            let reason = format!(
                "{} ({kind} of {}: {})",
                why.join("; "),
                record.subject,
                r.summary
            );
            self.emit(&id, IncidentPhase::Updated, reason, out);
        }
        if let Some(t) = r.escalation {
            self.escalate(&id, t, &r.summary, out);
        }
        self.escalate_critical(&id, out);
        self.coordinate(&r, &id, record, out);
        self.settle(&id, now, out);
    }

    fn escalate(&mut self, id: &str, t: EscalationTrigger, why: &str, out: &mut Vec<Proposal>) {
        let i = self.state.incidents.get_mut(id).expect("incident");
        if !i.escalated.insert(t) {
            return;
        }
        let mut d = self.decision(
            &self.state.incidents[id],
            IncidentPhase::Escalated,
            format!("escalating: {why}"),
        );
        d.escalation = Some(t);
        out.push(Proposal::new(
            self.state.incidents[id].subject.clone(),
            Data::Incident(d),
        ));
    }

    fn escalate_critical(&mut self, id: &str, out: &mut Vec<Proposal>) {
        let i = &self.state.incidents[id];
        if i.severity == Severity::Critical {
            let why = format!(
                "severity critical: {} services, {:.2}/min at risk",
                i.services.len(),
                i.impact
            );
            self.escalate(id, EscalationTrigger::Critical, &why, out);
        }
    }

    /// Whether every service of the incident fails less than
    /// `healthy_error_rate` of its traffic (by the last closed interval).
    fn traffic_ok(&self, i: &Incident) -> bool {
        let limit = self.config.healthy_error_rate / 100.0;
        i.services
            .iter()
            .all(|s| self.state.services.get(s).is_none_or(|x| x.failing < limit))
    }

    /// Mitigated once no signal is unhealthy and the traffic of every
    /// involved service is healthy; resolution waits for the stability period.
    fn settle(&mut self, id: &str, now: Timestamp, out: &mut Vec<Proposal>) {
        let stability = self.config.stability_ms;
        let ok = self.traffic_ok(&self.state.incidents[id]);
        let i = self.state.incidents.get_mut(id).expect("incident");
        if i.status != IncidentStatus::Open || i.unhealthy() > 0 || !ok {
            return;
        }
        i.status = IncidentStatus::Mitigated;
        let at = now.plus_millis(stability);
        i.resolve_at = Some(at);
        let reason = format!("every signal healthy; resolving at {at} unless one comes back");
        self.emit(id, IncidentPhase::Mitigated, reason, out);
    }

    fn coordinate(&mut self, r: &Reading, incident: &str, record: &Event, out: &mut Vec<Proposal>) {
        let agent = record.source.trim_start_matches("faultline/").to_owned();
        let says = match (&r.start, &r.end) {
            (Some((service, action)), _) => {
                let a = Action {
                    agent,
                    decision_id: record.id.clone(),
                    action: action.clone(),
                    incident: incident.to_owned(),
                };
                self.state
                    .desk
                    .start(&self.config, service, a)
                    .into_iter()
                    .map(|s| (service.clone(), s))
                    .collect()
            }
            (None, Some((service, fixed))) => self
                .state
                .desk
                .end(&self.config, service, &agent, *fixed)
                .into_iter()
                .map(|s| (service.clone(), s))
                .collect(),
            _ => Vec::new(),
        };
        for (service, say) in says {
            self.announce(&service, say, out);
        }
    }

    fn announce(&self, service: &str, say: Say, out: &mut Vec<Proposal>) {
        let Some(i) = self.state.incidents.get(&say.action.incident) else {
            return;
        };
        let reason = format!(
            "{} {} {} ({}) on {service}{} [{} strategy]",
            say.verdict.as_str(),
            say.action.agent,
            say.action.action,
            say.action.decision_id,
            say.owner
                .as_deref()
                .map_or(String::new(), |o| format!(" while {o} acts on it")),
            self.config.strategy.as_str(),
        );
        let mut d = self.decision(i, IncidentPhase::Updated, reason);
        d.coordination = Some(Coordination {
            strategy: self.config.strategy,
            verdict: say.verdict,
            decision_id: say.action.decision_id,
            agent: say.action.agent,
            action: say.action.action,
            service: service.to_owned(),
            owner: say.owner,
        });
        out.push(Proposal::new(i.subject.clone(), Data::Incident(d)));
    }

    fn resolve(&mut self, id: &str, reason: String, out: &mut Vec<Proposal>) {
        let now = self.state.clock.unwrap_or(Timestamp::from_nanos(0));
        let i = self.state.incidents.get_mut(id).expect("incident");
        i.account(now, 0.0);
        i.status = IncidentStatus::Resolved;
        self.emit(id, IncidentPhase::Resolved, reason, out);
        self.state.incidents.remove(id);
    }

    fn fire_timers(&mut self, now: Timestamp, out: &mut Vec<Proposal>) {
        let due: Vec<(Timestamp, String)> = self
            .state
            .incidents
            .values()
            .filter_map(|i| {
                i.resolve_at
                    .filter(|t| *t <= now)
                    .map(|t| (t, i.id.clone()))
            })
            .collect();
        let mut due = due;
        due.sort();
        for (at, id) in due {
            let secs = self.config.stability_ms / 1000;
            self.state.clock = Some(at);
            self.resolve(
                &id,
                format!("every signal healthy for {secs} s: resolved"),
                out,
            );
        }
        self.state.clock = Some(now);
    }

    /// Closes the traffic interval ending at `end`: new failing fractions,
    /// loss accounted, and severity read again (impact may have grown).
    fn close(&mut self, end: Timestamp, out: &mut Vec<Proposal>) {
        for s in self.state.services.values_mut() {
            s.failing = if s.calls > 0 {
                s.failures as f64 / s.calls as f64
            } else {
                0.0
            };
            s.calls = 0;
            s.failures = 0;
        }
        let ids: Vec<String> = self.state.incidents.keys().cloned().collect();
        for id in ids {
            let info = &self.state.services;
            let i = self.state.incidents.get_mut(&id).expect("incident");
            let value = impact(&i.services, info);
            i.account(end, value);
            let before = i.severity;
            i.severity = i
                .severity
                .max(severity(&self.config, &i.services, info, value));
            let ok = self.traffic_ok(&self.state.incidents[&id]);
            let i = self.state.incidents.get_mut(&id).expect("incident");
            if i.status == IncidentStatus::Mitigated && !ok {
                i.status = IncidentStatus::Open;
                i.resolve_at = None;
                let reason = "traffic of an involved service is failing again".to_owned();
                self.emit(&id, IncidentPhase::Updated, reason, out);
            }
            let i = &self.state.incidents[&id];
            if i.severity > before {
                let reason = format!(
                    "severity {} -> {}: {:.2}/min at risk over {} service(s)",
                    before.as_str(),
                    i.severity.as_str(),
                    value,
                    i.services.len()
                );
                self.emit(&id, IncidentPhase::Updated, reason, out);
                self.escalate_critical(&id, out);
            }
            self.settle(&id, end, out);
        }
    }

    fn command(&mut self, subject: &str, c: &Command, out: &mut Vec<Proposal>) {
        let ids: Vec<String> = match &c.target {
            Some(t) => self
                .state
                .incidents
                .contains_key(t)
                .then(|| t.clone())
                .into_iter()
                .collect(),
            None => self
                .state
                .incidents
                .values()
                .filter(|i| i.services.contains(subject))
                .map(|i| i.id.clone())
                .collect(),
        };
        let by = c.by.clone().unwrap_or_else(|| "an operator".to_owned());
        let why = c
            .reason
            .as_deref()
            .map_or(String::new(), |r| format!(": {r}"));
        for id in ids {
            if c.action == CommandAction::Acknowledge {
                self.state
                    .incidents
                    .get_mut(&id)
                    .expect("incident")
                    .acknowledged_by = Some(by.clone());
                self.emit(
                    &id,
                    IncidentPhase::Acknowledged,
                    format!("acknowledged by {by}{why}"),
                    out,
                );
            } else {
                self.resolve(&id, format!("resolved by {by}{why}"), out);
            }
        }
    }
}

impl Agent for HubAgent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, seq: Seq, record: &Event, out: &mut Vec<Proposal>) {
        let now = self.state.clock.map_or(record.time, |c| c.max(record.time));
        let interval = self.config.interval_ms as i64;
        let index = now.nanos().div_euclid(1_000_000).div_euclid(interval);
        match self.state.interval {
            Some(open) if index > open => {
                self.close(Timestamp::from_millis((open + 1) * interval), out);
                self.state.interval = Some(index);
            }
            None => self.state.interval = Some(index),
            _ => {}
        }
        self.fire_timers(now, out);
        let subject = record.subject.as_str();
        let reading = match &record.data {
            Data::Request(r) => {
                if let Some(failed) = r.failed() {
                    let s = slot(&mut self.state.services, subject);
                    s.calls += 1;
                    s.failures += failed as u64;
                }
                if let Some(c) = r.caller.as_deref().filter(|c| *c != subject) {
                    self.state
                        .graph
                        .observe(c, subject, record.time, 1, 0, None);
                }
                None
            }
            Data::Window(w) => {
                let s = slot(&mut self.state.services, subject);
                s.calls += w.requests;
                s.failures += w.errors.min(w.requests);
                if let Some(c) = w.caller.as_deref().filter(|c| *c != subject) {
                    self.state
                        .graph
                        .observe(c, subject, record.time, w.requests, 0, None);
                }
                None
            }
            Data::Topology(t) => {
                self.state.graph.declare(subject, &t.dependencies);
                let s = slot(&mut self.state.services, subject);
                s.tier = t.tier;
                s.revenue_per_minute = t.revenue_per_minute.unwrap_or(0.0);
                None
            }
            Data::Command(c)
                if matches!(
                    c.action,
                    CommandAction::Acknowledge | CommandAction::Resolve
                ) =>
            {
                self.command(subject, c, out);
                None
            }
            Data::Breaker(b) => Some(breaker(subject, b)),
            Data::Prediction(p) => Some(prediction(subject, p, self.config.high_risk)),
            Data::Rollback(d) => rollback(subject, d),
            Data::Containment(c) => Some(containment(c)),
            _ => None,
        };
        if let Some(r) = reading {
            self.on_decision(seq, record, r, out);
        }
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        self.state
            .incidents
            .values()
            .filter_map(|i| i.resolve_at)
            .min()
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_state(&self.state, NAME)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = decode_state(bytes, NAME)?;
        Ok(())
    }

    fn view(&self, service: Option<&str>) -> Option<serde_json::Value> {
        let incidents: Vec<&Incident> = (self.state.incidents.values())
            .filter(|i| service.is_none_or(|s| i.services.contains(s) || i.subject == s))
            .collect();
        if let Some(s) = service {
            if incidents.is_empty() && !self.state.services.contains_key(s) {
                return None;
            }
        }
        Some(serde_json::json!({ "incidents": incidents }))
    }
}
