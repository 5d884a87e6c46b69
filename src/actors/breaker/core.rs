//! The breaker agent's pure core: which circuits exist, what feeds them, and
//! what their changes look like as `faultline.breaker` decisions.
//!
//! Per-service scopes (service, edge, instance) are partitionable by the
//! callee; the system scope ([`super::system`]) is a cross-service fold over
//! the service breakers' decisions. Both live in this one agent on a node; the
//! split is kept in the types so a cluster can run them apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::circuit::{Change, Circuit};
use super::classify;
use super::config::{BreakerConfig, Settings};
use super::system::SystemView;
use super::window::Tally;
use crate::engine::{decode_state, encode_state, in_slot, Agent, Proposal};
use crate::events::decision::{BreakerDecision, BreakerState, BreakerTrigger};
use crate::events::observation::{Command, Scope};
use crate::events::subject::SYSTEM_SUBJECT;
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// Agent name in decision ids, sources and subjects.
pub const NAME: &str = "breaker";

type Deadline = (Timestamp, Scope, String, String);

/// Caller and instance of an observation, when known.
type Origin<'a> = (Option<&'a str>, Option<&'a str>);

/// Everything the breaker agent remembers; what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakerMemory {
    clock: Option<Timestamp>,
    services: BTreeMap<String, Circuit>,
    /// callee -> caller -> circuit
    edges: BTreeMap<String, BTreeMap<String, Circuit>>,
    /// service -> instance -> circuit
    instances: BTreeMap<String, BTreeMap<String, Circuit>>,
    deadlines: BTreeSet<Deadline>,
    system: SystemView,
    late: u64,
    /// service -> the callees it declares critical (`faultline.topology`).
    #[serde(default)]
    depends: BTreeMap<String, BTreeSet<String>>,
    /// Every service some topology has declared as a dependency.
    #[serde(default)]
    called: BTreeSet<String>,
    /// The union of `depends`' sets, rebuilt on each topology (rare) so
    /// that every record need not scan every service's dependencies.
    #[serde(default)]
    needed_by_callers: BTreeSet<String>,
}

/// The breaker agent.
pub struct BreakerAgent {
    config: Arc<BreakerConfig>,
    state: BreakerMemory,
}

impl BreakerAgent {
    /// A breaker agent with no circuits yet.
    pub fn new(config: Arc<BreakerConfig>) -> Self {
        Self {
            config,
            state: BreakerMemory::default(),
        }
    }

    /// Records too old for their time window so far.
    pub fn late_records(&self) -> u64 {
        self.state.late
    }

    /// State of a circuit, if it exists (`sub` = caller for edges, instance for instances).
    pub fn circuit_state(&self, scope: Scope, service: &str, sub: &str) -> Option<BreakerState> {
        let st = &self.state;
        match scope {
            Scope::Service => st.services.get(service).map(Circuit::state),
            Scope::Edge => st
                .edges
                .get(service)
                .and_then(|m| m.get(sub))
                .map(Circuit::state),
            Scope::Instance => st
                .instances
                .get(service)
                .and_then(|m| m.get(sub))
                .map(Circuit::state),
            Scope::System => None,
        }
    }
}

/// Runs `f` on the circuit of `scope` for `service` (and `sub`), made from
/// `s` first if there is none: every request comes here once per scope, so
/// each map is searched once.
fn on_circuit<R>(
    st: &mut BreakerMemory,
    scope: Scope,
    service: &str,
    sub: &str,
    s: &Settings,
    f: impl FnOnce(&mut Circuit) -> R,
) -> R {
    let make = || Circuit::new(s);
    match scope {
        Scope::Service | Scope::System => in_slot(&mut st.services, service, make, f),
        Scope::Edge => in_slot(&mut st.edges, service, BTreeMap::new, |m| {
            in_slot(m, sub, make, f)
        }),
        Scope::Instance => in_slot(&mut st.instances, service, BTreeMap::new, |m| {
            in_slot(m, sub, make, f)
        }),
    }
}

fn target(scope: Scope, service: &str, sub: &str) -> String {
    match scope {
        Scope::Service => service.to_owned(),
        Scope::Edge => format!("{sub}->{service}"),
        Scope::Instance => format!("{service}/{sub}"),
        Scope::System => SYSTEM_SUBJECT.to_owned(),
    }
}

impl BreakerAgent {
    /// Runs `f` on a circuit, keeping the deadline index in step, and turns a
    /// change into a proposal.
    fn with_circuit(
        &mut self,
        scope: Scope,
        service: &str,
        sub: &str,
        out: &mut Vec<Proposal>,
        f: impl FnOnce(&mut Circuit, &Settings) -> Option<Change>,
    ) {
        let s = if self.needed(scope, service, sub) {
            self.config.critical_settings(service)
        } else {
            self.config.settings(service)
        };
        let (before, change, after) = on_circuit(&mut self.state, scope, service, sub, s, |c| {
            let before = c.deadline();
            let change = f(c, s);
            (before, change, c.deadline())
        });
        if before != after {
            if let Some(d) = before {
                self.state
                    .deadlines
                    .remove(&(d, scope, service.to_owned(), sub.to_owned()));
            }
            if let Some(d) = after {
                self.state
                    .deadlines
                    .insert((d, scope, service.to_owned(), sub.to_owned()));
            }
        }
        if let Some(ch) = change {
            out.push(proposal(
                scope,
                service,
                &target(scope, service, sub),
                &ch,
                s,
            ));
        }
    }

    fn fire_timers(&mut self, now: Timestamp, out: &mut Vec<Proposal>) {
        while let Some(entry) = self.state.deadlines.first().cloned().filter(|d| d.0 <= now) {
            let (due, scope, service, sub) = entry.clone();
            self.with_circuit(scope, &service, &sub, out, |c, s| c.on_timer(due, s));
            if self.state.deadlines.first() == Some(&entry) {
                // A timer that did not move its deadline would spin; drop it.
                self.state.deadlines.remove(&entry);
            }
        }
    }

    fn outcomes(
        &mut self,
        record: &Event,
        (caller, instance): Origin<'_>,
        o: Tally,
        interval_ms: u64,
        out: &mut Vec<Proposal>,
    ) {
        let (subject, at) = (record.subject.as_str(), record.time);
        let now = self.state.clock.unwrap_or(at);
        let scopes = [
            (Scope::Service, Some("")),
            (Scope::Edge, caller),
            (Scope::Instance, instance),
        ];
        let blamed = self.tripped_dependency(subject).is_some();
        for (scope, sub) in scopes {
            let Some(sub) = sub else { continue };
            if !self.config.has_scope(scope) {
                continue;
            }
            // Failures under a tripped critical dependency are the
            // dependency's: its own breaker already fails those calls fast,
            // and opening this one too would refuse the requests that do not
            // need it and keep the two out of step (each half-open probe
            // failing on the other). The calls still count, as successes.
            let o = if blamed && scope == Scope::Service {
                Tally {
                    calls: o.calls,
                    failed: 0,
                    slow: 0,
                }
            } else {
                o
            };
            let mut late = false;
            self.with_circuit(scope, subject, sub, out, |c, s| {
                let (in_window, change) = c.record(o, at, interval_ms, now, s);
                late = !in_window;
                change
            });
            if late {
                self.state.late += 1;
            }
        }
    }

    /// Whether the circuit guards calls their callers cannot do without, so
    /// that `critical_failure_rate_threshold` applies. Opening a breaker
    /// fails every call through it: for an optional dependency that is the
    /// graceful degradation breakers exist for, but for one its callers
    /// need it turns a partial failure into a total one (a service failing
    /// 60 % of calls under overload or a bad release serves nobody once
    /// open). Such a breaker opens only when the service is as good as
    /// down, when failing fast costs nothing; overload below that is the
    /// client's adaptive throttling's to shed. Needed, by the topologies
    /// published: a service some caller declares critical, or an entry (a
    /// service with a topology that no topology calls: its callers are
    /// users); an edge its caller declares critical. Instances never: the
    /// others serve while one is out.
    fn needed(&self, scope: Scope, service: &str, sub: &str) -> bool {
        let st = &self.state;
        match scope {
            Scope::Service => {
                st.needed_by_callers.contains(service)
                    || (st.depends.contains_key(service) && !st.called.contains(service))
            }
            Scope::Edge => st.depends.get(sub).is_some_and(|d| d.contains(service)),
            Scope::Instance | Scope::System => false,
        }
    }

    /// A service `service` depends on, directly or not, through edges
    /// declared critical, whose service breaker is tripped.
    fn tripped_dependency(&self, service: &str) -> Option<&str> {
        if self.state.depends.is_empty()
            || !self.state.services.values().any(|c| c.state().is_tripped())
        {
            return None;
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&str> = vec![service];
        while let Some(s) = todo.pop() {
            for d in self.state.depends.get(s).into_iter().flatten() {
                if !seen.insert(d.as_str()) {
                    continue;
                }
                if self
                    .state
                    .services
                    .get(d)
                    .is_some_and(|c| c.state().is_tripped())
                {
                    return Some(d);
                }
                todo.push(d);
            }
        }
        None
    }

    fn command(&mut self, subject: &str, cmd: &Command, out: &mut Vec<Proposal>) {
        let now = self.state.clock.unwrap_or_default();
        let note = match (&cmd.by, &cmd.reason) {
            (Some(by), Some(r)) => format!("by {by}: {r}"),
            (Some(by), None) => format!("by {by}"),
            (None, Some(r)) => r.clone(),
            (None, None) => String::new(),
        };
        let scope = cmd.scope.unwrap_or(Scope::Service);
        if !self.config.has_scope(scope) {
            // No breakers are kept in this scope: a decision would make
            // enforcers honour a breaker that does not exist.
            return;
        }
        let target = cmd.target.as_deref();
        let (service, sub) = match scope {
            Scope::Service => (target.unwrap_or(subject), ""),
            Scope::Edge => match target.and_then(|t| t.split_once("->")) {
                Some((caller, callee)) => (callee, caller),
                None => return,
            },
            Scope::Instance => match target.and_then(|t| t.split_once('/')) {
                Some((svc, inst)) => (svc, inst),
                None => return,
            },
            Scope::System => {
                let s = &self.config.system;
                if let Some(ch) = self.state.system.command(cmd.action, s, note) {
                    out.push(system_proposal(&ch));
                }
                return;
            }
        };
        let (service, sub) = (service.to_owned(), sub.to_owned());
        self.with_circuit(scope, &service, &sub, out, |c, s| {
            c.command(cmd.action, now, s, note)
        });
    }

    fn know(&mut self, service: &str, out: &mut Vec<Proposal>) {
        if self.config.has_scope(Scope::System) {
            if let Some(ch) = self.state.system.know(service, &self.config.system) {
                out.push(system_proposal(&ch));
            }
        }
    }
}

impl Agent for BreakerAgent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, _seq: Seq, record: &Event, out: &mut Vec<Proposal>) {
        let now = self.state.clock.map_or(record.time, |c| c.max(record.time));
        self.state.clock = Some(now);
        self.fire_timers(now, out);
        match &record.data {
            Data::Request(r) => {
                let s = self.config.settings(&record.subject);
                if let Some(o) = classify::request(r, s) {
                    self.outcomes(
                        record,
                        (r.caller.as_deref(), r.instance.as_deref()),
                        o,
                        0,
                        out,
                    );
                }
                self.know(&record.subject, out);
            }
            Data::Window(w) => {
                let o = classify::window(w);
                self.outcomes(
                    record,
                    (w.caller.as_deref(), w.instance.as_deref()),
                    o,
                    w.interval_ms,
                    out,
                );
                self.know(&record.subject, out);
            }
            Data::Topology(t) => {
                let critical = t
                    .dependencies
                    .iter()
                    .filter(|d| d.critical)
                    .map(|d| d.callee.clone())
                    .collect();
                self.state.depends.insert(record.subject.clone(), critical);
                self.state
                    .called
                    .extend(t.dependencies.iter().map(|d| d.callee.clone()));
                self.state.needed_by_callers =
                    self.state.depends.values().flatten().cloned().collect();
                self.know(&record.subject, out);
            }
            Data::Command(c) => self.command(&record.subject, c, out),
            Data::Breaker(d) if self.config.has_scope(Scope::System) => {
                if let Some(ch) = self.state.system.observe(d, &self.config.system) {
                    out.push(system_proposal(&ch));
                }
            }
            _ => {}
        }
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        self.state.deadlines.first().map(|d| d.0)
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_state(&self.state, NAME)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = decode_state(bytes, NAME)?;
        Ok(())
    }

    fn view(&self, service: Option<&str>) -> Option<serde_json::Value> {
        let Some(service) = service else {
            let open: Vec<&String> = (self.state.services.iter())
                .filter(|(_, c)| c.state() != BreakerState::Closed)
                .map(|(s, _)| s)
                .collect();
            return Some(serde_json::json!({
                "services": self.state.services.keys().collect::<Vec<_>>(),
                "not_closed": open,
            }));
        };
        let scoped = |m: &BTreeMap<String, BTreeMap<String, Circuit>>| {
            m.get(service).map(|inner| {
                (inner.iter())
                    .map(|(k, c)| (k.clone(), c.view()))
                    .collect::<serde_json::Map<_, _>>()
            })
        };
        let (edges, instances) = (scoped(&self.state.edges), scoped(&self.state.instances));
        let own = self.state.services.get(service);
        if own.is_none() && edges.is_none() && instances.is_none() {
            return None;
        }
        Some(serde_json::json!({
            "service": own.map(Circuit::view),
            "edges_from_callers": edges.unwrap_or_default(),
            "instances": instances.unwrap_or_default(),
        }))
    }
}

fn system_proposal(ch: &Change) -> Proposal {
    let reason = match ch.trigger {
        BreakerTrigger::Command => {
            format!("system breaker {} by command {}", ch.to.as_str(), ch.note)
                .trim_end()
                .to_owned()
        }
        _ if ch.to == BreakerState::Open => format!(
            "{} of {} services tripped ({}%) >= threshold {}%: {}",
            ch.tally.failed,
            ch.tally.calls,
            pct(ch.failure_rate.unwrap_or(0.0)),
            pct(ch.threshold),
            ch.note
        ),
        _ => format!(
            "{} of {} services tripped ({}%), below threshold {}%",
            ch.tally.failed,
            ch.tally.calls,
            pct(ch.failure_rate.unwrap_or(0.0)),
            pct(ch.threshold)
        ),
    };
    Proposal::new(
        SYSTEM_SUBJECT,
        Data::Breaker(decision(Scope::System, SYSTEM_SUBJECT, ch, reason)),
    )
}

fn proposal(scope: Scope, service: &str, target: &str, ch: &Change, s: &Settings) -> Proposal {
    Proposal::new(
        service,
        Data::Breaker(decision(scope, target, ch, reason(ch, s))),
    )
}

fn decision(scope: Scope, target: &str, ch: &Change, reason: String) -> BreakerDecision {
    BreakerDecision {
        scope,
        target: target.to_owned(),
        from: ch.from,
        to: ch.to,
        trigger: ch.trigger,
        failure_rate: ch.failure_rate,
        slow_call_rate: ch.slow_call_rate,
        calls: ch.tally.calls,
        failed: ch.tally.failed,
        slow: ch.tally.slow,
        threshold: ch.threshold,
        permitted_calls: ch.permitted_calls,
        open_until: ch.open_until,
        reason,
    }
}

/// A percentage for humans: at most two decimals, no trailing zeros.
fn pct(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn reason(ch: &Change, s: &Settings) -> String {
    let t = ch.tally;
    let fr = pct(ch.failure_rate.unwrap_or(0.0));
    let sr = pct(ch.slow_call_rate.unwrap_or(0.0));
    let cause = match ch.trigger {
        BreakerTrigger::FailureRate => format!("failure rate {fr}% >= threshold {}% over {} calls", pct(ch.threshold), t.calls),
        BreakerTrigger::SlowCallRate => format!(
            "slow-call rate {sr}% (calls >= {} ms) >= threshold {}% over {} calls",
            s.slow_call_duration_ms, pct(ch.threshold), t.calls
        ),
        BreakerTrigger::ErrorCount => format!("{} failures in the window >= error-count threshold {}", t.failed, ch.threshold),
        BreakerTrigger::ConsecutiveFailures => format!("{} consecutive failures", ch.threshold),
        BreakerTrigger::ProbesHealthy => format!(
            "probe calls healthy: failure rate {fr}% < {}%, slow-call rate {sr}% < {}% over {} calls",
            pct(ch.threshold), pct(s.slow_call_rate_threshold), t.calls
        ),
        BreakerTrigger::OpenWaitElapsed => format!("open wait elapsed; allowing {} probe calls", ch.permitted_calls.unwrap_or(0)),
        BreakerTrigger::HalfOpenTimeout => format!(
            "no verdict within the half-open limit of {} ms ({} of {} probe calls seen)",
            s.max_wait_half_open_ms.unwrap_or(0), t.calls, s.permitted_half_open
        ),
        BreakerTrigger::Command => {
            let verb = match ch.to {
                BreakerState::ForcedOpen => "forced open",
                BreakerState::Closed => "closed",
                BreakerState::Disabled => "disabled",
                BreakerState::MetricsOnly => "set to metrics only",
                _ => "changed",
            };
            return if ch.note.is_empty() { format!("{verb} by command") } else { format!("{verb} by command {}", ch.note) };
        }
        BreakerTrigger::OpenServices => String::new(),
    };
    match (ch.from, ch.to) {
        (BreakerState::MetricsOnly, BreakerState::MetricsOnly) => {
            format!("metrics only, not tripping: {cause}")
        }
        (_, BreakerState::Open) => match ch.open_until {
            Some(until) => format!("{cause}; open until {until}"),
            None => cause,
        },
        _ => cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::observation::{Dependency, Topology, Window};

    fn record(t_s: i64, subject: &str, data: Data) -> Event {
        Event {
            id: format!("{subject}-{t_s}"),
            source: "test".into(),
            subject: subject.into(),
            time: Timestamp::from_millis(t_s * 1000),
            datacontenttype: None,
            causeseq: None,
            causeid: None,
            data,
        }
    }

    fn failing(t_s: i64, subject: &str) -> Event {
        failing_at(t_s, subject, 100)
    }

    /// 100 calls in a second, `errors` of them failed.
    fn failing_at(t_s: i64, subject: &str, errors: u64) -> Event {
        let w = Window {
            interval_ms: 1000,
            requests: 100,
            errors,
            ..Window::default()
        };
        record(t_s, subject, Data::Window(w))
    }

    fn topology(t_s: i64, service: &str, callees: &[(&str, bool)]) -> Event {
        let t = Topology {
            dependencies: callees
                .iter()
                .map(|(c, critical)| Dependency {
                    callee: (*c).into(),
                    critical: *critical,
                })
                .collect(),
            ..Topology::default()
        };
        record(t_s, service, Data::Topology(t))
    }

    fn opened(out: &[Proposal]) -> Vec<String> {
        out.iter()
            .filter_map(|p| match &p.data {
                Data::Breaker(d) if d.to == BreakerState::Open => Some(d.target.clone()),
                _ => None,
            })
            .collect()
    }

    fn run(declared: bool) -> Vec<String> {
        let mut b = BreakerAgent::new(Arc::new(BreakerConfig::default()));
        let mut out = Vec::new();
        if declared {
            b.apply(1, &topology(0, "web", &[("db", true)]), &mut out);
        }
        b.apply(2, &failing(1, "db"), &mut out);
        b.apply(3, &failing(1, "web"), &mut out);
        opened(&out)
    }

    #[test]
    fn a_needed_service_opens_only_when_it_is_as_good_as_down() {
        let mut b = BreakerAgent::new(Arc::new(BreakerConfig::default()));
        let mut out = Vec::new();
        b.apply(
            1,
            &topology(0, "web", &[("db", true), ("ads", false)]),
            &mut out,
        );
        // 80 % failing: past the 50 % threshold, below the critical 95 %.
        for (seq, svc) in [(2, "db"), (3, "ads"), (4, "web"), (5, "batch")] {
            b.apply(seq, &failing_at(1, svc, 80), &mut out);
        }
        // db is critical to web; web is an entry (its callers are users);
        // ads is optional to web; batch has no topology (nothing known).
        assert_eq!(opened(&out), ["ads", "batch"]);
        let reason = |out: &[Proposal], t: &str| {
            out.iter().find_map(|p| match &p.data {
                Data::Breaker(d) if d.target == t => Some(d.reason.clone()),
                _ => None,
            })
        };
        assert!(reason(&out, "ads").unwrap().contains("threshold 50%"));
        for t in 2..6 {
            b.apply(4 + t as u64, &failing_at(t, "db", 100), &mut out);
        }
        assert_eq!(opened(&out), ["ads", "batch", "db"], "down: db opens too");
        assert!(reason(&out, "db").unwrap().contains("threshold 95%"));
    }

    #[test]
    fn a_service_does_not_trip_on_a_tripped_critical_dependency() {
        assert_eq!(run(false), ["db", "web"], "undeclared: both trip");
        assert_eq!(run(true), ["db"], "web's failures are db's");
    }
}
