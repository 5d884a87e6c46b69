//! What the faults do to the world at a given moment.
//!
//! [`Conditions`] is the state of every instance, service, edge and entry
//! at one time: a pure function of the scenario and the time, the same in
//! every arm. Policies never change it; they change only where traffic goes
//! and (through rollbacks) which version serves it. A bad deploy is not a
//! condition but a [`super::rollout::Rollout`], because a rollback ends it.
//!
//! Ramps are linear from the fault's start; a flapping instance is down for
//! the first half of each period. Overlapping faults compound: capacity and
//! latency factors multiply, error rates take the largest.

use super::scenario::{FaultKind, Scenario};
use super::world::World;

/// One fault with its window and its target as indices.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Start, ms.
    pub start: f64,
    /// End, ms.
    pub end: f64,
    /// What it is.
    pub kind: FaultKind,
    /// Its service, when it has one.
    pub service: Option<usize>,
    /// Its instance, for the per-instance kinds.
    pub instance: Option<usize>,
    /// Its region, for a region outage.
    pub region: Option<usize>,
}

/// The faults of a scenario, compiled.
pub fn compile(s: &Scenario, w: &World) -> Vec<Fault> {
    let truths = s.truths();
    s.faults
        .iter()
        .zip(truths)
        .map(|(f, truth)| {
            let service = f.kind.service().and_then(|n| w.service(n));
            let instance = match &f.kind {
                FaultKind::InstanceCrash { instance, .. }
                | FaultKind::FlappingInstance { instance, .. }
                | FaultKind::NoisyNeighbor { instance, .. } => {
                    service.map(|s| w.services[s].instances.start + *instance as usize)
                }
                _ => None,
            };
            let region = match &f.kind {
                FaultKind::RegionOutage { region } => w.regions.iter().position(|r| r == region),
                _ => None,
            };
            Fault {
                start: truth.start_ms as f64,
                end: truth.end_ms as f64,
                kind: f.kind.clone(),
                service,
                instance,
                region,
            }
        })
        .collect()
}

/// The state of the world at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditions {
    /// Per instance: not answering.
    pub down: Vec<bool>,
    /// Per instance: fraction of its capacity left.
    pub capacity: Vec<f64>,
    /// Per service: latency multiple.
    pub latency: Vec<f64>,
    /// Per service: error rate.
    pub errors: Vec<f64>,
    /// Per edge: retries in force, when a fault changes them.
    pub retries: Vec<Option<u32>>,
    /// Per entry: traffic multiple.
    pub traffic: Vec<f64>,
}

impl Conditions {
    /// The healthy world.
    pub fn healthy(w: &World) -> Self {
        Self {
            down: vec![false; w.instances.len()],
            capacity: vec![1.0; w.instances.len()],
            latency: vec![1.0; w.services.len()],
            errors: w.services.iter().map(|s| s.spec.error_rate).collect(),
            retries: vec![None; w.edges.len()],
            traffic: vec![1.0; w.entries.len()],
        }
    }

    /// Sets `self` to the world at `t` ms under `faults`.
    pub fn update(&mut self, w: &World, faults: &[Fault], t: f64) {
        *self = Self::healthy(w);
        for f in faults.iter().filter(|f| f.start <= t && t < f.end) {
            let ramp = |over: u64| {
                if over == 0 {
                    1.0
                } else {
                    ((t - f.start) / over as f64).min(1.0)
                }
            };
            let svc = f.service.unwrap_or(0);
            match &f.kind {
                FaultKind::BadDeploy { .. } => {}
                FaultKind::LatencyLeak { over, factor, .. } => {
                    self.latency[svc] *= 1.0 + (factor - 1.0) * ramp(over.ms());
                }
                FaultKind::ErrorRamp { over, to, .. } => {
                    let base = w.services[svc].spec.error_rate;
                    let rate = base + (to - base) * ramp(over.ms());
                    self.errors[svc] = self.errors[svc].max(rate);
                }
                FaultKind::InstanceCrash { .. } => {
                    if let Some(i) = f.instance {
                        self.down[i] = true;
                    }
                }
                FaultKind::FlappingInstance { period, .. } => {
                    let p = period.ms() as f64;
                    if let Some(i) = f.instance {
                        if (t - f.start) % p < p / 2.0 {
                            self.down[i] = true;
                        }
                    }
                }
                FaultKind::RegionOutage { .. } => {
                    for (i, inst) in w.instances.iter().enumerate() {
                        if Some(inst.region) == f.region {
                            self.down[i] = true;
                        }
                    }
                }
                FaultKind::DependencyBrownout {
                    latency_factor,
                    error_rate,
                    ..
                } => {
                    self.latency[svc] *= latency_factor;
                    self.errors[svc] = self.errors[svc].max(*error_rate);
                }
                FaultKind::RetryStorm {
                    capacity_factor,
                    retries,
                    ..
                } => {
                    for i in w.services[svc].instances.clone() {
                        self.capacity[i] *= capacity_factor;
                    }
                    if let Some(r) = retries {
                        for (e, edge) in w.edges.iter().enumerate() {
                            if edge.to == svc && edge.from.is_some() {
                                self.retries[e] = Some(*r);
                            }
                        }
                    }
                }
                FaultKind::TrafficSpike { factor, .. } => {
                    for (k, entry) in w.entries.iter().enumerate() {
                        if w.edges[entry.edge].to == svc {
                            self.traffic[k] *= factor;
                        }
                    }
                }
                FaultKind::NoisyNeighbor {
                    capacity_factor, ..
                } => {
                    if let Some(i) = f.instance {
                        self.capacity[i] *= capacity_factor;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(faults: &str) -> (World, Vec<Fault>) {
        let text = format!(
            "
name: t
duration: 1h
regions: [eu, us]
services:
  web: {{instances: {{eu: 1, us: 1}}}}
  db: {{instances: {{eu: 2}}, error_rate: 0.01}}
dependencies:
  - {{from: web, to: db, retries: 1}}
traffic:
  web: {{rps: 10}}
faults:
{faults}"
        );
        let s = Scenario::parse(&text, "t").unwrap();
        let w = World::new(&s);
        let f = compile(&s, &w);
        (w, f)
    }

    fn at(w: &World, f: &[Fault], t: f64) -> Conditions {
        let mut c = Conditions::healthy(w);
        c.update(w, f, t);
        c
    }

    #[test]
    fn ramps_grow_linearly_and_end_with_the_fault() {
        let (w, f) = world(
            "  - {kind: error_ramp, service: db, over: 10m, to: 0.51, at: 10m, for: 20m}\n  - {kind: latency_leak, service: web, over: 10m, factor: 3, at: 0s}\n",
        );
        let db = w.service("db").unwrap();
        let web = w.service("web").unwrap();
        assert_eq!(at(&w, &f, 599_999.0).errors[db], 0.01);
        assert!((at(&w, &f, 900_000.0).errors[db] - 0.26).abs() < 1e-9);
        assert!((at(&w, &f, 1_500_000.0).errors[db] - 0.51).abs() < 1e-9);
        assert_eq!(at(&w, &f, 1_800_000.0).errors[db], 0.01);
        assert!((at(&w, &f, 300_000.0).latency[web] - 2.0).abs() < 1e-9);
        assert!((at(&w, &f, 3_000_000.0).latency[web] - 3.0).abs() < 1e-9);
    }

    #[test]
    fn instances_regions_and_flaps_go_down_when_they_should() {
        let (w, f) = world(
            "  - {kind: instance_crash, service: db, instance: 1, at: 1m, for: 1m}\n  - {kind: region_outage, region: us, at: 5m, for: 1m}\n  - {kind: flapping_instance, service: db, period: 20s, at: 10m, for: 1m}\n",
        );
        let c = at(&w, &f, 61_000.0);
        assert_eq!(c.down, vec![false, true, false, false]);
        let c = at(&w, &f, 301_000.0);
        assert_eq!(c.down, vec![false, false, false, true]);
        assert!(at(&w, &f, 605_000.0).down[0]);
        assert!(!at(&w, &f, 615_000.0).down[0]);
        assert!(at(&w, &f, 625_000.0).down[0]);
    }

    #[test]
    fn storms_spikes_and_neighbours_change_capacity_retries_and_traffic() {
        let (w, f) = world(
            "  - {kind: retry_storm, service: db, capacity_factor: 0.4, retries: 3, at: 0s}\n  - {kind: noisy_neighbor, service: db, instance: 0, capacity_factor: 0.5, at: 0s}\n  - {kind: traffic_spike, service: web, factor: 3, at: 0s}\n",
        );
        let c = at(&w, &f, 1.0);
        assert!((c.capacity[0] - 0.2).abs() < 1e-12);
        assert!((c.capacity[1] - 0.4).abs() < 1e-12);
        assert_eq!(c.retries, vec![Some(3), None]);
        assert_eq!(c.traffic, vec![3.0]);
    }
}
