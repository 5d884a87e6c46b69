//! The `peers` arm: what people run today, with their documented defaults.
//!
//! * **Hystrix** ([`Hystrix`]), one breaker per caller→callee edge: a 10 s
//!   rolling window in 1 s buckets; at 20 requests or more and 50 % errors or
//!   more it opens for 5 s (`sleepWindowInMilliseconds`), then lets a single
//!   probe through: success closes it (counts reset), failure re-opens it.
//!   Refused calls fail at once (the fallback is the caller's `critical`).
//! * **Envoy outlier detection** ([`Envoy`]), per edge cluster, with
//!   round-robin balancing: 5 consecutive failures (5xx, resets and local
//!   timeouts alike, Envoy's default without `split_external_local_origin_errors`)
//!   eject a host for 30 s × the times it was ejected (capped at 300 s; the
//!   multiplier drops by one per 10 s interval spent back in service); at
//!   most 10 % of a cluster's hosts are out at once, and one always may be.
//! * **Flagger** ([`Flagger`]) for canary deploys: every 60 s it checks the
//!   canary's error rate (limit 1 %) and p99 (limit 500 ms); a failed check
//!   stops the rollout advancing, a passing one lets it go on; at 5 failed
//!   checks (`threshold`) it routes all traffic back to the primary. A
//!   deploy of every instance at once has no canary, so Flagger has nothing
//!   to analyse.

use super::policy::{Action, Interval, Policy, RoundRobin, WorldEvent};
use super::rollout::DeployStep;
use super::windows::Hist;
use super::world::World;
use crate::client::Outcome;

const HYSTRIX_BUCKET_MS: f64 = 1_000.0;
const HYSTRIX_BUCKETS: usize = 10;
const HYSTRIX_VOLUME: u64 = 20;
const HYSTRIX_ERROR_PERCENT: f64 = 50.0;
const HYSTRIX_SLEEP_MS: f64 = 5_000.0;

const ENVOY_CONSECUTIVE_5XX: u32 = 5;
const ENVOY_BASE_EJECTION_MS: f64 = 30_000.0;
const ENVOY_MAX_EJECTION_MS: f64 = 300_000.0;
const ENVOY_MAX_EJECTION_PERCENT: f64 = 10.0;
const ENVOY_INTERVAL_MS: f64 = 10_000.0;

const FLAGGER_INTERVAL_MS: f64 = 60_000.0;
const FLAGGER_MAX_ERROR_PERCENT: f64 = 1.0;
const FLAGGER_MAX_P99_MS: f64 = 500.0;
const FLAGGER_THRESHOLD: u32 = 5;

#[derive(Clone, Debug, PartialEq)]
enum Circuit {
    Closed,
    Open { until: f64 },
    Probing,
}

/// One Hystrix command's breaker.
#[derive(Clone, Debug)]
pub struct Hystrix {
    circuit: Circuit,
    /// (bucket number, requests, errors), a ring.
    buckets: [(i64, u64, u64); HYSTRIX_BUCKETS],
}

impl Default for Hystrix {
    fn default() -> Self {
        Self {
            circuit: Circuit::Closed,
            buckets: [(-1, 0, 0); HYSTRIX_BUCKETS],
        }
    }
}

impl Hystrix {
    /// Whether a call at `now` may go.
    pub fn allow(&mut self, now: f64) -> bool {
        match self.circuit {
            Circuit::Closed => true,
            Circuit::Open { until } if now >= until => {
                self.circuit = Circuit::Probing;
                true
            }
            _ => false,
        }
    }

    /// Records a call's outcome; returns true when the breaker opens.
    pub fn record(&mut self, ok: bool, now: f64) -> bool {
        if self.circuit == Circuit::Probing {
            if ok {
                self.circuit = Circuit::Closed;
                self.buckets = [(-1, 0, 0); HYSTRIX_BUCKETS];
                return false;
            }
            self.circuit = Circuit::Open {
                until: now + HYSTRIX_SLEEP_MS,
            };
            return true;
        }
        let n = (now / HYSTRIX_BUCKET_MS) as i64;
        let b = &mut self.buckets[n.rem_euclid(HYSTRIX_BUCKETS as i64) as usize];
        if b.0 != n {
            *b = (n, 0, 0);
        }
        b.1 += 1;
        b.2 += u64::from(!ok);
        if self.circuit != Circuit::Closed {
            return false;
        }
        let (requests, errors) = self
            .buckets
            .iter()
            .filter(|b| b.0 > n - HYSTRIX_BUCKETS as i64)
            .fold((0, 0), |(r, e), b| (r + b.1, e + b.2));
        if requests >= HYSTRIX_VOLUME
            && errors as f64 * 100.0 >= HYSTRIX_ERROR_PERCENT * requests as f64
        {
            self.circuit = Circuit::Open {
                until: now + HYSTRIX_SLEEP_MS,
            };
            return true;
        }
        false
    }
}

/// Envoy's outlier record of one host in one cluster.
#[derive(Clone, Debug, Default)]
struct Host {
    consecutive: u32,
    ejected_until: f64,
    times: u32,
}

/// Envoy outlier detection for one cluster (edge).
#[derive(Clone, Debug, Default)]
pub struct Envoy {
    hosts: Vec<Host>,
}

impl Envoy {
    fn ejected(&self, i: usize, now: f64) -> bool {
        now < self.hosts[i].ejected_until
    }

    /// Records an outcome on host `i`; returns the ejection's length when
    /// it ejects the host.
    fn record(&mut self, i: usize, ok: bool, now: f64) -> Option<f64> {
        if ok {
            self.hosts[i].consecutive = 0;
            return None;
        }
        self.hosts[i].consecutive += 1;
        if self.hosts[i].consecutive < ENVOY_CONSECUTIVE_5XX || self.ejected(i, now) {
            return None;
        }
        let out = (0..self.hosts.len())
            .filter(|h| self.ejected(*h, now))
            .count();
        let cap = ((self.hosts.len() as f64 * ENVOY_MAX_EJECTION_PERCENT / 100.0) as usize).max(1);
        if out >= cap {
            return None;
        }
        let h = &mut self.hosts[i];
        h.times += 1;
        h.consecutive = 0;
        let length = (ENVOY_BASE_EJECTION_MS * f64::from(h.times)).min(ENVOY_MAX_EJECTION_MS);
        h.ejected_until = now + length;
        Some(length)
    }

    /// One analysis interval: hosts back in service drop a multiplier.
    fn interval(&mut self, now: f64) {
        for h in &mut self.hosts {
            if now >= h.ejected_until && h.times > 0 {
                h.times -= 1;
            }
        }
    }
}

/// Flagger's analysis of one canary rollout.
#[derive(Clone, Debug, Default)]
struct Analysis {
    next_check: f64,
    failed: u32,
    requests: u64,
    errors: u64,
    latency: Hist,
    done: bool,
}

/// Flagger's canary analysis for every rollout.
#[derive(Clone, Debug, Default)]
pub struct Flagger {
    analyses: Vec<Option<Analysis>>,
}

/// The `peers` arm.
pub struct Peers {
    rr: RoundRobin,
    hystrix: Vec<Hystrix>,
    envoy: Vec<Envoy>,
    flagger: Flagger,
    actions: Vec<Action>,
    next_envoy_interval: f64,
}

impl Peers {
    /// For `w`.
    pub fn new(w: &World) -> Self {
        Self {
            rr: RoundRobin::new(w),
            hystrix: vec![Hystrix::default(); w.edges.len()],
            envoy: w
                .edges
                .iter()
                .map(|e| Envoy {
                    hosts: vec![Host::default(); w.services[e.to].instances.len()],
                })
                .collect(),
            flagger: Flagger::default(),
            actions: Vec::new(),
            next_envoy_interval: ENVOY_INTERVAL_MS,
        }
    }
}

impl Policy for Peers {
    fn pick(&mut self, w: &World, edge: usize, now: f64) -> Option<usize> {
        if w.edges[edge].from.is_some() && !self.hystrix[edge].allow(now) {
            return None;
        }
        let first = w.services[w.edges[edge].to].instances.start;
        let envoy = &self.envoy[edge];
        Some(self.rr.next(w, edge, |i| envoy.ejected(i - first, now)))
    }

    fn complete(
        &mut self,
        w: &World,
        edge: usize,
        instance: usize,
        outcome: Outcome,
        _ms: f64,
        now: f64,
    ) {
        let ok = outcome == Outcome::Ok;
        let e = &w.edges[edge];
        if e.from.is_some() && self.hystrix[edge].record(ok, now) {
            self.actions.push(Action {
                t: now,
                service: e.to,
                detect: true,
                mitigate: true,
                label: format!("Hystrix opens {}", e.name),
            });
        }
        let first = w.services[e.to].instances.start;
        if let Some(length) = self.envoy[edge].record(instance - first, ok, now) {
            self.actions.push(Action {
                t: now,
                service: e.to,
                detect: true,
                mitigate: true,
                label: format!(
                    "Envoy ejects {} for {} s ({})",
                    w.instances[instance].id,
                    length / 1000.0,
                    e.name
                ),
            });
        }
    }

    fn interval(&mut self, i: Interval<'_>) {
        while self.next_envoy_interval <= i.now {
            for e in &mut self.envoy {
                e.interval(self.next_envoy_interval);
            }
            self.next_envoy_interval += ENVOY_INTERVAL_MS;
        }
        let analyses = &mut self.flagger.analyses;
        analyses.resize(i.rollouts.all.len(), None);
        for (t, ev) in i.events {
            if let WorldEvent::Deploy(r, DeployStep::Started(_)) = ev {
                if i.rollouts.all[*r].canary {
                    analyses[*r] = Some(Analysis {
                        next_check: t + FLAGGER_INTERVAL_MS,
                        ..Analysis::default()
                    });
                }
            }
        }
        for (key, acc) in i.windows.touched() {
            if key.version != 1 {
                continue;
            }
            let service = i.world.instances[key.instance].service;
            if let Some(r) = i.rollouts.active(service) {
                if let Some(a) = analyses[r].as_mut() {
                    a.requests += acc.requests;
                    a.errors += acc.errors;
                    a.latency.merge(&acc.latency);
                }
            }
        }
        for (r, slot) in analyses.iter_mut().enumerate() {
            let Some(a) = slot.as_mut().filter(|a| !a.done && a.next_check <= i.now) else {
                continue;
            };
            a.next_check += FLAGGER_INTERVAL_MS;
            if a.requests == 0 {
                continue;
            }
            let service = i.rollouts.all[r].service;
            let error = a.errors as f64 * 100.0 / a.requests as f64;
            let p99 = a.latency.quantile(0.99).unwrap_or(0.0);
            let failed = error > FLAGGER_MAX_ERROR_PERCENT || p99 > FLAGGER_MAX_P99_MS;
            (a.requests, a.errors, a.latency) = (0, 0, Hist::default());
            if !failed {
                i.rollouts.resume(r);
                if i.rollouts.all[r].share >= 1.0 {
                    a.done = true;
                }
                continue;
            }
            a.failed += 1;
            i.rollouts.halt(r);
            let version = i.rollouts.all[r].version.clone();
            self.actions.push(Action {
                t: i.now,
                service,
                detect: true,
                mitigate: false,
                label: format!(
                    "Flagger check {} of {FLAGGER_THRESHOLD} failed on {version}: errors {error:.1}%, p99 {p99:.0} ms",
                    a.failed
                ),
            });
            if a.failed >= FLAGGER_THRESHOLD {
                a.done = true;
                i.rollouts
                    .set_share(r, 0.0, i.now + i.actuation_delay, None);
                self.actions.push(Action {
                    t: i.now + i.actuation_delay,
                    service,
                    detect: false,
                    mitigate: true,
                    label: format!("Flagger rolls {version} back"),
                });
            }
        }
    }

    fn actions(&self) -> &[Action] {
        &self.actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hystrix_opens_at_volume_and_rate_then_probes_once() {
        let mut h = Hystrix::default();
        for k in 0..19 {
            assert!(h.allow(f64::from(k)));
            assert!(!h.record(false, f64::from(k)), "below the volume");
        }
        assert!(h.record(false, 19.0), "20 requests, all failed");
        assert!(!h.allow(100.0));
        assert!(h.allow(5_019.0), "the probe");
        assert!(!h.allow(5_019.5), "only one");
        assert!(h.record(false, 5_020.0), "a failed probe re-opens");
        assert!(h.allow(10_020.0));
        assert!(!h.record(true, 10_021.0));
        assert!(h.allow(10_022.0), "closed again");
    }

    #[test]
    fn hystrix_forgets_outside_its_ten_seconds() {
        let mut h = Hystrix::default();
        for k in 0..15 {
            h.record(false, f64::from(k));
        }
        for k in 0..10 {
            assert!(
                !h.record(false, 20_000.0 + f64::from(k)),
                "old failures gone"
            );
        }
    }

    #[test]
    fn envoy_ejects_after_five_in_a_row_within_its_cap() {
        let mut e = Envoy {
            hosts: vec![Host::default(); 4],
        };
        for _ in 0..4 {
            assert_eq!(e.record(0, false, 0.0), None);
        }
        assert_eq!(e.record(0, false, 0.0), Some(30_000.0));
        for _ in 0..5 {
            assert_eq!(e.record(1, false, 1.0), None, "10 % of 4: one host at most");
        }
        e.interval(40_000.0);
        for _ in 0..5 {
            e.record(0, false, 40_000.0);
        }
        assert!(
            e.ejected(0, 69_000.0),
            "second ejection: 30 s x 1 after the decrement"
        );
        assert!(!e.ejected(0, 70_000.0));
    }
}
