//! Deploys in flight: the deployer's plan, and what policies do to it.
//!
//! A `bad_deploy` fault becomes a [`Rollout`]: a plan of traffic shares for
//! the new version (a canary's steps, or 100 % at once). The deployer
//! follows the plan unless a policy *halts* it (Flagger does not advance
//! after a failed check; faultline's rollback agent takes the deploy over
//! when it starts a rollback) and a policy may *set* the share (a rollback
//! step), which takes effect after the scenario's actuation delay. The
//! version a request meets is drawn with the current share, so a 10 %
//! canary serves 10 % of requests whatever the instance count.

use rand_chacha::ChaCha8Rng;

use super::faults::Fault;
use super::scenario::{DeploySpec, DeployStrategy, FaultKind};
use super::world::World;

/// One deploy of a new version.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// The bad-deploy fault it comes from; `None` for a good deploy.
    pub fault: Option<usize>,
    /// The service.
    pub service: usize,
    /// The new version.
    pub version: String,
    /// The version it replaces.
    pub previous: String,
    /// The new version's error rate.
    pub error_rate: f64,
    /// Its latency multiple.
    pub latency_factor: f64,
    /// Whether it rolls out as a canary.
    pub canary: bool,
    /// (time ms, share 0–1), in time order.
    pub plan: Vec<(f64, f64)>,
    /// Next plan step.
    pub next: usize,
    /// Share of requests on the new version now.
    pub share: f64,
    /// The deployer no longer advances it.
    pub halted: bool,
    /// When its share was last set to 0 by a policy.
    pub reverted_at: Option<f64>,
}

impl Rollout {
    /// A deploy of `version` to `service` from `start` by `strategy`, as
    /// good as the running version.
    fn planned(
        w: &World,
        service: usize,
        version: &str,
        start: f64,
        strategy: &DeployStrategy,
    ) -> Self {
        let spec = &w.services[service].spec;
        let (canary, plan) = match strategy {
            DeployStrategy::AllAtOnce => (false, vec![(start, 1.0)]),
            DeployStrategy::Canary { steps, every } => (
                true,
                steps
                    .iter()
                    .enumerate()
                    .map(|(k, s)| (start + (k as u64 * every.ms()) as f64, s / 100.0))
                    .collect(),
            ),
        };
        Self {
            fault: None,
            service,
            version: version.to_owned(),
            previous: spec.versions.first().cloned().unwrap_or_default(),
            error_rate: spec.error_rate,
            latency_factor: 1.0,
            canary,
            plan,
            next: 0,
            share: 0.0,
            halted: false,
            reverted_at: None,
        }
    }
}

/// What the deployer did, for the events the world publishes.
#[derive(Clone, Debug, PartialEq)]
pub enum DeployStep {
    /// Rollout began at this share.
    Started(f64),
    /// It advanced to this share.
    Progressed(f64),
    /// It reached 100 %.
    Completed,
}

/// A share change a policy asked for, due after the actuation delay.
#[derive(Clone, Debug)]
struct Pending {
    due: f64,
    rollout: usize,
    share: f64,
    ack: Option<String>,
}

/// Every rollout of a run.
#[derive(Clone, Debug, Default)]
pub struct Rollouts {
    /// The rollouts, in fault order.
    pub all: Vec<Rollout>,
    /// Per service, the rollout serving now.
    active: Vec<Option<usize>>,
    pending: Vec<Pending>,
}

impl Rollouts {
    /// The rollouts the bad-deploy faults and the good `deploys` describe;
    /// none has started.
    pub fn new(w: &World, faults: &[Fault], deploys: &[DeploySpec]) -> Self {
        let bad = faults
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match &f.kind {
                FaultKind::BadDeploy {
                    version,
                    error_rate,
                    latency_factor,
                    strategy,
                    ..
                } => {
                    let service = f.service?;
                    let error_rate = error_rate.unwrap_or(w.services[service].spec.error_rate);
                    let r = Rollout::planned(w, service, version, f.start, strategy);
                    Some(Rollout {
                        fault: Some(i),
                        error_rate,
                        latency_factor: *latency_factor,
                        ..r
                    })
                }
                _ => None,
            });
        let good = deploys.iter().filter_map(|d| {
            let service = w.service(&d.service)?;
            let start = d.at.ms() as f64;
            Some(Rollout::planned(w, service, &d.version, start, &d.strategy))
        });
        Self {
            all: bad.chain(good).collect(),
            active: vec![None; w.services.len()],
            pending: Vec::new(),
        }
    }

    /// The rollout serving `service` now, if any.
    pub fn active(&self, service: usize) -> Option<usize> {
        self.active[service]
    }

    /// Advances the deployer and applies due share changes up to `t`;
    /// returns the deploy steps taken and the acknowledgements due.
    pub fn advance(
        &mut self,
        t: f64,
        steps: &mut Vec<(f64, usize, DeployStep)>,
        acks: &mut Vec<(f64, String)>,
    ) {
        for (i, r) in self.all.iter_mut().enumerate() {
            while !r.halted && r.next < r.plan.len() && r.plan[r.next].0 <= t {
                let (at, share) = r.plan[r.next];
                let step = if r.next == 0 {
                    self.active[r.service] = Some(i);
                    DeployStep::Started(share)
                } else {
                    DeployStep::Progressed(share)
                };
                r.share = share;
                r.next += 1;
                steps.push((at, i, step));
                if share >= 1.0 {
                    steps.push((at, i, DeployStep::Completed));
                }
            }
        }
        let mut k = 0;
        while k < self.pending.len() {
            if self.pending[k].due <= t {
                let p = self.pending.remove(k);
                let r = &mut self.all[p.rollout];
                r.share = p.share;
                if p.share == 0.0 && r.reverted_at.is_none() {
                    r.reverted_at = Some(p.due);
                }
                if let Some(id) = p.ack {
                    acks.push((p.due, id));
                }
            } else {
                k += 1;
            }
        }
    }

    /// Stops the deployer advancing `rollout`.
    pub fn halt(&mut self, rollout: usize) {
        self.all[rollout].halted = true;
    }

    /// Lets the deployer advance `rollout` again.
    pub fn resume(&mut self, rollout: usize) {
        if self.all[rollout].reverted_at.is_none() {
            self.all[rollout].halted = false;
        }
    }

    /// Sets `rollout`'s share at `due` (halting it), acknowledging `ack` then.
    pub fn set_share(&mut self, rollout: usize, share: f64, due: f64, ack: Option<String>) {
        self.all[rollout].halted = true;
        self.pending.push(Pending {
            due,
            rollout,
            share: share.clamp(0.0, 1.0),
            ack,
        });
    }

    /// The version a request to `service` meets: 0 the running one, 1 the
    /// new one; with its error rate and latency multiple (before faults).
    pub fn serve(&self, service: usize, rng: &mut ChaCha8Rng) -> Option<&Rollout> {
        let r = &self.all[self.active[service]?];
        (r.share > 0.0 && (r.share >= 1.0 || unit(rng) < r.share)).then_some(r)
    }
}

pub use crate::client::unit;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::faults::compile;
    use crate::simulate::Scenario;
    use rand_chacha::rand_core::SeedableRng;

    fn rollouts() -> Rollouts {
        let s = Scenario::parse(
            "
name: t
duration: 1h
regions: [eu]
services:
  cart: {instances: {eu: 2}, versions: [v7], error_rate: 0.01}
traffic:
  cart: {rps: 10}
faults:
  - {kind: bad_deploy, service: cart, version: v8, latency_factor: 2, at: 1m,
     strategy: {canary: {steps: [10, 50, 100], every: 1m}}}
",
            "t",
        )
        .unwrap();
        let w = World::new(&s);
        Rollouts::new(&w, &compile(&s, &w), &s.deploys)
    }

    #[test]
    fn the_deployer_follows_the_plan_and_says_so() {
        let mut r = rollouts();
        assert_eq!(r.all[0].previous, "v7");
        assert_eq!(r.all[0].error_rate, 0.01);
        let (mut steps, mut acks) = (Vec::new(), Vec::new());
        r.advance(59_999.0, &mut steps, &mut acks);
        assert!(steps.is_empty() && r.active(0).is_none());
        r.advance(200_000.0, &mut steps, &mut acks);
        let kinds: Vec<DeployStep> = steps.into_iter().map(|s| s.2).collect();
        assert_eq!(
            kinds,
            [
                DeployStep::Started(0.1),
                DeployStep::Progressed(0.5),
                DeployStep::Progressed(1.0),
                DeployStep::Completed
            ]
        );
        assert_eq!(r.all[0].share, 1.0);
    }

    #[test]
    fn a_halted_rollout_stays_and_a_set_share_lands_after_its_delay() {
        let mut r = rollouts();
        let (mut steps, mut acks) = (Vec::new(), Vec::new());
        r.advance(60_000.0, &mut steps, &mut acks);
        r.set_share(0, 0.0, 70_000.0, Some("rollback-9-0".into()));
        r.advance(69_999.0, &mut steps, &mut acks);
        assert_eq!(r.all[0].share, 0.1);
        r.advance(300_000.0, &mut steps, &mut acks);
        assert_eq!(r.all[0].share, 0.0);
        assert_eq!(r.all[0].reverted_at, Some(70_000.0));
        assert_eq!(acks, vec![(70_000.0, "rollback-9-0".to_owned())]);
        assert_eq!(steps.len(), 1, "no step after the halt");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(r.serve(0, &mut rng).is_none());
    }
}
