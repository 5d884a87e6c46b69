//! The scenario compiled for simulation: services, instances and call
//! edges as indices, so that a request costs no string work or map lookup.
//!
//! Names are kept for events and reports. Instances are ordered by
//! service, then region (name order), then number, which is the order the
//! fault `instance` fields count along ([`Scenario::instances_of`]); their
//! ids read `cart-eu-0`. Entry traffic arrives over an edge with no caller,
//! so that every hop, the first included, goes through the arm's policy.

use super::scenario::{Scenario, ServiceSpec};

/// A service, by index.
#[derive(Clone, Debug)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// What the scenario says of it.
    pub spec: ServiceSpec,
    /// Its instances: `instances.start..instances.end` in [`World::instances`].
    pub instances: std::ops::Range<usize>,
    /// Edges it calls, in declaration order.
    pub calls: Vec<usize>,
}

/// An instance, by index.
#[derive(Clone, Debug)]
pub struct Instance {
    /// `service-region-n`.
    pub id: String,
    /// Its service.
    pub service: usize,
    /// Its region, an index in [`World::regions`].
    pub region: usize,
}

/// A call edge; entry edges have no caller.
#[derive(Clone, Debug)]
pub struct Edge {
    /// The caller, `None` for traffic from outside.
    pub from: Option<usize>,
    /// The service called.
    pub to: usize,
    /// Calls per request of the caller.
    pub calls: f64,
    /// The caller gives up after this long, ms.
    pub timeout_ms: f64,
    /// Retries after a failure.
    pub retries: u32,
    /// First backoff, ms (doubling).
    pub backoff_ms: f64,
    /// Whether the caller fails with it.
    pub critical: bool,
    /// `caller->callee`, or the callee's name for an entry edge.
    pub name: String,
}

/// Traffic from outside into one service.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The entry edge.
    pub edge: usize,
    /// Mean requests per second.
    pub rps: f64,
    /// Diurnal swing, period and peak, ms.
    pub diurnal: Option<(f64, f64, f64)>,
}

/// The compiled scenario.
#[derive(Clone, Debug)]
pub struct World {
    /// Region names.
    pub regions: Vec<String>,
    /// Services in name order.
    pub services: Vec<Service>,
    /// Instances (see the module doc for the order).
    pub instances: Vec<Instance>,
    /// Dependency edges in declaration order, then entry edges.
    pub edges: Vec<Edge>,
    /// Entry traffic in name order.
    pub entries: Vec<Entry>,
}

impl World {
    /// Compiles a validated scenario.
    pub fn new(s: &Scenario) -> Self {
        let regions = s.regions.clone();
        let mut services = Vec::new();
        let mut instances = Vec::new();
        for (i, (name, spec)) in s.services.iter().enumerate() {
            let start = instances.len();
            for (region, n) in &spec.instances {
                let r = regions.iter().position(|x| x == region).unwrap_or(0);
                for k in 0..*n {
                    instances.push(Instance {
                        id: format!("{name}-{region}-{k}"),
                        service: i,
                        region: r,
                    });
                }
            }
            services.push(Service {
                name: name.clone(),
                spec: spec.clone(),
                instances: start..instances.len(),
                calls: Vec::new(),
            });
        }
        let names: Vec<String> = services.iter().map(|s: &Service| s.name.clone()).collect();
        let index = |name: &str| names.iter().position(|s| s == name).expect("validated");
        let mut edges: Vec<Edge> = s
            .dependencies
            .iter()
            .map(|d| Edge {
                from: Some(index(&d.from)),
                to: index(&d.to),
                calls: d.calls,
                timeout_ms: d.timeout.ms() as f64,
                retries: d.retries,
                backoff_ms: d.backoff.ms() as f64,
                critical: d.critical,
                name: format!("{}->{}", d.from, d.to),
            })
            .collect();
        for (e, edge) in edges.iter().enumerate() {
            let from = edge.from.expect("dependency edge");
            services[from].calls.push(e);
        }
        let mut entries = Vec::new();
        for (name, t) in &s.traffic {
            let to = index(name);
            entries.push(Entry {
                edge: edges.len(),
                rps: t.rps,
                diurnal: t
                    .diurnal
                    .as_ref()
                    .map(|d| (d.amplitude, d.period.ms() as f64, d.peak_at.ms() as f64)),
            });
            edges.push(Edge {
                from: None,
                to,
                calls: 1.0,
                // Users wait as long as the entry service takes.
                timeout_ms: f64::INFINITY,
                retries: 0,
                backoff_ms: 0.0,
                critical: true,
                name: name.clone(),
            });
        }
        Self {
            regions,
            services,
            instances,
            edges,
            entries,
        }
    }

    /// The index of service `name`.
    pub fn service(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// The edge `caller->callee`.
    pub fn edge(&self, name: &str) -> Option<usize> {
        self.edges
            .iter()
            .position(|e| e.from.is_some() && e.name == name)
    }

    /// Every service that calls `service`, directly or not (its blast
    /// radius), with `service` itself first.
    pub fn upstream(&self, service: usize) -> Vec<usize> {
        let mut out = vec![service];
        let mut i = 0;
        while i < out.len() {
            let s = out[i];
            for e in &self.edges {
                if let Some(f) = e.from {
                    if e.to == s && !out.contains(&f) {
                        out.push(f);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// Entry rate of `entry` at `t_ms` before faults (diurnal shape).
    pub fn entry_rps(&self, entry: &Entry, t_ms: f64) -> f64 {
        match entry.diurnal {
            None => entry.rps,
            Some((amplitude, period, peak)) => {
                let phase = std::f64::consts::TAU * (t_ms - peak) / period;
                entry.rps * (1.0 + amplitude * phase.cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = "
name: t
duration: 10m
regions: [eu, us]
services:
  web: {instances: {eu: 2, us: 1}}
  cart: {instances: {us: 1, eu: 1}}
  db: {instances: {eu: 1}}
dependencies:
  - {from: web, to: cart, retries: 2, timeout: 300ms}
  - {from: cart, to: db, critical: false}
traffic:
  web: {rps: 100, diurnal: {amplitude: 0.5, period: 1h, peak_at: 15m}}
";

    #[test]
    fn instances_edges_and_entries_are_indexed_in_a_fixed_order() {
        let w = World::new(&Scenario::parse(SHOP, "t").unwrap());
        let ids: Vec<&str> = w.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "cart-eu-0",
                "cart-us-0",
                "db-eu-0",
                "web-eu-0",
                "web-eu-1",
                "web-us-0"
            ]
        );
        assert_eq!(w.services[2].instances, 3..6);
        assert_eq!(w.edges.len(), 3);
        assert_eq!(w.edges[0].name, "web->cart");
        assert_eq!(w.edges[0].timeout_ms, 300.0);
        assert!(!w.edges[1].critical);
        assert_eq!(w.edges[2].from, None);
        assert_eq!(w.entries[0].edge, 2);
        assert_eq!(w.services[2].calls, vec![0]);
        assert_eq!(w.edge("cart->db"), Some(1));
        assert_eq!(w.upstream(1), vec![1, 0, 2]);
    }

    #[test]
    fn the_diurnal_cycle_peaks_where_it_says() {
        let w = World::new(&Scenario::parse(SHOP, "t").unwrap());
        let e = &w.entries[0];
        assert!((w.entry_rps(e, 900_000.0) - 150.0).abs() < 1e-9);
        assert!((w.entry_rps(e, 2_700_000.0) - 50.0).abs() < 1e-9);
    }
}
