//! The router agent's pure core: per service, the hosts with their health,
//! breaker state and outlier record, and the routing table they imply,
//! emitted as `faultline.route` when it changes materially.
//!
//! Consecutive failures eject at once; success-rate and failure-percentage
//! outliers are judged at the end of each analysis interval (a timer in
//! event time, like Envoy's `interval`). An ejection lasts base × the
//! host's ejection count, capped; the count decays by one for every interval
//! the host spends back in service. Health checks (`faultline.health`) and
//! open instance breakers (`faultline.breaker`) take hosts out for as long
//! as they last. At most `max_ejection_percent` of hosts are ejected as
//! outliers at once (one always may be). Canary weights follow the rollback
//! agent: each `faultline.rollback` with a `canary_weight` sets the version
//! split (`from_version` gets that share, `to_version` the rest).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::RouterConfig;
use super::outlier::{self, Tally};
use super::table::{self, HostView, Split, Table};
use crate::engine::{decode_state, encode_state, services_view, slot, Agent, Proposal};
use crate::events::decision::{
    BreakerDecision, BreakerState, Ejection, EjectionTrigger, RollbackDecision, RouteDecision,
    RouteStrategy,
};
use crate::events::observation::{HealthStatus, Scope};
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// Agent name in decision ids, sources and subjects.
pub const NAME: &str = "router";

/// An outlier ejection in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Ejected {
    until: Timestamp,
    trigger: EjectionTrigger,
    observed: f64,
    threshold: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Host {
    region: Option<String>,
    signal: bool,
    down: bool,
    breaker_open: bool,
    consecutive: u64,
    requests: u64,
    failures: u64,
    ejections: u32,
    ejected: Option<Ejected>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Service {
    hosts: BTreeMap<String, Host>,
    next_analysis: Option<Timestamp>,
    /// The version split the rollback agent decided, while one is in force.
    split: Option<Split>,
    /// The material content of the last table emitted, encoded.
    last: Option<Vec<u8>>,
}

/// Everything the router remembers; what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterMemory {
    clock: Option<Timestamp>,
    services: BTreeMap<String, Service>,
    deadlines: BTreeSet<(Timestamp, String)>,
}

/// The router agent.
pub struct RouterAgent {
    config: Arc<RouterConfig>,
    state: RouterMemory,
}

impl RouterAgent {
    /// A router with no services yet.
    pub fn new(config: Arc<RouterConfig>) -> Self {
        Self {
            config,
            state: RouterMemory::default(),
        }
    }
}

/// Takes a host's region from an observation; returns whether it changed.
fn learn(h: &mut Host, region: Option<&String>) -> bool {
    match region {
        Some(r) if h.region.as_ref() != Some(r) => {
            h.region = Some(r.clone());
            true
        }
        _ => false,
    }
}

fn view<'a>(id: &'a str, h: &'a Host) -> HostView<'a> {
    let out = if let Some(e) = &h.ejected {
        Some(Ejection {
            instance: id.to_owned(),
            trigger: e.trigger,
            until: Some(e.until),
            ejections: h.ejections,
            observed: e.observed,
            threshold: e.threshold,
        })
    } else if h.breaker_open || h.down {
        Some(Ejection {
            instance: id.to_owned(),
            trigger: if h.breaker_open {
                EjectionTrigger::Breaker
            } else {
                EjectionTrigger::Health
            },
            until: None,
            ejections: h.ejections,
            observed: 0.0,
            threshold: 0.0,
        })
    } else {
        None
    };
    HostView {
        id,
        region: h.region.as_deref().unwrap_or(""),
        signal: h.signal,
        out,
    }
}

impl RouterAgent {
    fn service(&mut self, name: &str) -> &mut Service {
        slot(&mut self.state.services, name)
    }

    fn host(&mut self, service: &str, id: &str) -> &mut Host {
        slot(&mut self.service(service).hosts, id)
    }

    fn schedule(&mut self, service: &str) {
        let s = &self.state.services[service];
        let mut due: Vec<Timestamp> = s.next_analysis.into_iter().collect();
        due.extend(
            s.hosts
                .values()
                .filter_map(|h| h.ejected.as_ref().map(|e| e.until)),
        );
        self.state.deadlines.retain(|(_, n)| n != service);
        if let Some(t) = due.into_iter().min() {
            self.state.deadlines.insert((t, service.to_owned()));
        }
    }

    /// Outlier-ejects `id` if the share allows; returns whether it did.
    fn eject(
        &mut self,
        service: &str,
        id: &str,
        now: Timestamp,
        e: (EjectionTrigger, f64, f64),
    ) -> bool {
        let c = Arc::clone(&self.config);
        let s = self.service(service);
        let ejected = s.hosts.values().filter(|h| h.ejected.is_some()).count();
        if ejected >= outlier::max_ejected(s.hosts.len(), &c) {
            return false;
        }
        let h = s.hosts.get_mut(id).expect("known host");
        if h.ejected.is_some() {
            return false;
        }
        h.ejections = h.ejections.saturating_add(1);
        h.ejected = Some(Ejected {
            until: now.plus_millis(outlier::ejection_ms(h.ejections, &c)),
            trigger: e.0,
            observed: e.1,
            threshold: e.2,
        });
        h.consecutive = 0;
        true
    }

    /// A host seen in an observation: learned (new, or in a new region) and
    /// its outcomes tallied. Returns whether the routing table or the timers
    /// may have changed (a new host, a move, a new analysis timer, an
    /// ejection).
    ///
    /// Every request and window comes here, so each map is searched once
    /// (a name is copied only when it is new).
    fn outcome(
        &mut self,
        service: &str,
        id: &str,
        region: Option<&String>,
        now: Timestamp,
        (requests, failures): (u64, u64),
    ) -> bool {
        let interval = self.config.interval_ms;
        let threshold = u64::from(self.config.consecutive_5xx);
        let services = &mut self.state.services;
        let s = match services.get_mut(service) {
            Some(s) => s,
            None => services.entry(service.to_owned()).or_default(),
        };
        let mut changed = false;
        if s.next_analysis.is_none() {
            s.next_analysis = Some(now.plus_millis(interval));
            changed = true;
        }
        let h = match s.hosts.get_mut(id) {
            Some(h) => h,
            None => {
                changed = true;
                s.hosts.entry(id.to_owned()).or_default()
            }
        };
        changed |= learn(h, region);
        h.signal = true;
        h.requests += requests;
        h.failures += failures.min(requests);
        // Within a window the order is unknown: only an all-failed window
        // extends a run of failures.
        if failures >= requests && requests > 0 {
            h.consecutive += requests;
        } else if requests > 0 {
            h.consecutive = 0;
        }
        let run = h.consecutive;
        if threshold > 0 && run >= threshold {
            let t = threshold as f64;
            changed |= self.eject(
                service,
                id,
                now,
                (EjectionTrigger::Consecutive5xx, run as f64, t),
            );
        }
        changed
    }

    /// Whether `id` is a host of `service` already.
    fn knows(&self, service: &str, id: &str) -> bool {
        self.state
            .services
            .get(service)
            .is_some_and(|s| s.hosts.contains_key(id))
    }

    fn on_timer(&mut self, service: &str, now: Timestamp) {
        let c = Arc::clone(&self.config);
        let s = self.service(service);
        for h in s.hosts.values_mut() {
            if h.ejected.as_ref().is_some_and(|e| e.until <= now) {
                h.ejected = None;
            }
        }
        if s.next_analysis.is_some_and(|t| t <= now) {
            let ids: Vec<String> = s.hosts.keys().cloned().collect();
            let tallies: Vec<Tally> = s
                .hosts
                .values()
                .map(|h| Tally {
                    requests: h.requests,
                    failures: h.failures,
                })
                .collect();
            let traffic = tallies.iter().any(|t| t.requests > 0);
            for (i, h) in s.hosts.values_mut().enumerate() {
                // A host earns its multiplier down only by an interval in
                // which it served no worse than the others: one that comes
                // back failing (a crash loop, a starved host) is ejected
                // for longer each time, not for the base time again and
                // again.
                let served = tallies[i].requests > 0
                    && !outlier::worse_than_others(&tallies, i, c.success_rate_significance);
                if h.ejected.is_none() && served {
                    h.ejections = h.ejections.saturating_sub(1);
                }
                h.requests = 0;
                h.failures = 0;
            }
            let any_ejected = s.hosts.values().any(|h| h.ejected.is_some());
            s.next_analysis = (traffic || any_ejected).then(|| now.plus_millis(c.interval_ms));
            for o in outlier::analyse(&tallies, &c) {
                self.eject(
                    service,
                    &ids[o.index],
                    now,
                    (o.trigger, o.observed, o.threshold),
                );
            }
        }
    }

    fn fire_timers(&mut self, now: Timestamp, out: &mut Vec<Proposal>) {
        while let Some((due, service)) =
            self.state.deadlines.first().cloned().filter(|d| d.0 <= now)
        {
            self.state.deadlines.remove(&(due, service.clone()));
            self.on_timer(&service, due);
            self.schedule(&service);
            self.publish(&service, out);
        }
    }

    fn breaker(&mut self, d: &BreakerDecision) -> Option<String> {
        if d.scope != Scope::Instance {
            return None;
        }
        let (service, id) = d.target.split_once('/')?;
        // Half-open is not out: the client admits its probes.
        let open = matches!(d.to, BreakerState::Open | BreakerState::ForcedOpen);
        let h = self.host(service, id);
        let changed = h.breaker_open != open;
        h.breaker_open = open;
        changed.then(|| service.to_owned())
    }

    /// Follows the canary weight of a rollback decision: a weight strictly
    /// between 0 and 100 splits versions; 0 or 100 ends the split, and so
    /// does a decision about another version. Only for
    /// services whose hosts the router knows: it routes nothing else.
    fn rollback(&mut self, service: &str, d: &RollbackDecision) -> Option<String> {
        let s = self.state.services.get_mut(service)?;
        let split = match (d.canary_weight, &d.to_version) {
            // No weight: the split stands while the decision is about the
            // same canary (a staged step, an abort), and ends when another
            // version is being analysed (a new deploy superseded it).
            (None, _) => match &s.split {
                Some(c) if c.canary == d.from_version => return None,
                Some(_) => None,
                None => return None,
            },
            (Some(w), Some(to)) if w > 0 && w < 100 => Some(Split {
                canary: d.from_version.clone(),
                stable: to.clone(),
                weight: w,
            }),
            _ => None,
        };
        let changed = s.split != split;
        s.split = split;
        changed.then(|| service.to_owned())
    }

    fn table(&self, service: &str) -> Table {
        let s = &self.state.services[service];
        let views: Vec<HostView<'_>> = s.hosts.iter().map(|(id, h)| view(id, h)).collect();
        table::compute(&views, s.split.as_ref(), &self.config)
    }

    /// Emits the service's table if it changed materially.
    fn publish(&mut self, service: &str, out: &mut Vec<Proposal>) {
        let t = self.table(service);
        let key = rmp_serde::to_vec(&t.key()).expect("table key encodes");
        let s = self.service(service);
        let initial =
            s.last.is_none() && t.strategy == RouteStrategy::Weighted && t.ejected.is_empty();
        if s.last.as_ref() == Some(&key) || initial {
            s.last.get_or_insert(key);
            return;
        }
        s.last = Some(key);
        let out_list: Vec<String> = t
            .ejected
            .iter()
            .map(|e| match e.until {
                Some(u) => format!("{} ({} until {u})", e.instance, e.trigger.as_str()),
                None => format!("{} ({})", e.instance, e.trigger.as_str()),
            })
            .collect();
        let reason = if out_list.is_empty() {
            t.summary.clone()
        } else {
            format!("{}; out: {}", t.summary, out_list.join(", "))
        };
        out.push(Proposal::new(
            service,
            Data::Route(RouteDecision {
                strategy: t.strategy,
                weights: t.weights,
                ejected: t.ejected,
                hosts: t.hosts,
                healthy_hosts: t.healthy_hosts,
                reason,
            }),
        ));
    }
}

impl Agent for RouterAgent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, _seq: Seq, record: &Event, out: &mut Vec<Proposal>) {
        let now = self.state.clock.map_or(record.time, |c| c.max(record.time));
        self.state.clock = Some(now);
        self.fire_timers(now, out);
        let subject = record.subject.as_str();
        let touched = match &record.data {
            Data::Request(r) => match (&r.instance, r.failed()) {
                (Some(id), Some(f)) => self
                    .outcome(subject, id, r.region.as_ref(), now, (1, u64::from(f)))
                    .then(|| subject.to_owned()),
                _ => None,
            },
            Data::Window(w) => w.instance.as_ref().and_then(|id| {
                self.outcome(subject, id, w.region.as_ref(), now, (w.requests, w.errors))
                    .then(|| subject.to_owned())
            }),
            Data::Health(hl) => hl.instance.as_ref().and_then(|id| {
                let new = !self.knows(subject, id);
                let h = self.host(subject, id);
                let moved = learn(h, hl.region.as_ref());
                let down = matches!(hl.status, HealthStatus::Unhealthy | HealthStatus::Offline);
                let changed = new || moved || !h.signal || h.down != down;
                h.signal = true;
                h.down = down;
                changed.then(|| subject.to_owned())
            }),
            Data::Topology(t) => {
                for i in &t.instances {
                    let h = self.host(subject, &i.id);
                    learn(h, i.region.as_ref());
                }
                Some(subject.to_owned())
            }
            Data::Breaker(d) => self.breaker(d),
            Data::Rollback(d) => self.rollback(subject, d),
            _ => None,
        };
        if let Some(service) = touched {
            if self.state.services.contains_key(&service) {
                self.schedule(&service);
                self.publish(&service, out);
            }
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
        let Some(name) = service else {
            return Some(services_view(self.state.services.keys()));
        };
        let s = self.state.services.get(name)?;
        Some(serde_json::json!({
            "hosts": s.hosts,
            "split": s.split,
            "next_analysis": s.next_analysis,
        }))
    }
}
