//! The `faultline` arm: the agents in the in-memory engine, in the loop.
//!
//! At every window boundary the world's reports become events, as services
//! would publish them: `faultline.topology` at the start, a
//! `faultline.window` per (caller, instance, version) with calls,
//! `faultline.health` when a probe sees an instance go down or come back,
//! `faultline.deploy` for each rollout step and `faultline.actuation` when an
//! actuator has carried out a rollback step. The engine ingests them in time
//! order and its decisions act on the world:
//!
//! * every call goes through a [`Client`] per edge, which follows breaker,
//!   route and health decisions (gates, ejections, failover, version shares);
//! * a `faultline.rollback` step sets the new version's share after the
//!   actuation delay and is acknowledged; an analysis that fails halts the
//!   rollout, one that passes lets it go on;
//! * a `faultline.containment` refuses calls on its edges (`shed`,
//!   `open_edges`, `isolate`) or caps their retries (`retry_budget`) until
//!   it is lifted.
//!
//! The arm knows decisions by type, not by agent, so an agent added to the
//! engine acts on the world through the same decisions with no change here;
//! every record is kept in the log when one is given (`--data`).

use std::collections::BTreeMap;

use super::policy::{Action, Interval, Policy, WorldEvent};
use super::rollout::{DeployStep, Rollouts};
use super::windows::{Acc, Key};
use super::world::World;
use crate::client::{Client, ClientConfig, Endpoint, Outcome, Pick};
use crate::config::Config;
use crate::engine::Engine;
use crate::events::decision::{
    BreakerState, ContainmentAction, IncidentPhase, PredictionStatus, RollbackPhase, Verdict,
};
use crate::events::observation::{
    Actuation, ActuationStatus, Dependency, Deploy, DeployPhase, DeployStrategy, Health,
    HealthStatus, InstanceInfo, LatencySummary, Slo, Topology, Window,
};
use crate::events::{Data, Event, Timestamp};
use crate::log::{EventLog, LogError};

/// Simulated time 0: 2026-01-01T00:00:00Z.
pub const EPOCH_MS: i64 = 1_767_225_600_000;

/// `source` of the events the simulated world publishes.
pub const SOURCE: &str = "faultline/simulator";

/// The event time of simulated `t` ms.
pub fn timestamp(t: f64) -> Timestamp {
    Timestamp::from_millis(EPOCH_MS + t.round() as i64)
}

/// What the arm's agents said, for the report.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Predictor alarms: (time ms, service) of each anomaly or breach risk.
    pub alarms: Vec<(f64, usize)>,
    /// Guard rankings: (time ms, root cause named).
    pub root_causes: Vec<(f64, String)>,
    /// Records in the log.
    pub records: u64,
    /// Decisions among them.
    pub decisions: u64,
}

/// Retries allowed on an edge over the current second under a budget.
#[derive(Clone, Debug, Default)]
struct Budget {
    percent: Option<f64>,
    second: i64,
    calls: u64,
    retries: u64,
}

/// The `faultline` arm.
pub struct FaultlineArm<'l> {
    engine: Engine,
    clients: Vec<Client>,
    last_pick: Vec<Option<Pick>>,
    /// Per root cause: the containment in force and its edges.
    contained: BTreeMap<String, Vec<usize>>,
    refused: Vec<u32>,
    budgets: Vec<Budget>,
    actions: Vec<Action>,
    findings: Findings,
    log: Option<&'l mut dyn EventLog>,
    log_error: Option<LogError>,
    out: Vec<Event>,
    /// Rollback decisions asked of the actuator: id -> service.
    acked: BTreeMap<String, String>,
    started: bool,
    seq: u64,
}

impl<'l> FaultlineArm<'l> {
    /// The arm under `config`, logging to `log` if given.
    pub fn new(w: &World, config: &Config, seed: u64, log: Option<&'l mut dyn EventLog>) -> Self {
        let clients = w
            .edges
            .iter()
            .enumerate()
            .map(|(e, edge)| {
                let to = &w.services[edge.to];
                let mut c = ClientConfig::new(to.name.clone());
                c.caller = edge.from.map(|f| w.services[f].name.clone());
                c.seed = seed ^ (e as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut client = Client::new(c);
                client.set_endpoints(to.instances.clone().map(|i| endpoint(w, i)).collect());
                client
            })
            .collect();
        Self {
            engine: crate::process::engine(config),
            clients,
            last_pick: vec![None; w.edges.len()],
            contained: BTreeMap::new(),
            refused: vec![0; w.edges.len()],
            budgets: vec![Budget::default(); w.edges.len()],
            actions: Vec::new(),
            findings: Findings::default(),
            log,
            log_error: None,
            out: Vec::new(),
            acked: BTreeMap::new(),
            started: false,
            seq: 0,
        }
    }

    /// What the agents said, and the first log error if appending failed.
    pub fn finish(mut self) -> (Findings, Option<LogError>) {
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.flush() {
                self.log_error.get_or_insert(e);
            }
        }
        (self.findings, self.log_error)
    }

    fn event(&mut self, t: f64, subject: &str, data: Data) -> Event {
        self.seq += 1;
        Event {
            id: format!("sim-{}", self.seq),
            source: SOURCE.to_owned(),
            subject: subject.to_owned(),
            time: timestamp(t),
            datacontenttype: None,
            causeseq: None,
            causeid: None,
            data,
        }
    }

    fn topology(&mut self, w: &World) -> Vec<Event> {
        let mut out = Vec::new();
        for s in &w.services {
            let t = Topology {
                dependencies: s
                    .calls
                    .iter()
                    .map(|e| Dependency {
                        callee: w.services[w.edges[*e].to].name.clone(),
                        critical: w.edges[*e].critical,
                    })
                    .collect(),
                instances: s
                    .instances
                    .clone()
                    .map(|i| InstanceInfo {
                        id: w.instances[i].id.clone(),
                        region: Some(w.regions[w.instances[i].region].clone()),
                        version: s.spec.versions.first().cloned(),
                    })
                    .collect(),
                tier: Some(s.spec.tier),
                revenue_per_minute: Some(s.spec.revenue_per_minute),
                slo: Some(Slo {
                    availability: Some(s.spec.slo.availability),
                    latency_p99_ms: Some(s.spec.slo.latency_p99_ms),
                }),
            };
            out.push(self.event(0.0, &s.name, Data::Topology(t)));
        }
        out
    }

    fn window(
        &mut self,
        w: &World,
        key: Key,
        acc: &Acc,
        version: Option<String>,
        at: (f64, f64),
    ) -> Event {
        let (now, length) = at;
        let edge = &w.edges[key.edge];
        let inst = &w.instances[key.instance];
        let h = &acc.latency;
        let data = Data::Window(Window {
            instance: Some(inst.id.clone()),
            region: Some(w.regions[inst.region].clone()),
            version,
            caller: edge.from.map(|f| w.services[f].name.clone()),
            route: None,
            interval_ms: length as u64,
            requests: acc.requests,
            errors: acc.errors,
            slow: None,
            latency_ms: Some(LatencySummary {
                p50: h.quantile(0.5),
                p90: h.quantile(0.9),
                p99: h.quantile(0.99),
                max: Some(h.max),
                mean: h.mean(),
            }),
        });
        self.event(now, &w.services[edge.to].name, data)
    }

    fn world_event(&mut self, w: &World, t: f64, ev: &WorldEvent, rollouts: &Rollouts) -> Event {
        match ev {
            WorldEvent::Deploy(r, step) => {
                let r = &rollouts.all[*r];
                let (phase, weight) = match step {
                    DeployStep::Started(s) => (DeployPhase::Started, Some(*s)),
                    DeployStep::Progressed(s) => (DeployPhase::Progressed, Some(*s)),
                    DeployStep::Completed => (DeployPhase::Completed, Some(1.0)),
                };
                let d = Deploy {
                    phase,
                    version: r.version.clone(),
                    previous_version: Some(r.previous.clone()),
                    strategy: Some(if r.canary {
                        DeployStrategy::Canary
                    } else {
                        DeployStrategy::Recreate
                    }),
                    canary_weight: weight.map(|s| (s * 100.0).round() as u8),
                    irreversible_migration: None,
                    regions: None,
                };
                self.event(t, &w.services[r.service].name.clone(), Data::Deploy(d))
            }
            WorldEvent::Health(inst, up) => {
                let x = &w.instances[*inst];
                let h = Health {
                    instance: Some(x.id.clone()),
                    region: Some(w.regions[x.region].clone()),
                    status: if *up {
                        HealthStatus::Healthy
                    } else {
                        HealthStatus::Offline
                    },
                    detail: Some(
                        if *up {
                            "probe answered"
                        } else {
                            "probe refused"
                        }
                        .to_owned(),
                    ),
                };
                self.event(t, &w.services[x.service].name.clone(), Data::Health(h))
            }
            WorldEvent::Actuated(id) => {
                let a = Actuation {
                    decision_id: id.clone(),
                    status: ActuationStatus::Succeeded,
                    detail: Some("share set".to_owned()),
                };
                // The subject is the service rolled back: the decision id's service.
                let subject = self.subject_of(id).unwrap_or_default();
                self.event(t, &subject, Data::Actuation(a))
            }
        }
    }

    fn subject_of(&self, decision: &str) -> Option<String> {
        self.acked.get(decision).cloned()
    }
}

impl FaultlineArm<'_> {
    /// Ingests `inputs` (in time order) and acts on the decisions.
    fn ingest(&mut self, i: &mut Interval<'_>, inputs: Vec<Event>) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        for e in inputs {
            self.engine.ingest(e, &mut out);
        }
        self.engine.advance_to(timestamp(i.now), &mut out);
        self.findings.records += out.len() as u64;
        if let Some(log) = self.log.as_mut() {
            if self.log_error.is_none() && !out.is_empty() {
                if let Err(e) = log.append(&out) {
                    self.log_error = Some(e);
                }
            }
        }
        for e in &out {
            if e.causeseq.is_some() {
                self.findings.decisions += 1;
                self.decision(i, e);
            }
            for c in &mut self.clients {
                c.apply(e);
            }
        }
        self.out = out;
    }

    fn act(&mut self, t: f64, service: usize, detect: bool, mitigate: bool, label: String) {
        self.actions.push(Action {
            t,
            service,
            detect,
            mitigate,
            label,
        });
    }

    /// What a decision does to the world, and what the report notes of it.
    fn decision(&mut self, i: &mut Interval<'_>, e: &Event) {
        let w = i.world;
        let now = i.now;
        let service = w.service(&e.subject);
        let svc = service.unwrap_or(0);
        match &e.data {
            // The subject is the service (the callee for edge and instance
            // scopes); the system breaker concerns no one service.
            Data::Breaker(b) if b.to.is_tripped() && !b.from.is_tripped() && service.is_some() => {
                self.act(
                    now,
                    svc,
                    true,
                    b.to != BreakerState::MetricsOnly,
                    format!(
                        "breaker {} {} ({:?}): {}",
                        b.target,
                        b.to.as_str(),
                        b.scope,
                        b.reason
                    ),
                );
            }
            Data::Route(r)
                if service.is_some()
                    && (!r.ejected.is_empty() || r.weights.iter().any(|x| x.weight == 0)) =>
            {
                let out: Vec<&str> = r.ejected.iter().map(|x| x.instance.as_str()).collect();
                self.act(
                    now,
                    svc,
                    true,
                    true,
                    format!("route {}: {} out", e.subject, out.join(", ")),
                );
            }
            Data::Prediction(p)
                if matches!(
                    p.status,
                    PredictionStatus::Anomaly | PredictionStatus::BreachRisk
                ) && service.is_some() =>
            {
                self.findings.alarms.push((now, svc));
                self.act(
                    now,
                    svc,
                    true,
                    false,
                    format!("prediction {} {}", e.subject, p.signal.as_str()),
                );
            }
            Data::Incident(d) if d.phase == IncidentPhase::Opened && service.is_some() => {
                self.act(now, svc, true, false, format!("incident on {}", e.subject));
            }
            Data::Rollback(d) => self.rollback(i, e, d),
            Data::Containment(c) => {
                if c.action != ContainmentAction::Lift {
                    self.findings.root_causes.push((now, c.root_cause.clone()));
                }
                let edges: Vec<usize> = c.edges.iter().filter_map(|x| w.edge(x)).collect();
                match (c.action, c.lifted) {
                    (ContainmentAction::RetryBudget, _) => {
                        for x in edges {
                            self.budgets[x].percent = c.retry_budget_percent;
                        }
                    }
                    (ContainmentAction::Lift, Some(ContainmentAction::RetryBudget)) => {
                        for x in edges {
                            self.budgets[x].percent = None;
                        }
                    }
                    (ContainmentAction::Lift, _) => {
                        for x in self.contained.remove(&c.root_cause).unwrap_or_default() {
                            self.refused[x] -= 1;
                        }
                    }
                    _ => {
                        for x in self.contained.remove(&c.root_cause).unwrap_or_default() {
                            self.refused[x] -= 1;
                        }
                        for x in &edges {
                            self.refused[*x] += 1;
                        }
                        self.contained.insert(c.root_cause.clone(), edges);
                    }
                }
                let root = w.service(&c.root_cause).unwrap_or(svc);
                self.act(
                    now,
                    root,
                    true,
                    c.action != ContainmentAction::Lift,
                    format!(
                        "{} {}: {}",
                        c.action.as_str(),
                        c.root_cause,
                        c.edges.join(", ")
                    ),
                );
            }
            _ => {}
        }
    }

    fn rollback(
        &mut self,
        i: &mut Interval<'_>,
        e: &Event,
        d: &crate::events::decision::RollbackDecision,
    ) {
        let now = i.now;
        let Some(svc) = i.world.service(&e.subject) else {
            return;
        };
        let Some(r) = i
            .rollouts
            .active(svc)
            .filter(|r| i.rollouts.all[*r].version == d.from_version)
        else {
            return;
        };
        match d.phase {
            RollbackPhase::Analysis => match d.verdict {
                Some(Verdict::Fail) => {
                    i.rollouts.halt(r);
                    self.act(
                        now,
                        svc,
                        true,
                        false,
                        format!("analysis of {} failed", d.from_version),
                    );
                }
                Some(Verdict::Pass) => i.rollouts.resume(r),
                _ => {}
            },
            RollbackPhase::Initiated | RollbackPhase::Step => {
                let share = f64::from(d.canary_weight.unwrap_or(0)) / 100.0;
                let due = now + i.actuation_delay;
                self.acked.insert(e.id.clone(), e.subject.clone());
                i.rollouts.set_share(r, share, due, Some(e.id.clone()));
                self.act(
                    due,
                    svc,
                    d.phase == RollbackPhase::Initiated,
                    true,
                    format!(
                        "rollback of {}: {}% left",
                        d.from_version,
                        (share * 100.0).round()
                    ),
                );
            }
            _ => {}
        }
    }
}

impl Policy for FaultlineArm<'_> {
    fn pick(&mut self, _w: &World, edge: usize, now: f64) -> Option<usize> {
        if self.refused[edge] > 0 {
            return None;
        }
        let b = &mut self.budgets[edge];
        if b.percent.is_some() {
            let second = (now / 1_000.0) as i64;
            if b.second != second {
                (b.second, b.calls, b.retries) = (second, 0, 0);
            }
            b.calls += 1;
        }
        let pick = self.clients[edge].pick(timestamp(now), None).ok()?;
        self.last_pick[edge] = Some(pick);
        Some(_w.services[_w.edges[edge].to].instances.start + pick.position())
    }

    fn complete(
        &mut self,
        _w: &World,
        edge: usize,
        _instance: usize,
        outcome: Outcome,
        ms: f64,
        now: f64,
    ) {
        if let Some(p) = self.last_pick[edge].take() {
            self.clients[edge].complete(p, timestamp(now), ms, outcome);
        }
    }

    fn may_retry(&mut self, edge: usize, now: f64) -> bool {
        let b = &mut self.budgets[edge];
        let Some(percent) = b.percent else {
            return true;
        };
        let second = (now / 1_000.0) as i64;
        if b.second != second {
            (b.second, b.calls, b.retries) = (second, 0, 0);
        }
        if (b.retries as f64) < (percent / 100.0 * b.calls as f64).max(1.0) {
            b.retries += 1;
            true
        } else {
            false
        }
    }

    fn interval(&mut self, mut i: Interval<'_>) {
        let w = i.world;
        let mut inputs = Vec::new();
        if !self.started {
            self.started = true;
            inputs = self.topology(w);
        }
        let events: Vec<(f64, WorldEvent)> = i.events.to_vec();
        for (t, ev) in &events {
            let e = self.world_event(w, *t, ev, i.rollouts);
            inputs.push(e);
        }
        let length = i.length;
        let now = i.now;
        let touched: Vec<(Key, Acc)> = i.windows.touched().map(|(k, a)| (k, a.clone())).collect();
        for (key, acc) in touched {
            let svc = w.edges[key.edge].to;
            let version = if key.version == 1 {
                i.rollouts
                    .active(svc)
                    .map(|r| i.rollouts.all[r].version.clone())
            } else {
                w.services[svc].spec.versions.first().cloned()
            };
            let e = self.window(w, key, &acc, version, (now, length));
            inputs.push(e);
        }
        inputs.sort_by_key(|e| e.time);
        self.ingest(&mut i, inputs);
    }

    fn actions(&self) -> &[Action] {
        &self.actions
    }
}

fn endpoint(w: &World, i: usize) -> Endpoint {
    let x = &w.instances[i];
    Endpoint::new(x.id.clone()).region(w.regions[x.region].clone())
}
