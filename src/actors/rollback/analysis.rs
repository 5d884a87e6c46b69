//! Deploy tracking and analysis: a deploy opens an analysis, each interval
//! is judged and reported, failures count against the budget, and a spent
//! budget goes through the safety gate (block, hold, or start a rollback).
//! A deploy that completes and keeps passing for the bake time becomes the
//! service's known-good version.

use std::sync::Arc;

use super::config::BudgetMode;
use super::core::{secs, Gate, RollbackAgent, HOUR_MS};
use super::judge::{judge, Judgement};
use super::sample::Tally;
use super::state::{Deploy, KnownGood, Service};
use crate::engine::Proposal;
use crate::events::decision::{BlockCause, RollbackPhase, Verdict};
use crate::events::observation::{Deploy as DeployEvent, DeployPhase, DeployStrategy};
use crate::events::Timestamp;

impl RollbackAgent {
    // ---- deploys -------------------------------------------------------

    pub(super) fn deploy(
        &mut self,
        name: &str,
        now: Timestamp,
        e: &DeployEvent,
        out: &mut Vec<Proposal>,
    ) {
        let same = self
            .state
            .services
            .get(name)
            .is_some_and(|s| s.deploy.as_ref().is_some_and(|d| d.version == e.version));
        if matches!(e.phase, DeployPhase::Failed | DeployPhase::Aborted) {
            let s = self.svc(name);
            if same {
                let d = s.deploy.take().expect("deploy");
                s.current = d.previous;
            }
            return;
        }
        if !same {
            // Only a start opens a new analysis. Progress reports for a
            // version already settled (being rolled back, current or
            // known-good) are the deploy tooling carrying out our own steps.
            let settled = self.state.services.get(name).is_some_and(|s| {
                s.rollback.as_ref().is_some_and(|r| r.from == e.version)
                    || s.current.as_deref() == Some(e.version.as_str())
                    || s.known_good
                        .as_ref()
                        .is_some_and(|k| k.version == e.version)
            });
            if settled && e.phase != DeployPhase::Started {
                return;
            }
            self.start_deploy(name, now, e, out);
        }
        let s = self.svc(name);
        let d = s.deploy.as_mut().expect("deploy under analysis");
        if let Some(w) = e.canary_weight {
            d.weight = Some(u32::from(w));
        }
        if let Some(r) = &e.regions {
            d.regions = r.clone();
        }
        if e.strategy.is_some() {
            d.strategy = e.strategy;
        }
        if e.irreversible_migration == Some(true) {
            d.irreversible = true;
        }
        if e.phase == DeployPhase::Completed {
            d.completed = Some(now);
            if d.strategy == Some(DeployStrategy::Canary) {
                d.weight = Some(100);
            }
        }
    }

    pub(super) fn start_deploy(
        &mut self,
        name: &str,
        now: Timestamp,
        e: &DeployEvent,
        out: &mut Vec<Proposal>,
    ) {
        let interval = self.config.interval_ms;
        let stability = self.config.stability_ms;
        if let Some(r) = self.svc(name).rollback.take() {
            self.svc(name).quiet_until = Some(now.plus_millis(stability));
            let mut d = self.blank(name, RollbackPhase::Aborted, &r.from);
            d.strategy = Some(r.strategy);
            d.to_version = Some(r.to.clone());
            d.steps = r.steps.len() as u32;
            d.reason = format!(
                "rollback of {} superseded by a deploy of {}",
                r.from, e.version
            );
            self.emit(name, d, out);
        }
        if let Some(why) = self.state.services.get(name).and_then(|s| s.frozen.clone()) {
            let mut d = self.blank(name, RollbackPhase::Blocked, &e.version);
            d.escalate = true;
            d.blocked_by = Some(BlockCause::Frozen);
            d.reason = format!(
                "deploy of {} started while deploys of {name} are frozen ({why})",
                e.version
            );
            self.emit(name, d, out);
        }
        let (index, keep) = self.bucket(now);
        let s = self.svc(name);
        let previous = e
            .previous_version
            .clone()
            .or_else(|| s.current.clone())
            .filter(|p| *p != e.version);
        s.current = Some(e.version.clone());
        s.previous = previous.clone();
        s.deploy = Some(Deploy {
            version: e.version.clone(),
            previous,
            strategy: e.strategy,
            weight: None,
            regions: Vec::new(),
            irreversible: false,
            started: now,
            completed: None,
            next: now.plus_millis(interval),
            new: Tally::default(),
            stable: Tally::default(),
            baseline: s.baseline(index, keep),
            failures: 0,
            last: None,
            last_bad: None,
            passes: 0,
            healthy: Tally::default(),
            no_data_since: None,
            escalated: false,
        });
    }

    /// The rollback point for `version`: the last known-good version, else the previous one.
    pub(super) fn point(s: &Service, version: &str) -> Option<String> {
        // A canary shares traffic with the version it replaces: that is
        // where its traffic goes back to, whatever was known-good before.
        let serving = s.deploy.as_ref().filter(|d| {
            d.version == version
                && d.strategy == Some(DeployStrategy::Canary)
                && d.weight.unwrap_or(100) < 100
        });
        if let Some(p) = serving.and_then(|d| d.previous.clone()) {
            if p != version {
                return Some(p);
            }
        }
        s.known_good
            .as_ref()
            .map(|k| k.version.clone())
            .filter(|k| k != version)
            .or_else(|| s.deploy.as_ref().and_then(|d| d.previous.clone()))
            .filter(|p| p != version)
    }

    // ---- analysis ------------------------------------------------------

    pub(super) fn analyse(&mut self, name: &str, now: Timestamp, out: &mut Vec<Proposal>) {
        let c = Arc::clone(&self.config);
        let s = self.svc(name);
        let d = s.deploy.as_mut().expect("deploy under analysis");
        d.next = now.plus_millis(c.interval_ms);
        let new = std::mem::take(&mut d.new);
        let stable = std::mem::take(&mut d.stable);
        let (base, against) = if stable.requests > 0 {
            (
                Some(&stable),
                d.previous.clone().unwrap_or_else(|| "stable".into()),
            )
        } else if let Some(b) = &d.baseline {
            (Some(b), "pre-deploy".to_owned())
        } else {
            (None, "no baseline".to_owned())
        };
        let j = judge(&new, base, &c);
        let compared = base.cloned();
        let version = d.version.clone();
        let head = format!("{version} vs {against}");
        match j.verdict {
            Verdict::Inconclusive => {
                self.inconclusive(name, now, &j, &head, out);
                return;
            }
            Verdict::Pass => {
                if c.budget == BudgetMode::Consecutive {
                    d.failures = 0;
                }
                d.passes += 1;
                d.healthy.merge(&new);
            }
            Verdict::Marginal | Verdict::Fail => {
                if j.verdict == Verdict::Fail {
                    d.failures += 1;
                }
                d.last_bad = Some(now);
                d.passes = 0;
                d.healthy = Tally::default();
            }
        }
        d.last = Some(j.verdict);
        d.no_data_since = None;
        d.escalated = false;
        let mode = match c.budget {
            BudgetMode::Consecutive => "consecutive",
            BudgetMode::Cumulative => "cumulative",
        };
        let failures = d.failures;
        let baked = d.completed.is_some_and(|t| now >= t.plus_millis(c.bake_ms))
            && d.last_bad.is_none_or(|t| now >= t.plus_millis(c.bake_ms))
            && d.passes > 0;
        let gate = (j.verdict == Verdict::Fail && failures >= c.failure_budget)
            .then(|| self.gate(name, now));
        let s = &self.state.services[name];
        let d = s.deploy.as_ref().expect("deploy under analysis");
        let mut a = self.blank(name, RollbackPhase::Analysis, &version);
        a.to_version = Self::point(s, &version);
        a.canary_weight = d.weight;
        a.score = j.score;
        a.verdict = Some(j.verdict);
        a.requests = j.requests;
        a.failures = failures;
        a.reason = format!(
            "{head}: {}; {} of budget {} failed ({mode})",
            j.summary, failures, c.failure_budget
        );
        if let Some(Gate::Hold(why)) = &gate {
            a.reason.push_str(&format!("; rollback held: {why}"));
        }
        let mut known = None;
        if baked {
            let k = KnownGood {
                version: version.clone(),
                since: now,
                requests: d.healthy.requests,
                error_rate: d.healthy.error_rate().unwrap_or(0.0),
                p99: d.healthy.p99(),
            };
            a.known_good = Some(version.clone());
            a.reason.push_str(&format!(
                "; {version} is known-good: healthy for {} after completing ({} requests, error {:.2}%, p99 {})",
                secs(c.bake_ms),
                k.requests,
                k.error_rate,
                k.p99.map_or("-".into(), |p| format!("{p:.0} ms"))
            ));
            known = Some(k);
        }
        a.metrics = j.metrics.clone();
        self.emit(name, a, out);
        if let Some(k) = known {
            let s = self.svc(name);
            s.known_good = Some(k);
            s.deploy = None;
        }
        match gate {
            Some(Gate::Block { why, freeze, cause }) => {
                self.block(name, now, &j, (&why, freeze, cause), out)
            }
            Some(Gate::Start { to }) => self.begin(name, now, &j, to, compared, out),
            Some(Gate::Hold(_)) | None => {}
        }
    }

    pub(super) fn inconclusive(
        &mut self,
        name: &str,
        now: Timestamp,
        j: &Judgement,
        head: &str,
        out: &mut Vec<Proposal>,
    ) {
        let c = Arc::clone(&self.config);
        let s = self.svc(name);
        let d = s.deploy.as_mut().expect("deploy under analysis");
        let first = d.last != Some(Verdict::Inconclusive);
        d.last = Some(Verdict::Inconclusive);
        let mut escalate = false;
        let mut silent_ms = 0;
        if j.requests == 0 {
            let since = *d.no_data_since.get_or_insert(Timestamp::from_nanos(
                now.nanos() - c.interval_ms as i64 * 1_000_000,
            ));
            silent_ms = (now.millis_since(since)).max(0.0) as u64;
            if !d.escalated && silent_ms >= c.no_data_escalation_ms {
                d.escalated = true;
                escalate = true;
            }
        } else {
            d.no_data_since = None;
            d.escalated = false;
        }
        if !(first || escalate) {
            return;
        }
        let version = d.version.clone();
        let (weight, failures) = (d.weight, d.failures);
        let s = &self.state.services[name];
        let mut a = self.blank(name, RollbackPhase::Inconclusive, &version);
        a.to_version = Self::point(s, &version);
        a.canary_weight = weight;
        a.verdict = Some(Verdict::Inconclusive);
        a.requests = j.requests;
        a.failures = failures;
        a.metrics = j.metrics.clone();
        a.escalate = escalate;
        a.reason = if escalate {
            format!(
                "{head}: no data for {}: escalating (no data is never success)",
                secs(silent_ms)
            )
        } else {
            format!("{head}: {}: holding, neither pass nor fail", j.summary)
        };
        self.emit(name, a, out);
    }

    /// The safety gate for a spent budget.
    pub(super) fn gate(&self, name: &str, now: Timestamp) -> Gate {
        let c = &self.config;
        let s = &self.state.services[name];
        let d = s.deploy.as_ref().expect("deploy under analysis");
        let v = &d.version;
        let hour_ago = Timestamp::from_nanos(now.nanos() - HOUR_MS as i64 * 1_000_000);
        let recent = s.history.iter().filter(|t| **t > hour_ago).count();
        if d.irreversible {
            Gate::Block {
                why: format!(
                    "{v} ran an irreversible migration: rolling back needs a person; deploys frozen"
                ),
                freeze: true,
                cause: BlockCause::IrreversibleMigration,
            }
        } else if s.rolled_back.contains(v) {
            Gate::Block {
                why: format!("{v} was already rolled back automatically once"),
                freeze: false,
                cause: BlockCause::AlreadyRolledBack,
            }
        } else if recent >= c.max_rollbacks_per_hour as usize {
            Gate::Block {
                why: format!(
                    "storm guard: {recent} automatic rollbacks of {name} in the last hour (max {})",
                    c.max_rollbacks_per_hour
                ),
                freeze: false,
                cause: BlockCause::StormGuard,
            }
        } else if let Some(t) = s.quiet_until.filter(|t| *t > now) {
            Gate::Hold(format!(
                "stability period after the last rollback until {t}"
            ))
        } else {
            match Self::point(s, v) {
                Some(to) => Gate::Start { to },
                None => Gate::Block {
                    why: format!("no rollback point: no known-good or previous version of {name}"),
                    freeze: false,
                    cause: BlockCause::NoRollbackPoint,
                },
            }
        }
    }

    pub(super) fn block(
        &mut self,
        name: &str,
        now: Timestamp,
        j: &Judgement,
        (why, freeze, cause): (&str, bool, BlockCause),
        out: &mut Vec<Proposal>,
    ) {
        let s = self.svc(name);
        let d = s.deploy.take().expect("deploy under analysis");
        if freeze {
            s.frozen = Some(format!("{} blocked at {now}", d.version));
        }
        let to = Self::point(&self.state.services[name], &d.version).or(d.previous.clone());
        let mut b = self.blank(name, RollbackPhase::Blocked, &d.version);
        b.to_version = to;
        b.canary_weight = d.weight;
        b.score = j.score;
        b.verdict = Some(j.verdict);
        b.metrics = j.metrics.clone();
        b.requests = j.requests;
        b.failures = d.failures;
        b.escalate = true;
        b.blocked_by = Some(cause);
        b.reason = format!("rollback of {} blocked: {why}; escalating", d.version);
        self.emit(name, b, out);
    }
}
