//! Running the arms side by side: same world, same seeds, one policy each.
//!
//! Arms run on their own threads (they share nothing but the read-only
//! world), and their results are put back in arm order, so the report does
//! not depend on which finished first.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::faultline_arm::{FaultlineArm, Findings};
use super::faults::{compile, Fault};
use super::peers::Peers;
use super::policy::{Action, Policy, Unprotected};
use super::rollout::Rollouts;
use super::sim::{Run, Setup};
use super::tally::Tally;
use super::world::World;
use super::Scenario;
use crate::config::Config;
use crate::log::{EventLog, LogError};

/// The arms, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arm {
    /// No protection.
    None,
    /// Hystrix, Envoy outlier detection and Flagger with their defaults.
    Peers,
    /// faultline's agents with the given policy (the defaults unless `--config`).
    Faultline,
}

impl Arm {
    /// All arms.
    pub const ALL: [Arm; 3] = [Arm::None, Arm::Peers, Arm::Faultline];

    /// The name in flags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::None => "none",
            Arm::Peers => "peers",
            Arm::Faultline => "faultline",
        }
    }
}

impl FromStr for Arm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not an arm (none, peers, faultline)"))
    }
}

/// One arm's run, measured.
#[derive(Debug)]
pub struct ArmRun {
    /// Which arm.
    pub arm: Arm,
    /// Requests and calls, in buckets.
    pub tally: Tally,
    /// What the policy did.
    pub actions: Vec<Action>,
    /// The deploys, as they ended.
    pub rollouts: Rollouts,
    /// What faultline's agents said (faultline arm only).
    pub findings: Option<Findings>,
}

/// Everything the arms share.
pub struct Prepared {
    /// The scenario.
    pub scenario: Scenario,
    /// Its seed (the file's, or the one given).
    pub seed: u64,
    /// The world.
    pub world: World,
    /// Its faults.
    pub faults: Vec<Fault>,
}

impl Prepared {
    /// Compiles `scenario`, with `seed` instead of its own if given.
    pub fn new(scenario: Scenario, seed: Option<u64>) -> Self {
        let world = World::new(&scenario);
        let faults = compile(&scenario, &world);
        Self {
            seed: seed.unwrap_or(scenario.seed),
            scenario,
            world,
            faults,
        }
    }
}

/// Runs `arms` (faultline under `config`, logging to `log` if given);
/// `progress` receives the simulated milliseconds done over all arms.
pub fn run_arms(
    p: &Prepared,
    arms: &[Arm],
    config: &Config,
    log: Option<&mut (dyn EventLog + Send)>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<ArmRun>, LogError> {
    let setup = Setup {
        world: &p.world,
        faults: &p.faults,
        deploys: &p.scenario.deploys,
        seed: p.seed,
        duration: p.scenario.duration.ms() as f64,
        window: p.scenario.window.ms() as f64,
        actuation_delay: p.scenario.actuation_delay.ms() as f64,
    };
    let done: Vec<AtomicU64> = arms.iter().map(|_| AtomicU64::new(0)).collect();
    let report = |k: usize, t: f64| {
        done[k].store(t as u64, Ordering::Relaxed);
        progress(done.iter().map(|d| d.load(Ordering::Relaxed)).sum());
    };
    let mut log = log;
    let results: Vec<Result<ArmRun, LogError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = arms
            .iter()
            .enumerate()
            .map(|(k, arm)| {
                let arm = *arm;
                let setup = &setup;
                let report = &report;
                let log = if arm == Arm::Faultline {
                    log.take()
                } else {
                    None
                };
                scope.spawn(move || run_one(setup, arm, config, log, &|t| report(k, t)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an arm panicked"))
            .collect()
    });
    results.into_iter().collect()
}

fn run_one(
    setup: &Setup<'_>,
    arm: Arm,
    config: &Config,
    log: Option<&mut (dyn EventLog + Send)>,
    progress: &dyn Fn(f64),
) -> Result<ArmRun, LogError> {
    fn finish<P: Policy>(arm: Arm, run: (P, Tally, Rollouts)) -> (ArmRun, P) {
        let (policy, tally, rollouts) = run;
        let r = ArmRun {
            arm,
            tally,
            actions: policy.actions().to_vec(),
            rollouts,
            findings: None,
        };
        (r, policy)
    }
    let w = setup.world;
    Ok(match arm {
        Arm::None => finish(arm, Run::new(setup, Unprotected::new(w)).run(progress)).0,
        Arm::Peers => finish(arm, Run::new(setup, Peers::new(w)).run(progress)).0,
        Arm::Faultline => {
            let log = log.map(|l| l as &mut dyn EventLog);
            let policy = FaultlineArm::new(w, config, setup.seed, log);
            let (mut r, policy) = finish(arm, Run::new(setup, policy).run(progress));
            let (findings, error) = policy.finish();
            if let Some(e) = error {
                return Err(e);
            }
            r.findings = Some(findings);
            r
        }
    })
}
