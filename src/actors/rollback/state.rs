//! What the rollback agent remembers per service: versions and the rollback
//! point, the deploy under analysis, the rollback in progress and the
//! safety records (freeze, storm history, revisions already rolled back).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::plan::Step;
use super::sample::Tally;
use crate::events::decision::{MetricCheck, RollbackStrategy, Verdict};
use crate::events::observation::DeployStrategy;
use crate::events::Timestamp;

/// A version that completed and stayed healthy for the bake time, with the
/// numbers that made it so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnownGood {
    /// The version.
    pub version: String,
    /// When it became known-good.
    pub since: Timestamp,
    /// Requests seen while it baked.
    pub requests: u64,
    /// Its error rate over them, percent.
    pub error_rate: f64,
    /// Its p99 over them, ms.
    pub p99: Option<f64>,
}

/// A deploy under analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// The new version.
    pub version: String,
    /// The version it replaces (the canary's baseline).
    pub previous: Option<String>,
    /// How it rolls out.
    pub strategy: Option<DeployStrategy>,
    /// Percent of traffic on the new version, when the deploy says.
    pub weight: Option<u32>,
    /// Regions it covers.
    pub regions: Vec<String>,
    /// It ran a migration that cannot be undone.
    pub irreversible: bool,
    /// When it started.
    pub started: Timestamp,
    /// When it completed.
    pub completed: Option<Timestamp>,
    /// When the next analysis is due.
    pub next: Timestamp,
    /// The new version's samples this interval.
    pub new: Tally,
    /// The stable version's samples this interval.
    pub stable: Tally,
    /// The service before the deploy (rolling, recreate, blue/green baseline).
    pub baseline: Option<Tally>,
    /// Failed analyses against the budget.
    pub failures: u32,
    /// The last verdict.
    pub last: Option<Verdict>,
    /// The last analysis that was neither pass nor inconclusive.
    pub last_bad: Option<Timestamp>,
    /// Passing analyses since then, and their samples (for known-good).
    pub passes: u32,
    /// Samples of those passes.
    pub healthy: Tally,
    /// Start of the current run of empty intervals.
    pub no_data_since: Option<Timestamp>,
    /// That run has been escalated.
    pub escalated: bool,
}

/// Where a rollback stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Stage {
    /// Waiting for an operator's `approve_rollback`.
    AwaitingApproval,
    /// Step `step` was asked for as decision `decision`; its acknowledgement
    /// is due by `deadline`.
    Acting {
        /// Index into the steps.
        step: usize,
        /// Attempt, from 1.
        attempt: u32,
        /// Id of the decision that asked for it.
        decision: String,
        /// When to retry without an acknowledgement.
        deadline: Timestamp,
    },
    /// Step `step` (attempt `attempt`) is asked for at `due`.
    Waiting {
        /// Index into the steps.
        step: usize,
        /// Attempt, from 1.
        attempt: u32,
        /// When.
        due: Timestamp,
    },
    /// Watching the error rate recover (of a region after a staged wave,
    /// of the service after the last step).
    Validating {
        /// The staged wave just carried out, if any.
        wave: Option<usize>,
        /// Intervals left.
        remaining: u32,
        /// When the next interval ends.
        next: Timestamp,
        /// Samples this interval.
        tally: Tally,
        /// Intervals so far with enough traffic to judge.
        judged: u32,
    },
}

/// A rollback in progress: the per-service lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    /// The bad version.
    pub from: String,
    /// The rollback point.
    pub to: String,
    /// How.
    pub strategy: RollbackStrategy,
    /// The steps.
    pub steps: Vec<Step>,
    /// Where it stands.
    pub stage: Stage,
    /// Point-in-time restore target (`database_pitr`).
    pub restore_to: Option<Timestamp>,
    /// The analysis that called for it.
    pub metrics: Vec<MetricCheck>,
    /// Its score.
    pub score: Option<f64>,
    /// Its failures and requests.
    pub failures: u32,
    /// Requests in that analysis.
    pub requests: u64,
    /// What the new version was compared with; recovery is judged against it.
    pub baseline: Option<Tally>,
    /// Ids of every attempt at the current step: a late acknowledgement of
    /// an earlier attempt still counts.
    pub asked: Vec<String>,
}

impl Rollback {
    /// When this rollback next needs the agent.
    pub fn due(&self) -> Option<Timestamp> {
        match &self.stage {
            Stage::AwaitingApproval => None,
            Stage::Acting { deadline, .. } => Some(*deadline),
            Stage::Waiting { due, .. } => Some(*due),
            Stage::Validating { next, .. } => Some(*next),
        }
    }
}

/// One service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The version serving (as far as deploys and rollbacks tell).
    pub current: Option<String>,
    /// The one before.
    pub previous: Option<String>,
    /// The last known-good version.
    pub known_good: Option<KnownGood>,
    /// Recent intervals of the whole service, for a pre-deploy baseline.
    pub recent: VecDeque<(i64, Tally)>,
    /// The deploy under analysis.
    pub deploy: Option<Deploy>,
    /// The rollback in progress.
    pub rollback: Option<Rollback>,
    /// Why deploys are frozen, when they are.
    pub frozen: Option<String>,
    /// Versions already rolled back automatically.
    pub rolled_back: BTreeSet<String>,
    /// When automatic rollbacks started (storm guard), within the last hour.
    pub history: VecDeque<Timestamp>,
    /// No automatic rollback before this (stability period).
    pub quiet_until: Option<Timestamp>,
}

impl Service {
    /// When this service next needs the agent.
    pub fn due(&self) -> Option<Timestamp> {
        let d = self.deploy.as_ref().map(|d| d.next);
        let r = self.rollback.as_ref().and_then(Rollback::due);
        d.into_iter().chain(r).min()
    }

    /// Adds an outcome to the recent intervals (bucket `index` of the
    /// analysis interval), keeping `keep` buckets.
    pub fn remember(&mut self, index: i64, keep: usize, add: impl FnOnce(&mut Tally)) {
        match self.recent.back_mut() {
            Some((i, t)) if *i >= index => add(t),
            _ => {
                let mut t = Tally::default();
                add(&mut t);
                self.recent.push_back((index, t));
            }
        }
        while self
            .recent
            .front()
            .is_some_and(|(i, _)| *i <= index - keep as i64)
        {
            self.recent.pop_front();
        }
    }

    /// The recent intervals within `keep` buckets of bucket `index`, merged;
    /// `None` when they hold no requests (history older than the window,
    /// kept because no traffic came to push it out, does not count).
    pub fn baseline(&self, index: i64, keep: usize) -> Option<Tally> {
        let mut t = Tally::default();
        for (_, r) in self.recent.iter().filter(|(i, _)| *i > index - keep as i64) {
            t.merge(r);
        }
        (t.requests > 0).then_some(t)
    }
}

/// Everything the rollback agent remembers; what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RollbackMemory {
    /// The agent's clock.
    pub clock: Option<Timestamp>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Timers: (due, service).
    pub deadlines: BTreeSet<(Timestamp, String)>,
}
