//! `faultline::client`: the data plane that enforces the agents' decisions.
//!
//! Agents decide; services carry traffic. A service (or the simulator)
//! embeds a [`Client`] per upstream service, feeds it the decisions it
//! receives (`faultline.breaker`, `faultline.route`) and the upstream's
//! `faultline.topology` and `faultline.health`, and asks it for an endpoint
//! per request. The core has no NATS, no clock and no I/O: time is passed in,
//! randomness is seeded, so a client's picks are reproducible.
//!
//! A pick goes through, in order:
//!
//! 1. the **plan** ([`plan`]): selectable endpoints (healthy, not ejected
//!    by the router, not out by this client's own [`accrual`], instance
//!    breaker admitting) grouped by the route's region and version
//!    shares, or by Envoy priority levels for `locality_priority`; panic mode
//!    uses every endpoint when too few are healthy;
//! 2. a **group** by its share (smooth weighted round robin);
//! 3. an **endpoint** in the group by the configured [`Strategy`];
//! 4. the **breaker gates** of the service and the caller→service edge, and
//!    of the chosen instance in half-open, which refuse when open and admit
//!    exactly the permitted probes in half-open; the system breaker gates
//!    only when an operator forces it open (a kill switch): opened by the
//!    share of tripped services, it is a signal for people, not a gate;
//! 5. **adaptive throttling** ([`throttle`]) while the gates are closed:
//!    when the upstream accepts less than 1/K of the calls sent, a share of
//!    calls is refused locally so that an overloaded upstream gets less
//!    traffic rather than none.
//!
//! Call [`Client::complete`] when the request ends, with its [`Outcome`],
//! so in-flight counts, latency estimates, failure accrual and the
//! throttle's history stay true.

pub mod accrual;
pub mod gate;
pub mod locality;
mod plan;
pub mod ring;
pub mod strategy;
pub mod throttle;
pub mod wrr;

use std::collections::BTreeMap;

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

pub use accrual::AccrualConfig;
pub use gate::{Admission, Gate};
pub use strategy::Strategy;
pub use throttle::ThrottleConfig;

use crate::events::decision::{BreakerDecision, BreakerState, RouteDecision};
use crate::events::observation::{HealthStatus, Scope, Topology};
use crate::events::subject::SYSTEM_SUBJECT;
use crate::events::{Data, Event, Timestamp};
use accrual::Accrual;
use plan::{Plan, PlanInput};
use ring::Ring;
use throttle::Throttle;
use wrr::SmoothWrr;

/// One endpoint of the upstream service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Instance id.
    pub id: String,
    /// Region, when known.
    pub region: Option<String>,
    /// Version, when known.
    pub version: Option<String>,
    /// Weight for `weighted` (a route decision's instance weight wins).
    pub weight: u32,
}

impl Endpoint {
    /// An endpoint with weight 1.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            region: None,
            version: None,
            weight: 1,
        }
    }

    /// In `region`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Running `version`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// With `weight`.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

/// How a client picks.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// The upstream service.
    pub service: String,
    /// This service's name, for edge breakers (`caller->service`).
    pub caller: Option<String>,
    /// Endpoint choice within a group.
    pub strategy: Strategy,
    /// The caller's region, for `locality_priority`.
    pub local_region: Option<String>,
    /// Envoy's overprovisioning factor.
    pub overprovisioning: f64,
    /// Percent of healthy endpoints below which health is ignored.
    pub panic_threshold: f64,
    /// Latency assumed for an endpoint never measured, ms (`latency_ewma`).
    pub default_rtt_ms: f64,
    /// Time constant of the peak-EWMA decay, ms.
    pub ewma_tau_ms: f64,
    /// Latency a rejected call counts as at least, ms (`latency_ewma`): a
    /// host that refuses at once must not look like the fastest.
    pub rejected_cost_ms: f64,
    /// Seed of the random choices.
    pub seed: u64,
    /// Adaptive throttling; `None` switches it off.
    pub throttle: Option<ThrottleConfig>,
    /// Failure accrual; `None` switches it off.
    pub accrual: Option<AccrualConfig>,
}

impl ClientConfig {
    /// Defaults for `service` (round robin, Envoy/Linkerd constants).
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            caller: None,
            strategy: Strategy::RoundRobin,
            local_region: None,
            overprovisioning: locality::OVERPROVISIONING,
            panic_threshold: locality::PANIC_THRESHOLD,
            default_rtt_ms: 30.0,
            ewma_tau_ms: 10_000.0,
            rejected_cost_ms: 1_000.0,
            seed: 0,
            throttle: Some(ThrottleConfig::default()),
            accrual: Some(AccrualConfig::default()),
        }
    }
}

/// How a call ended, as the caller saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered in time, successfully.
    Ok,
    /// Answered in time with an error that is not about load (a 500 from a
    /// bug, a failed dependency): the upstream accepted the call.
    Failed,
    /// Not accepted: refused for load (429, 503, connection refused) or
    /// timed out (an upstream that cannot answer in time is, for its
    /// caller, one that cannot take the call). Only these make the
    /// throttle refuse calls.
    Rejected,
}

/// Why no endpoint was given.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum Refusal {
    /// A breaker refuses the call.
    #[error("{scope:?} breaker {target} is {state}: call refused")]
    Breaker {
        /// Its scope.
        scope: Scope,
        /// Its target.
        target: String,
        /// Its state.
        state: &'static str,
    },
    /// Adaptive throttling refused the call: the upstream accepts too
    /// little of what is sent.
    #[error(
        "{service} accepts too little of what is sent: call throttled (refusing {percent:.0} %)"
    )]
    Throttled {
        /// The service.
        service: String,
        /// The share of calls being refused, percent.
        percent: f64,
    },
    /// No endpoint can take the call.
    #[error("no endpoint of {service} can take the call ({known} known)")]
    NoEndpoint {
        /// The service.
        service: String,
        /// Endpoints known.
        known: usize,
    },
}

/// A chosen endpoint; hand it back to [`Client::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    index: usize,
    /// Whether the call is a half-open probe.
    pub probe: bool,
}

impl Pick {
    /// The endpoint's position in the list given to [`Client::set_endpoints`]
    /// (or the topology's instance list).
    pub fn position(self) -> usize {
        self.index
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Host {
    pub(crate) info: Endpoint,
    pub(crate) healthy: bool,
    pub(crate) gate: Gate,
    pub(crate) accrual: Accrual,
    in_flight: u32,
    cost_ms: Option<f64>,
    measured_at: Option<Timestamp>,
}

/// The data plane for one upstream service.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    hosts: Vec<Host>,
    system: Gate,
    service: Gate,
    edge: Gate,
    route: Option<RouteDecision>,
    ejected: BTreeMap<String, Option<Timestamp>>,
    ring: Ring,
    rng: ChaCha8Rng,
    plan: Option<Plan>,
    group_wrr: SmoothWrr,
    group_cursor: usize,
    cursors: Vec<usize>,
    wrrs: Vec<SmoothWrr>,
    throttle: Option<Throttle>,
}

impl Client {
    /// A client with no endpoints yet.
    pub fn new(config: ClientConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let throttle = config.throttle.map(Throttle::new);
        Self {
            throttle,
            config,
            hosts: Vec::new(),
            system: Gate::default(),
            service: Gate::default(),
            edge: Gate::default(),
            route: None,
            ejected: BTreeMap::new(),
            ring: Ring::default(),
            rng,
            plan: None,
            group_wrr: SmoothWrr::default(),
            group_cursor: 0,
            cursors: Vec::new(),
            wrrs: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Replaces the endpoint set; known endpoints keep their health, gates
    /// and measurements.
    pub fn set_endpoints(&mut self, endpoints: Vec<Endpoint>) {
        let mut old: BTreeMap<String, Host> = self
            .hosts
            .drain(..)
            .map(|h| (h.info.id.clone(), h))
            .collect();
        self.hosts = endpoints
            .into_iter()
            .map(|info| match old.remove(&info.id) {
                Some(h) => Host { info, ..h },
                None => Host {
                    info,
                    healthy: true,
                    gate: Gate::default(),
                    accrual: Accrual::default(),
                    in_flight: 0,
                    cost_ms: None,
                    measured_at: None,
                },
            })
            .collect();
        self.ring = Ring::new(self.hosts.iter().map(|h| h.info.id.as_str()));
        self.invalidate();
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.hosts.iter().map(|h| &h.info)
    }

    /// The endpoint of a pick.
    pub fn endpoint(&self, pick: Pick) -> &Endpoint {
        &self.hosts[pick.index].info
    }

    /// Requests in flight to `id`.
    pub fn in_flight(&self, id: &str) -> Option<u32> {
        self.host(id).map(|i| self.hosts[i].in_flight)
    }

    /// Marks an endpoint healthy or not (unknown ids are ignored).
    pub fn set_health(&mut self, id: &str, healthy: bool) {
        if let Some(i) = self.host(id) {
            if self.hosts[i].healthy != healthy {
                self.hosts[i].healthy = healthy;
                self.invalidate();
            }
        }
    }

    /// Follows an event: breaker and route decisions, the upstream's
    /// topology and health. Everything else, and events about other
    /// services, are ignored.
    pub fn apply(&mut self, event: &Event) {
        match &event.data {
            Data::Breaker(d) => self.apply_breaker(d),
            Data::Route(d) if event.subject == self.config.service => self.apply_route(d),
            Data::Topology(t) if event.subject == self.config.service => self.apply_topology(t),
            Data::Health(h) if event.subject == self.config.service => {
                if let Some(id) = &h.instance {
                    let up = !matches!(h.status, HealthStatus::Unhealthy | HealthStatus::Offline);
                    self.set_health(id, up);
                }
            }
            _ => {}
        }
    }

    /// Follows a breaker decision that concerns this client.
    pub fn apply_breaker(&mut self, d: &BreakerDecision) {
        let service = self.config.service.as_str();
        match d.scope {
            Scope::System if d.target == SYSTEM_SUBJECT => self.system.apply(d),
            Scope::Service if d.target == service => self.service.apply(d),
            Scope::Edge => {
                let mine = self
                    .config
                    .caller
                    .as_deref()
                    .is_some_and(|c| d.target.split_once("->") == Some((c, service)));
                if mine {
                    self.edge.apply(d);
                }
            }
            Scope::Instance => {
                if let Some((svc, id)) = d.target.split_once('/') {
                    if svc == service {
                        if let Some(i) = self.host(id) {
                            self.hosts[i].gate.apply(d);
                            self.invalidate();
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Follows a route decision for this service.
    pub fn apply_route(&mut self, d: &RouteDecision) {
        self.ejected = d
            .ejected
            .iter()
            .map(|e| (e.instance.clone(), e.until))
            .collect();
        self.route = Some(d.clone());
        self.invalidate();
    }

    fn apply_topology(&mut self, t: &Topology) {
        let endpoints = t
            .instances
            .iter()
            .map(|i| Endpoint {
                id: i.id.clone(),
                region: i.region.clone(),
                version: i.version.clone(),
                weight: 1,
            })
            .collect();
        self.set_endpoints(endpoints);
    }

    fn host(&self, id: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.info.id == id)
    }

    fn invalidate(&mut self) {
        self.plan = None;
    }

    fn plan(&mut self, now: Timestamp) -> &Plan {
        let stale = match &self.plan {
            None => true,
            Some(p) => p.valid_until.is_some_and(|t| now >= t),
        };
        if stale {
            let locality = (self.config.strategy == Strategy::LocalityPriority).then(|| {
                (
                    self.config.local_region.as_deref().unwrap_or(""),
                    self.config.overprovisioning,
                    self.config.panic_threshold,
                )
            });
            let plan = plan::build(
                &self.hosts,
                &PlanInput {
                    route: self.route.as_ref(),
                    ejected: &self.ejected,
                    locality,
                    now,
                },
            );
            if self.cursors.len() != plan.groups.len() {
                self.cursors = vec![0; plan.groups.len()];
                self.wrrs = vec![SmoothWrr::default(); plan.groups.len()];
                self.group_wrr.reset();
                self.group_cursor = 0;
            }
            self.plan = Some(plan);
        }
        self.plan.as_ref().expect("plan just built")
    }

    /// Chooses an endpoint for a request at `now`; `key` is the sticky key
    /// for `ring_hash` (a request without one is placed at random).
    pub fn pick(&mut self, now: Timestamp, key: Option<&[u8]>) -> Result<Pick, Refusal> {
        // The system breaker refuses calls only when an operator forces it
        // open (a kill switch). Opened by the share of tripped services it
        // is a signal, not a gate: refusing every call everywhere, the
        // entry's too, turns a partial outage into a total one, and with no
        // calls no service can probe its way back, so it never closes (the
        // simulator's traffic spike stayed down to the end of the run).
        let kill_switch = self.system.state() == BreakerState::ForcedOpen;
        for (gate, scope, target) in [
            (&self.system, Scope::System, SYSTEM_SUBJECT),
            (&self.service, Scope::Service, self.config.service.as_str()),
        ] {
            if !gate.would_admit() && (scope != Scope::System || kill_switch) {
                return Err(refused(gate, scope, target.to_owned()));
            }
        }
        if !self.edge.would_admit() {
            let target = format!(
                "{}->{}",
                self.config.caller.as_deref().unwrap_or(""),
                self.config.service
            );
            return Err(refused(&self.edge, Scope::Edge, target));
        }
        let probing = [&self.service, &self.edge]
            .iter()
            .any(|g| g.state() == BreakerState::HalfOpen);
        if let (Some(t), false) = (self.throttle.as_mut(), probing) {
            let second = now.epoch_second();
            if !t.admit(second, unit(&mut self.rng)) {
                return Err(Refusal::Throttled {
                    service: self.config.service.clone(),
                    percent: t.probability(second) * 100.0,
                });
            }
        }
        let strategy = self.config.strategy;
        self.plan(now);
        let plan = self.plan.as_ref().expect("plan built");
        let g = match plan.groups.len() {
            0 => {
                return Err(Refusal::NoEndpoint {
                    service: self.config.service.clone(),
                    known: self.hosts.len(),
                })
            }
            1 => 0,
            _ => match &plan.cycle {
                Some(c) => {
                    let g = c[self.group_cursor % c.len()] as usize;
                    self.group_cursor = (self.group_cursor + 1) % c.len();
                    g
                }
                None => self.group_wrr.pick(&plan.weights).unwrap_or(0),
            },
        };
        let group = &plan.groups[g];
        let members = &group.members;
        let n = members.len();
        let index = match strategy {
            Strategy::RoundRobin | Strategy::LocalityPriority | Strategy::CanarySplit => {
                let c = &mut self.cursors[g];
                let i = members[*c % n];
                *c = (*c + 1) % n;
                i
            }
            Strategy::Weighted => match &group.cycle {
                Some(c) => {
                    let k = &mut self.cursors[g];
                    let i = members[c[*k % c.len()] as usize];
                    *k = (*k + 1) % c.len();
                    i
                }
                None => members[self.wrrs[g].pick(&group.weights).unwrap_or(0)],
            },
            Strategy::Random => members[below(&mut self.rng, n)],
            Strategy::LeastRequest | Strategy::LatencyEwma => {
                let (a, b) = two(&mut self.rng, n);
                let (a, b) = (members[a], members[b]);
                let cost = |i: usize| {
                    let h = &self.hosts[i];
                    let load = f64::from(h.in_flight) + 1.0;
                    if strategy == Strategy::LeastRequest {
                        return load;
                    }
                    let rtt = match (h.cost_ms, h.measured_at) {
                        (Some(c), Some(at)) => {
                            strategy::decayed(c, now.millis_since(at), self.config.ewma_tau_ms)
                        }
                        _ => self.config.default_rtt_ms,
                    };
                    rtt * load
                };
                if cost(b) < cost(a) {
                    b
                } else {
                    a
                }
            }
            Strategy::RingHash => match key {
                Some(k) => {
                    let group_of = &plan.group_of;
                    self.ring
                        .pick(k, |i| group_of[i] == g as u32)
                        .unwrap_or(members[0])
                }
                None => members[below(&mut self.rng, n)],
            },
        };
        let mut probe = false;
        if self.hosts[index].gate.admit() == Admission::Probe {
            probe = true;
            if !self.hosts[index].gate.would_admit() {
                // Its last probe: out of the plan until the next decision.
                self.invalidate();
            }
        }
        if kill_switch {
            probe |= self.system.admit() == Admission::Probe;
        }
        for gate in [&mut self.service, &mut self.edge] {
            probe |= gate.admit() == Admission::Probe;
        }
        self.hosts[index].in_flight += 1;
        Ok(Pick { index, probe })
    }

    /// Reports that a picked request ended at `now` after `latency_ms`.
    pub fn complete(&mut self, pick: Pick, now: Timestamp, latency_ms: f64, outcome: Outcome) {
        let rejected = outcome == Outcome::Rejected;
        if let (Some(t), false) = (self.throttle.as_mut(), rejected) {
            t.accepted(now.epoch_second());
        }
        if let Some(c) = self.config.accrual {
            if self.hosts[pick.index].accrual.record(now, rejected, &c) {
                let out = self.hosts.iter().filter(|h| h.accrual.is_out(now)).count();
                let peers = self
                    .hosts
                    .iter()
                    .enumerate()
                    .filter(|&(i, h)| i != pick.index && h.healthy && !h.accrual.is_out(now))
                    .map(|(_, h)| h.accrual.rejected());
                if out < accrual::cap(self.hosts.len(), &c) && accrual::is_outlier(peers, &c) {
                    let draw = unit(&mut self.rng);
                    self.hosts[pick.index].accrual.take_out(now, draw, &c);
                    self.invalidate();
                }
            }
        }
        let tau = self.config.ewma_tau_ms;
        let h = &mut self.hosts[pick.index];
        h.in_flight = h.in_flight.saturating_sub(1);
        if latency_ms.is_finite() && latency_ms >= 0.0 {
            let latency_ms = if rejected {
                latency_ms.max(self.config.rejected_cost_ms)
            } else {
                latency_ms
            };
            let elapsed = h.measured_at.map_or(0.0, |t| now.millis_since(t).max(0.0));
            h.cost_ms = Some(match h.cost_ms {
                None => latency_ms,
                Some(c) => strategy::peak_ewma(c, latency_ms, elapsed, tau),
            });
            h.measured_at = Some(now);
        }
    }
}

fn refused(gate: &Gate, scope: Scope, target: String) -> Refusal {
    Refusal::Breaker {
        scope,
        target,
        state: gate.state().as_str(),
    }
}

/// Uniform in [0, 1), from the top 53 bits of one draw.
pub fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻³²).
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Two distinct indices in `0..n` (the same one when `n` is 1).
fn two(rng: &mut ChaCha8Rng, n: usize) -> (usize, usize) {
    if n < 2 {
        return (0, 0);
    }
    let a = below(rng, n);
    let b = (a + 1 + below(rng, n - 1)) % n;
    (a, b)
}
