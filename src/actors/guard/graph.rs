//! The dependency graph the guard reasons over: who calls whom, declared
//! and learned.
//!
//! Declared edges come from `faultline.topology` (a service lists its
//! callees) and stay until the service declares again without them. Learned
//! edges come from the `caller` field of requests and windows, carry the
//! traffic seen on them (calls, failures, a latency EWMA) and their
//! last-seen time, and age out when nothing has been seen for a while: a
//! dependency removed from the code should not keep blaming its old callee.
//!
//! Cycles are ordinary (A calls B calls A happens with callbacks and shared
//! caches): every walk keeps a visited set, so traversals terminate and
//! visit each service once. Everything is in B-tree maps, so every
//! traversal order is deterministic.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::events::observation::Dependency;
use crate::events::Timestamp;

/// Weight of the newest latency sample in an edge's EWMA.
const LATENCY_ALPHA: f64 = 0.2;

/// One caller→callee edge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Declared by the caller's topology.
    pub declared: bool,
    /// Declared as critical (the caller cannot serve without it).
    pub critical: bool,
    /// Calls seen on it.
    pub calls: u64,
    /// Failed calls among them.
    pub failures: u64,
    /// EWMA of observed latency, ms.
    pub latency_ms: Option<f64>,
    /// When traffic was last seen on it.
    pub last_seen: Option<Timestamp>,
    /// Calls in the guard's open interval.
    #[serde(default)]
    pub window_calls: u64,
    /// Failed calls in the guard's open interval.
    #[serde(default)]
    pub window_failures: u64,
}

impl Edge {
    /// Failed calls in percent; `None` before any call.
    pub fn error_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| 100.0 * self.failures as f64 / self.calls as f64)
    }
}

/// The graph: edges keyed by (caller, callee).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    edges: BTreeMap<(String, String), Edge>,
    services: BTreeSet<String>,
}

impl Graph {
    /// Replaces the edges `service` declares with `deps` (learned edges keep
    /// their traffic; an edge no longer declared stays only if learned).
    pub fn declare(&mut self, service: &str, deps: &[Dependency]) {
        self.services.insert(service.to_owned());
        for ((caller, _), e) in self.edges.iter_mut() {
            if caller == service {
                e.declared = false;
                e.critical = false;
            }
        }
        for d in deps {
            self.services.insert(d.callee.clone());
            let e = self
                .edges
                .entry((service.to_owned(), d.callee.clone()))
                .or_default();
            e.declared = true;
            e.critical = d.critical;
        }
        self.edges
            .retain(|_, e| e.declared || e.last_seen.is_some());
    }

    /// Records traffic on caller→callee.
    pub fn observe(
        &mut self,
        caller: &str,
        callee: &str,
        now: Timestamp,
        calls: u64,
        failures: u64,
        latency_ms: Option<f64>,
    ) {
        self.add_service(caller);
        self.add_service(callee);
        let key = (caller.to_owned(), callee.to_owned());
        let e = self.edges.entry(key).or_default();
        e.calls += calls;
        e.failures += failures.min(calls);
        e.window_calls += calls;
        e.window_failures += failures.min(calls);
        if let Some(l) = latency_ms.filter(|l| l.is_finite() && *l >= 0.0) {
            e.latency_ms = Some(match e.latency_ms {
                Some(m) => m + LATENCY_ALPHA * (l - m),
                None => l,
            });
        }
        e.last_seen = Some(e.last_seen.map_or(now, |t| t.max(now)));
    }

    /// Drops learned edges not seen since `cutoff` (declared edges stay,
    /// and forget their stale traffic).
    pub fn age(&mut self, cutoff: Timestamp) {
        self.edges.retain(|_, e| {
            let stale = e.last_seen.is_some_and(|t| t < cutoff);
            if stale && e.declared {
                *e = Edge {
                    declared: true,
                    critical: e.critical,
                    ..Edge::default()
                };
            }
            !stale || e.declared
        });
    }

    /// Starts a new interval: every edge's window counts back to zero.
    pub fn reset_windows(&mut self) {
        for e in self.edges.values_mut() {
            e.window_calls = 0;
            e.window_failures = 0;
        }
    }

    /// Tier and revenue need a service to exist before it is seen in traffic.
    pub fn add_service(&mut self, service: &str) {
        if !self.services.contains(service) {
            self.services.insert(service.to_owned());
        }
    }

    /// The edge caller→callee.
    pub fn edge(&self, caller: &str, callee: &str) -> Option<&Edge> {
        self.edges.get(&(caller.to_owned(), callee.to_owned()))
    }

    /// Every service seen, in name order.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(String::as_str)
    }

    /// The services `service` calls, in name order.
    pub fn callees<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .range((service.to_owned(), String::new())..)
            .take_while(move |((c, _), _)| c == service)
            .map(|((_, callee), _)| callee.as_str())
    }

    /// The services that call `service`, in name order.
    pub fn callers<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .keys()
            .filter(move |(_, callee)| callee == service)
            .map(|(caller, _)| caller.as_str())
    }

    /// Every service that depends on `root`, directly or transitively
    /// (its blast radius), without `root` itself.
    pub fn dependents(&self, root: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([root.to_owned()]);
        while let Some(s) = queue.pop_front() {
            for c in self.callers(&s) {
                if c != root && seen.insert(c.to_owned()) {
                    queue.push_back(c.to_owned());
                }
            }
        }
        seen
    }

    /// Edges in key order.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str, &Edge)> {
        self.edges
            .iter()
            .map(|((a, b), e)| (a.as_str(), b.as_str(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(callee: &str) -> Dependency {
        Dependency {
            callee: callee.into(),
            critical: false,
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn declared_and_learned_edges_meet() {
        let mut g = Graph::default();
        g.declare("web", &[dep("api")]);
        g.observe("api", "db", t(1), 100, 5, Some(20.0));
        g.observe("api", "db", t(2), 100, 15, Some(40.0));
        assert_eq!(g.callees("web").collect::<Vec<_>>(), ["api"]);
        let e = g.edge("api", "db").unwrap();
        assert_eq!((e.calls, e.failures, e.error_rate()), (200, 20, Some(10.0)));
        assert_eq!(e.latency_ms, Some(24.0));
        assert_eq!(e.last_seen, Some(t(2)));
        assert_eq!(g.services().collect::<Vec<_>>(), ["api", "db", "web"]);
    }

    #[test]
    fn blast_radius_is_transitive_and_survives_cycles() {
        let mut g = Graph::default();
        g.declare("web", &[dep("api")]);
        g.declare("api", &[dep("db"), dep("cache")]);
        g.declare("cache", &[dep("api")]); // a cycle api <-> cache
        g.declare("batch", &[dep("db")]);
        let radius: Vec<String> = g.dependents("db").into_iter().collect();
        assert_eq!(radius, ["api", "batch", "cache", "web"]);
        assert!(g.dependents("web").is_empty());
        let around: Vec<String> = g.dependents("api").into_iter().collect();
        assert_eq!(around, ["cache", "web"]);
    }

    #[test]
    fn stale_learned_edges_age_out_declared_ones_stay() {
        let mut g = Graph::default();
        g.declare("web", &[dep("api")]);
        g.observe("web", "api", t(1), 10, 0, None);
        g.observe("web", "old", t(1), 10, 0, None);
        g.observe("web", "new", t(100), 10, 0, None);
        g.age(t(50));
        assert_eq!(g.callees("web").collect::<Vec<_>>(), ["api", "new"]);
        assert_eq!(g.edge("web", "api").unwrap().calls, 0);
    }

    #[test]
    fn redeclaring_drops_edges_that_were_only_declared() {
        let mut g = Graph::default();
        g.declare("web", &[dep("api"), dep("legacy")]);
        g.observe("web", "api", t(1), 1, 0, None);
        g.declare("web", &[]);
        assert_eq!(g.callees("web").collect::<Vec<_>>(), ["api"]);
        assert!(!g.edge("web", "api").unwrap().declared);
    }
}
