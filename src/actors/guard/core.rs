//! The guard agent's pure core: per-service points, anomalies, ranking,
//! containment episodes and retry storms.
//!
//! Time is cut into intervals of event time. Traffic accumulates into the
//! open interval; when a record moves the clock past its end, every service's
//! point is closed and judged against its baseline, retry amplification is
//! measured on every edge, the anomalous services are ranked when there are
//! enough of them, and containment episodes are started, raised or lifted.
//! Between closes the guard only adds numbers, which keeps the per-event
//! cost flat however large the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, Change, Point};
use super::config::GuardConfig;
use super::graph::Graph;
use super::rank::{rank, Ranking, Suspect};
use super::storm::{Storm, StormStep};
use crate::engine::{decode_state, encode_state, slot, Agent, Proposal};
use crate::events::decision::{
    Candidate, ContainmentAction, ContainmentDecision, PredictionStatus, SignalKind,
};
use crate::events::observation::{Scope, Tier};
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// Agent name in decision ids, sources and subjects.
pub const NAME: &str = "guard";

/// What the guard knows of one service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Declared tier.
    pub tier: Option<Tier>,
    /// Declared revenue per minute.
    pub revenue_per_minute: f64,
    base: Baseline,
    /// The last closed point with calls.
    pub last: Option<Point>,
    /// How it compared with the baseline.
    pub change: Change,
    /// Anomalous by the guard's own statistics.
    pub own: bool,
    /// Signals the predictor reports anomalous or at risk.
    pub predicted: BTreeSet<SignalKind>,
    /// Its service breaker refuses calls.
    pub breaker_open: bool,
    /// When the current anomaly began.
    pub onset: Option<Timestamp>,
}

impl Service {
    /// Anomalous by any evidence.
    pub fn anomalous(&self) -> bool {
        self.own || self.breaker_open || !self.predicted.is_empty()
    }

    /// The failing fraction of its last point, 0–1.
    fn failing(&self) -> f64 {
        self.last.map_or(0.0, |p| p.error_rate / 100.0)
    }

    fn error_rate(&self) -> f64 {
        self.last.map_or(0.0, |p| p.error_rate)
    }
}

/// Containment in force for one root cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// The strongest action taken so far.
    pub action: ContainmentAction,
    /// Edges it covers.
    pub edges: BTreeSet<String>,
    /// The ranking it rests on.
    pub candidates: Vec<(String, f64)>,
    /// Its confidence.
    pub confidence: f64,
    /// Healthy points of the root cause in a row.
    pub healthy: u32,
}

/// Everything the guard keeps (its snapshot).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    clock: Option<Timestamp>,
    interval: Option<i64>,
    /// The dependency graph.
    pub graph: Graph,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Containment episodes by root cause.
    pub episodes: BTreeMap<String, Episode>,
    /// Retry amplification per edge (`caller->callee`).
    pub storms: BTreeMap<String, Storm>,
}

/// The guard agent.
pub struct GuardAgent {
    config: Arc<GuardConfig>,
    state: GuardState,
}

fn edge_name(caller: &str, callee: &str) -> String {
    format!("{caller}->{callee}")
}

impl GuardAgent {
    /// A guard with an empty graph.
    pub fn new(config: Arc<GuardConfig>) -> Self {
        Self {
            config,
            state: GuardState::default(),
        }
    }

    /// The state (for tests and the node's status page).
    pub fn state(&self) -> &GuardState {
        &self.state
    }

    fn traffic(
        &mut self,
        service: &str,
        caller: Option<&str>,
        now: Timestamp,
        calls: u64,
        failures: u64,
        latency: Option<f64>,
    ) {
        slot(&mut self.state.services, service)
            .base
            .add(calls, failures, latency);
        match caller {
            Some(c) if c != service => self
                .state
                .graph
                .observe(c, service, now, calls, failures, latency),
            _ => self.state.graph.add_service(service),
        }
    }

    fn flag(&mut self, service: &str, now: Timestamp, set: impl FnOnce(&mut Service)) {
        let s = slot(&mut self.state.services, service);
        set(s);
        if s.anomalous() && s.onset.is_none() {
            s.onset = Some(now);
        }
    }

    /// Closes the interval ending at `end`.
    fn close(&mut self, end: Timestamp, out: &mut Vec<Proposal>) {
        let c = Arc::clone(&self.config);
        for s in self.state.services.values_mut() {
            judge(s, &c);
            if s.anomalous() {
                s.onset.get_or_insert(end);
            } else {
                s.onset = None;
            }
        }
        self.storms(out);
        let suspects: BTreeMap<String, Suspect> = self
            .state
            .services
            .iter()
            .filter(|(_, s)| s.anomalous())
            .map(|(name, s)| {
                let magnitude = if s.own {
                    s.change.magnitude()
                } else {
                    c.z_threshold
                };
                let suspect = Suspect {
                    onset: s.onset.unwrap_or(end).nanos(),
                    magnitude,
                    failures: s.last.map_or(0, |p| p.failures),
                };
                (name.clone(), suspect)
            })
            .collect();
        if suspects.len() >= c.min_anomalous {
            let ranking = rank(
                &suspects,
                &self.state.graph,
                c.interval_ms as i64 * 1_000_000,
            );
            if ranking.confidence >= c.min_confidence {
                let root = ranking.candidates[0].service.clone();
                self.contain(&root, Some(&ranking), &suspects, out);
            }
        }
        let roots: Vec<String> = self.state.episodes.keys().cloned().collect();
        for root in roots {
            self.follow(&root, &suspects, out);
        }
        self.state.graph.reset_windows();
        let ttl = c.edge_ttl_ms.min(i64::MAX as u64) as i64;
        self.state.graph.age(Timestamp::from_nanos(
            end.nanos().saturating_sub(ttl.saturating_mul(1_000_000)),
        ));
        // An edge that aged out takes its amplification history with it
        // (a storm in force stays until lifted).
        let graph = &self.state.graph;
        self.state.storms.retain(|name, storm| {
            storm.active
                || name
                    .split_once("->")
                    .is_some_and(|(a, b)| graph.edge(a, b).is_some())
        });
    }

    /// The action `root`'s condition calls for, and its edges.
    fn wanted(
        &self,
        root: &str,
        suspects: &BTreeMap<String, Suspect>,
    ) -> Option<(ContainmentAction, BTreeSet<String>)> {
        let c = &self.config;
        let g = &self.state.graph;
        let s = self.state.services.get(root)?;
        let callers: Vec<&str> = g.callers(root).filter(|x| *x != root).collect();
        let failing = |x: &str| {
            self.state
                .services
                .get(x)
                .is_some_and(|s| s.error_rate() >= c.open_edges_error_rate)
        };
        // A caller suffers when it is anomalous while failing calls are in
        // play (the root cause's, or its own, e.g. timeouts on a slow root
        // cause), or when its calls into the root cause fail.
        let root_failing = s.error_rate() >= c.open_edges_error_rate;
        let suffering: BTreeSet<String> = callers
            .iter()
            .copied()
            .filter(|x| {
                (suspects.contains_key(*x) && (root_failing || failing(x)))
                    || g.edge(x, root).is_some_and(|e| {
                        e.window_calls > 0
                            && 100.0 * e.window_failures as f64 / e.window_calls as f64
                                >= c.open_edges_error_rate
                    })
            })
            .map(|x| edge_name(x, root))
            .collect();
        let low = |x: &&str| {
            self.state
                .services
                .get(*x)
                .and_then(|s| s.tier)
                .is_some_and(|t| c.shed_tiers.contains(&t))
        };
        // An edge declared critical is never cut: its caller cannot serve
        // without the call, so cutting it turns a partial failure into a
        // total one. Retry budgets protect those edges instead.
        let cuttable = |edge: &String| {
            edge.split_once("->")
                .and_then(|(a, b)| g.edge(a, b))
                .is_none_or(|e| !e.critical)
        };
        let any_caller = !callers.is_empty();
        let suffering_any = !suffering.is_empty();
        let suffering: BTreeSet<String> = suffering.into_iter().filter(cuttable).collect();
        let (action, edges): (_, BTreeSet<String>) =
            if s.error_rate() >= c.isolate_error_rate || s.breaker_open {
                let all = callers
                    .iter()
                    .map(|x| edge_name(x, root))
                    .filter(cuttable)
                    .collect();
                (ContainmentAction::Isolate, all)
            } else if suffering_any {
                (ContainmentAction::OpenEdges, suffering)
            } else {
                let shed = callers
                    .iter()
                    .copied()
                    .filter(low)
                    .map(|x| edge_name(x, root));
                (ContainmentAction::Shed, shed.collect())
            };
        // With every edge critical there is nothing to cut, but the episode
        // (root cause, blast radius, impact) is still announced.
        (any_caller && (!edges.is_empty() || action != ContainmentAction::Shed))
            .then_some((action, edges))
    }

    /// Starts or raises containment of `root`.
    fn contain(
        &mut self,
        root: &str,
        ranking: Option<&Ranking>,
        suspects: &BTreeMap<String, Suspect>,
        out: &mut Vec<Proposal>,
    ) {
        let Some((action, edges)) = self.wanted(root, suspects) else {
            return;
        };
        let first = !self.state.episodes.contains_key(root);
        let (candidates, confidence) = match (ranking, self.state.episodes.get(root)) {
            (Some(r), _) => (
                r.candidates
                    .iter()
                    .map(|c| (c.service.clone(), c.score))
                    .collect(),
                r.confidence,
            ),
            (None, Some(e)) => (e.candidates.clone(), e.confidence),
            (None, None) => return,
        };
        let e = self
            .state
            .episodes
            .entry(root.to_owned())
            .or_insert_with(|| Episode {
                action,
                edges: BTreeSet::new(),
                candidates: candidates.clone(),
                confidence,
                healthy: 0,
            });
        e.candidates = candidates;
        e.confidence = confidence;
        let raised = action > e.action;
        let new_edges = action >= e.action && !edges.is_subset(&e.edges);
        if !(first || raised || new_edges) {
            return;
        }
        e.action = e.action.max(action);
        e.edges.extend(edges);
        let e = e.clone();
        let reason = self.explain(root, &e);
        self.emit(root, e.action, &e, reason, None, out);
    }

    /// After a close: raise an episode the root's condition calls for,
    /// count healthy points, and lift.
    fn follow(
        &mut self,
        root: &str,
        suspects: &BTreeMap<String, Suspect>,
        out: &mut Vec<Proposal>,
    ) {
        let lift_after = self.config.lift_after;
        let Some(s) = self.state.services.get(root) else {
            return;
        };
        let (anomalous, judged) = (
            s.anomalous(),
            s.last.is_some_and(|p| p.calls >= self.config.min_calls),
        );
        if anomalous {
            self.contain(root, None, suspects, out);
        }
        let e = self.state.episodes.get_mut(root).expect("episode");
        if anomalous {
            e.healthy = 0;
            return;
        }
        if judged {
            e.healthy += 1;
        }
        if e.healthy >= lift_after {
            let e = self.state.episodes.remove(root).expect("episode");
            let reason = format!(
                "{root} healthy for {} intervals (error rate {:.1} %): lifting {} on {}",
                e.healthy,
                self.state.services[root].error_rate(),
                e.action.as_str(),
                e.edges.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            self.emit(
                root,
                ContainmentAction::Lift,
                &e,
                reason,
                Some(e.action),
                out,
            );
        }
    }

    fn explain(&self, root: &str, e: &Episode) -> String {
        let s = &self.state.services[root];
        let deps: Vec<&str> = self
            .state
            .graph
            .callees(root)
            .filter(|d| self.state.services.get(*d).is_some_and(Service::anomalous))
            .collect();
        let evidence = if s.own {
            format!(
                "error rate {:.1} % ({:.1} robust σ), latency ×{:.2} ({:.1} σ) against its baseline",
                s.error_rate(),
                s.change.z_error,
                s.change.latency_ratio,
                s.change.z_latency
            )
        } else if s.breaker_open {
            format!("its breaker is open, error rate {:.1} %", s.error_rate())
        } else {
            let signals: Vec<&str> = s.predicted.iter().map(|k| k.as_str()).collect();
            format!("predicted anomalous ({})", signals.join(", "))
        };
        let position = if deps.is_empty() {
            "its own dependencies are healthy".to_owned()
        } else {
            format!("anomalous dependencies: {}", deps.join(", "))
        };
        let what = match e.action {
            ContainmentAction::Isolate => "isolating it",
            ContainmentAction::OpenEdges => {
                "opening its dependents' edges before their breakers trip"
            }
            ContainmentAction::Shed => "shedding low-priority callers",
            _ => "",
        };
        let what = if e.edges.is_empty() && what.is_empty() {
            what.to_owned()
        } else if e.edges.is_empty() {
            format!("{what}: nothing cut, every edge into it is critical")
        } else {
            what.to_owned()
        };
        format!(
            "{root} is the likely origin (score {:.3}, confidence {:.3}): {evidence}; {position}; {what}",
            e.candidates.first().map_or(0.0, |c| c.1),
            e.confidence
        )
    }

    fn impact(&self, root: &str, affected: &BTreeSet<String>) -> f64 {
        let one = |name: &str| {
            self.state
                .services
                .get(name)
                .map_or(0.0, |s| s.revenue_per_minute * s.failing())
        };
        let total = one(root) + affected.iter().map(|a| one(a)).sum::<f64>();
        (total * 100.0).round() / 100.0
    }

    fn emit(
        &self,
        root: &str,
        action: ContainmentAction,
        e: &Episode,
        reason: String,
        lifted: Option<ContainmentAction>,
        out: &mut Vec<Proposal>,
    ) {
        let affected = self.state.graph.dependents(root);
        let d = ContainmentDecision {
            action,
            root_cause: root.to_owned(),
            candidates: e
                .candidates
                .iter()
                .map(|(service, score)| Candidate {
                    service: service.clone(),
                    score: *score,
                })
                .collect(),
            confidence: e.confidence,
            impact_per_minute: self.impact(root, &affected),
            affected: affected.into_iter().collect(),
            edges: e.edges.iter().cloned().collect(),
            retry_budget_percent: None,
            amplification: None,
            lifted,
            reason,
        };
        out.push(Proposal::new(root, Data::Containment(d)));
    }

    /// Measures retry amplification on every edge with traffic.
    fn storms(&mut self, out: &mut Vec<Proposal>) {
        let c = Arc::clone(&self.config);
        let mut steps = Vec::new();
        for (caller, callee, e) in self.state.graph.edges() {
            let inbound = self
                .state
                .services
                .get(caller)
                .and_then(|s| s.last)
                .map_or(0, |p| p.calls);
            let name = edge_name(caller, callee);
            let storm = self.state.storms.get(&name);
            if e.window_calls == 0 && storm.is_none() {
                continue;
            }
            let mut storm = storm.cloned().unwrap_or_default();
            // The budget itself brings the ratio down: it is lifted only
            // once the callee has recovered too (its own anomaly over, its
            // calls failing less than `open_edges_error_rate`).
            let recovered = self
                .state
                .services
                .get(callee)
                .is_none_or(|s| !s.anomalous() && s.error_rate() < c.open_edges_error_rate);
            if let Some(step) = storm.observe(e.window_calls, inbound, recovered, &c) {
                steps.push((caller.to_owned(), callee.to_owned(), step));
            }
            self.state.storms.insert(name, storm);
        }
        for (caller, callee, step) in steps {
            let affected = self.state.graph.dependents(&callee);
            let (action, lifted, reason, amp) = match step {
                StormStep::Budget { amplification, ratio, baseline } => (
                    ContainmentAction::RetryBudget,
                    None,
                    format!(
                        "retry storm on {caller}->{callee}: {ratio:.2} calls per {caller} request against a baseline of {baseline:.2} (×{amplification:.2}, threshold ×{}); retries capped at {} % of requests",
                        c.storm_amplification, c.retry_budget_percent
                    ),
                    Some(amplification),
                ),
                StormStep::Lift { amplification } => (
                    ContainmentAction::Lift,
                    Some(ContainmentAction::RetryBudget),
                    format!(
                        "{caller}->{callee} back to ×{amplification:.2} its baseline for {} intervals: lifting the retry budget",
                        c.lift_after
                    ),
                    None,
                ),
            };
            let d = ContainmentDecision {
                action,
                root_cause: callee.clone(),
                candidates: Vec::new(),
                confidence: amp.map_or(1.0, |a| ((1.0 - 1.0 / a) * 1000.0).round() / 1000.0),
                impact_per_minute: self.impact(&callee, &affected),
                affected: affected.into_iter().collect(),
                edges: vec![edge_name(&caller, &callee)],
                retry_budget_percent: amp.map(|_| c.retry_budget_percent),
                amplification: amp,
                lifted,
                reason,
            };
            out.push(Proposal::new(callee, Data::Containment(d)));
        }
    }
}

/// Closes `s`'s point and updates its own anomaly flag (with hysteresis:
/// it enters at the thresholds and leaves below half of them).
fn judge(s: &mut Service, c: &GuardConfig) {
    s.last = s.base.close();
    let Some(p) = s.last else {
        return;
    };
    if p.calls < c.min_calls {
        return;
    }
    let ready = s.base.len() >= c.min_history;
    s.change = if ready {
        s.base.change(&p)
    } else {
        Change::default()
    };
    let ch = s.change;
    let enter = ready
        && ((ch.z_error >= c.z_threshold && p.error_rate >= c.min_error_rate)
            || (ch.z_latency >= c.z_threshold && ch.latency_ratio >= c.min_latency_ratio));
    let half_ratio = 1.0 + (c.min_latency_ratio - 1.0) / 2.0;
    let stay = ready
        && ((ch.z_error >= c.z_threshold / 2.0 && p.error_rate >= c.min_error_rate / 2.0)
            || (ch.z_latency >= c.z_threshold / 2.0 && ch.latency_ratio >= half_ratio));
    s.own = enter || (s.own && stay);
    if !s.own && ch.magnitude() < c.z_threshold / 2.0 {
        s.base.learn(&p, c.history);
    }
}

impl Agent for GuardAgent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, _seq: Seq, record: &Event, out: &mut Vec<Proposal>) {
        let now = self.state.clock.map_or(record.time, |c| c.max(record.time));
        self.state.clock = Some(now);
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
        let subject = record.subject.as_str();
        match &record.data {
            Data::Request(r) => {
                if let Some(failed) = r.failed() {
                    self.traffic(
                        subject,
                        r.caller.as_deref(),
                        record.time,
                        1,
                        failed as u64,
                        r.latency_ms,
                    );
                }
            }
            Data::Window(w) => {
                let l = w
                    .latency_ms
                    .as_ref()
                    .and_then(|l| l.p99.or(l.p90).or(l.p50).or(l.mean));
                self.traffic(
                    subject,
                    w.caller.as_deref(),
                    record.time,
                    w.requests,
                    w.errors,
                    l,
                );
            }
            Data::Topology(t) => {
                self.state.graph.declare(subject, &t.dependencies);
                let s = slot(&mut self.state.services, subject);
                s.tier = t.tier;
                s.revenue_per_minute = t.revenue_per_minute.unwrap_or(0.0);
            }
            Data::Prediction(p)
                if p.instance.is_none()
                    && p.version.is_none()
                    && p.signal != SignalKind::Throughput =>
            {
                let on = p.status != PredictionStatus::Clear;
                self.flag(subject, record.time, |s| {
                    if on {
                        s.predicted.insert(p.signal);
                    } else {
                        s.predicted.remove(&p.signal);
                    }
                });
            }
            Data::Breaker(b) if b.scope == Scope::Service => {
                let open = b.to.is_tripped();
                self.flag(&b.target, record.time, |s| s.breaker_open = open);
            }
            _ => {}
        }
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        None
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_state(&self.state, NAME)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = decode_state(bytes, NAME)?;
        Ok(())
    }

    fn view(&self, service: Option<&str>) -> Option<serde_json::Value> {
        let Some(name) = service else {
            return Some(serde_json::json!({
                "services": self.state.services.keys().collect::<Vec<_>>(),
                "episodes": self.state.episodes,
            }));
        };
        let s = self.state.services.get(name)?;
        let episodes: BTreeMap<&String, &Episode> = (self.state.episodes.iter())
            .filter(|(root, e)| {
                *root == name || (e.edges.iter()).any(|edge| edge.split("->").any(|p| p == name))
            })
            .collect();
        Some(serde_json::json!({ "service": s, "episodes": episodes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::events::observation::Window;

    fn window(t_s: i64, subject: &str, caller: Option<&str>) -> Event {
        Event {
            id: format!("{subject}-{t_s}"),
            source: "test".into(),
            subject: subject.into(),
            time: Timestamp::from_millis(t_s * 1000),
            datacontenttype: None,
            causeseq: None,
            causeid: None,
            data: Data::Window(Window {
                caller: caller.map(str::to_owned),
                interval_ms: 5000,
                requests: 100,
                ..Window::default()
            }),
        }
    }

    #[test]
    fn an_aged_out_edge_takes_its_storm_history_with_it() {
        let c = Config::from_toml("[guard]\nedge_ttl_s = 30\n", "t").unwrap();
        let mut g = GuardAgent::new(Arc::new(c.guard));
        let mut out = Vec::new();
        for t in (1..60).step_by(5) {
            g.apply(0, &window(t, "web", None), &mut out);
            g.apply(0, &window(t, "api", Some("web")), &mut out);
        }
        assert!(g.state().storms.contains_key("web->api"));
        for t in (61..120).step_by(5) {
            g.apply(0, &window(t, "web", None), &mut out);
        }
        assert!(g.state().graph.edge("web", "api").is_none());
        assert!(!g.state().storms.contains_key("web->api"));
        assert!(out.is_empty());
    }
}
