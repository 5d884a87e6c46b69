//! Rollbacks in progress: one step at a time, each acknowledged by an
//! actuator (retried with a doubling timeout), validated at the end, and
//! stoppable by an operator. The rollback is the service's lock.

use std::sync::Arc;

use super::core::{secs, RollbackAgent, HOUR_MS};
use super::judge::{judge, Judgement};
use super::plan::{self, Context};
use super::sample::Tally;
use super::state::{Rollback, Stage};
use crate::engine::Proposal;
use crate::events::decision::{
    MetricVerdict, RollbackDecision, RollbackPhase, RollbackStrategy, Verdict,
};
use crate::events::observation::{ActuationStatus, Command, CommandAction, Scope};
use crate::events::Timestamp;

impl RollbackAgent {
    // ---- rollbacks -----------------------------------------------------

    pub(super) fn begin(
        &mut self,
        name: &str,
        now: Timestamp,
        j: &Judgement,
        to: String,
        baseline: Option<Tally>,
        out: &mut Vec<Proposal>,
    ) {
        let c = Arc::clone(&self.config);
        let s = self.svc(name);
        let d = s.deploy.take().expect("deploy under analysis");
        let critical = j
            .metrics
            .iter()
            .any(|m| m.critical && !m.dry_run && m.verdict == MetricVerdict::High);
        let ctx = Context {
            deploy: d.strategy,
            weight: d.weight.unwrap_or(100),
            regions: &d.regions,
            error_rate: j
                .metrics
                .iter()
                .find(|m| m.name == "error_rate" && !m.dry_run)
                .and_then(|m| m.observed),
            critical,
        };
        let strategy = plan::select(&ctx, c.preference(name), &c);
        let steps = plan::steps(strategy, &ctx, &c);
        s.rolled_back.insert(d.version.clone());
        let hour_ago = Timestamp::from_nanos(now.nanos() - HOUR_MS as i64 * 1_000_000);
        s.history.retain(|t| *t > hour_ago);
        s.history.push_back(now);
        s.rollback = Some(Rollback {
            from: d.version.clone(),
            to,
            strategy,
            steps,
            stage: Stage::AwaitingApproval,
            restore_to: (strategy == RollbackStrategy::DatabasePitr).then_some(d.started),
            metrics: j.metrics.clone(),
            score: j.score,
            failures: d.failures,
            requests: j.requests,
            baseline,
            asked: Vec::new(),
        });
        let why = format!(
            "{} of budget {} analyses failed",
            d.failures, c.failure_budget
        );
        if strategy == RollbackStrategy::Emergency {
            s.frozen = Some(format!("emergency rollback of {} at {now}", d.version));
        }
        match strategy {
            RollbackStrategy::DatabasePitr => {
                let r = self.state.services[name]
                    .rollback
                    .as_ref()
                    .expect("rollback");
                let mut a = self.step_decision(name, r, RollbackPhase::ApprovalRequired, None, 0);
                a.escalate = true;
                a.reason = format!(
                    "rollback of {} to {} needs a point-in-time database restore to {}: waiting for approve_rollback ({why})",
                    r.from,
                    r.to,
                    d.started
                );
                self.emit(name, a, out);
            }
            RollbackStrategy::Emergency => {
                self.act(
                    name,
                    now,
                    0,
                    1,
                    &format!("emergency: {why}; deploys frozen, escalating"),
                    out,
                );
            }
            _ => self.act(name, now, 0, 1, &why, out),
        }
    }

    pub(super) fn step_decision(
        &self,
        name: &str,
        r: &Rollback,
        phase: RollbackPhase,
        step: Option<usize>,
        attempt: u32,
    ) -> RollbackDecision {
        let mut a = self.blank(name, phase, &r.from);
        a.strategy = Some(r.strategy);
        a.to_version = Some(r.to.clone());
        a.steps = r.steps.len() as u32;
        a.restore_to = r.restore_to;
        a.failures = r.failures;
        a.attempt = attempt;
        if let Some(i) = step {
            let st = &r.steps[i];
            a.step = i as u32 + 1;
            a.canary_weight = st.weight;
            a.regions = st.regions.clone();
        }
        if step.unwrap_or(0) == 0 && attempt <= 1 {
            a.metrics = r.metrics.clone();
            a.score = r.score;
            a.requests = r.requests;
        }
        a
    }

    /// Asks for step `step` (attempt `attempt`) and takes the lock until it is acknowledged.
    pub(super) fn act(
        &mut self,
        name: &str,
        now: Timestamp,
        step: usize,
        attempt: u32,
        why: &str,
        out: &mut Vec<Proposal>,
    ) {
        let c = Arc::clone(&self.config);
        let r = self.state.services[name]
            .rollback
            .as_ref()
            .expect("rollback");
        let phase = if step == 0 {
            RollbackPhase::Initiated
        } else {
            RollbackPhase::Step
        };
        let mut a = self.step_decision(name, r, phase, Some(step), attempt);
        let st = &r.steps[step];
        let restore = match r.restore_to {
            Some(t) => format!("restore the database to {t}, then "),
            None => String::new(),
        };
        let what = restore
            + &(match (st.weight, st.regions.first()) {
                (_, Some(region)) => format!("{region} back to {}", r.to),
                (Some(0), None) => format!("all traffic to {}", r.to),
                (Some(w), None) => format!("{w}% left on {}", r.from),
                (None, None) => format!("back to {}", r.to),
            });
        a.escalate = r.strategy == RollbackStrategy::Emergency && step == 0 && attempt == 1;
        a.reason = format!(
            "rolling back {} to {} ({}): step {} of {}: {what}{}; {why}",
            r.from,
            r.to,
            r.strategy.as_str(),
            step + 1,
            r.steps.len(),
            if attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            }
        );
        let id = self.emit(name, a, out);
        let wait = c.ack_wait_ms(attempt);
        let r = self.svc(name).rollback.as_mut().expect("rollback");
        if attempt == 1 {
            r.asked.clear();
        }
        r.asked.push(id.clone());
        r.stage = Stage::Acting {
            step,
            attempt,
            decision: id,
            deadline: now.plus_millis(wait),
        };
    }

    pub(super) fn rollback_timer(&mut self, name: &str, now: Timestamp, out: &mut Vec<Proposal>) {
        let c = Arc::clone(&self.config);
        let r = self.state.services[name]
            .rollback
            .clone()
            .expect("rollback");
        match r.stage {
            Stage::AwaitingApproval => {}
            Stage::Acting {
                step,
                attempt,
                decision,
                ..
            } => {
                let why = format!(
                    "no acknowledgement of {decision} within {}",
                    secs(c.ack_wait_ms(attempt))
                );
                self.retry(name, now, step, attempt, &why, out);
            }
            Stage::Waiting { step, attempt, .. } => {
                let why = if attempt > 1 {
                    "retrying after a failed actuation".to_owned()
                } else {
                    format!("previous step held for {}", secs(c.interval_ms))
                };
                self.act(name, now, step, attempt, &why, out);
            }
            Stage::Validating { .. } => self.validate(name, now, out),
        }
    }

    pub(super) fn retry(
        &mut self,
        name: &str,
        now: Timestamp,
        step: usize,
        attempt: u32,
        why: &str,
        out: &mut Vec<Proposal>,
    ) {
        if attempt < self.config.max_attempts {
            self.act(name, now, step, attempt + 1, why, out);
            return;
        }
        let r = self.svc(name).rollback.take().expect("rollback");
        self.svc(name).quiet_until = Some(now.plus_millis(self.config.stability_ms));
        let mut a = self.step_decision(name, &r, RollbackPhase::Failed, Some(step), attempt);
        a.escalate = true;
        a.reason = format!(
            "rollback of {} to {} failed at step {} of {} after {attempt} attempts: {why}; escalating",
            r.from,
            r.to,
            step + 1,
            r.steps.len()
        );
        self.emit(name, a, out);
    }

    pub(super) fn actuation(
        &mut self,
        id: &str,
        status: ActuationStatus,
        now: Timestamp,
        out: &mut Vec<Proposal>,
    ) {
        let c = Arc::clone(&self.config);
        let found = self
            .state
            .services
            .iter()
            .find_map(|(n, s)| match &s.rollback {
                Some(Rollback {
                    stage:
                        Stage::Acting {
                            step,
                            attempt,
                            decision,
                            ..
                        },
                    asked,
                    ..
                }) if decision == id
                    || (status == ActuationStatus::Succeeded && asked.iter().any(|a| a == id)) =>
                {
                    Some((n.clone(), *step, *attempt))
                }
                _ => None,
            });
        let Some((name, step, attempt)) = found else {
            return;
        };
        let r = self.svc(&name).rollback.as_mut().expect("rollback");
        r.stage = if status == ActuationStatus::Failed {
            if attempt >= c.max_attempts {
                self.retry(
                    &name,
                    now,
                    step,
                    attempt,
                    &format!("actuation of {id} failed"),
                    out,
                );
                self.schedule(&name);
                return;
            }
            Stage::Waiting {
                step,
                attempt: attempt + 1,
                due: now.plus_millis(c.ack_wait_ms(attempt)),
            }
        } else if r.strategy == RollbackStrategy::Staged || step + 1 == r.steps.len() {
            Stage::Validating {
                wave: (r.strategy == RollbackStrategy::Staged).then_some(step),
                remaining: c.validate_intervals,
                next: now.plus_millis(c.interval_ms),
                tally: Tally::default(),
                judged: 0,
            }
        } else {
            Stage::Waiting {
                step: step + 1,
                attempt: 1,
                due: now.plus_millis(c.interval_ms),
            }
        };
        self.schedule(&name);
    }

    /// One validation interval: the metrics that failed the analysis which
    /// called for the rollback (the error rate when none did) must be back
    /// within their limits and no longer significantly above the baseline.
    pub(super) fn validate(&mut self, name: &str, now: Timestamp, out: &mut Vec<Proposal>) {
        let c = Arc::clone(&self.config);
        let r = self.state.services[name]
            .rollback
            .clone()
            .expect("rollback");
        let Stage::Validating {
            wave,
            remaining,
            judged,
            ref tally,
            ..
        } = r.stage
        else {
            unreachable!("validate runs in the validating stage")
        };
        let j = judge(tally, r.baseline.as_ref(), &c);
        let mut watched: Vec<&str> = r
            .metrics
            .iter()
            .filter(|m| m.verdict == MetricVerdict::High && !m.dry_run)
            .map(|m| m.name.as_str())
            .collect();
        if watched.is_empty() {
            watched.push("error_rate");
        }
        let conclusive = j.verdict != Verdict::Inconclusive;
        let judged = judged + u32::from(conclusive);
        let still: Vec<String> = j
            .metrics
            .iter()
            .filter(|m| watched.contains(&m.name.as_str()))
            .map(|m| {
                let unit = if m.name == "error_rate" { "%" } else { " ms" };
                format!(
                    "{} {}{unit} (limit {}{unit}{})",
                    m.name,
                    m.observed.map_or("-".into(), |o| o.to_string()),
                    m.limit,
                    m.baseline
                        .map_or(String::new(), |b| format!(", baseline {b}{unit}"))
                )
            })
            .collect();
        let ok = conclusive
            && j.metrics
                .iter()
                .all(|m| !watched.contains(&m.name.as_str()) || m.verdict != MetricVerdict::High);
        let scope = match wave.and_then(|w| r.steps[w].regions.first()) {
            Some(region) => format!("{region}: "),
            None => String::new(),
        };
        let numbers = format!(
            "{scope}{} over {} requests",
            still.join(", "),
            tally.requests
        );
        if ok {
            if let Some(w) = wave.filter(|w| w + 1 < r.steps.len()) {
                self.act(
                    name,
                    now,
                    w + 1,
                    1,
                    &format!("wave validated: {numbers}"),
                    out,
                );
                return;
            }
        }
        let phase = if ok {
            RollbackPhase::Succeeded
        } else if remaining > 1 {
            let rb = self.svc(name).rollback.as_mut().expect("rollback");
            rb.stage = Stage::Validating {
                wave,
                remaining: remaining - 1,
                next: now.plus_millis(c.interval_ms),
                tally: Tally::default(),
                judged,
            };
            return;
        } else if judged == 0 {
            RollbackPhase::Inconclusive
        } else {
            RollbackPhase::Ineffective
        };
        let last = wave.unwrap_or(r.steps.len() - 1);
        let complete = last + 1 == r.steps.len();
        let s = self.svc(name);
        s.rollback = None;
        if complete {
            s.current = Some(r.to.clone());
            s.previous = Some(r.from.clone());
        }
        s.quiet_until = Some(now.plus_millis(c.stability_ms));
        let mut a = self.step_decision(name, &r, phase, Some(last), 0);
        a.metrics = j.metrics.clone();
        a.requests = tally.requests;
        a.score = j.score;
        a.verdict = Some(match phase {
            RollbackPhase::Succeeded => Verdict::Pass,
            RollbackPhase::Inconclusive => Verdict::Inconclusive,
            _ => Verdict::Fail,
        });
        let left = if complete {
            String::new()
        } else {
            let rest: Vec<&str> = r.steps[last + 1..]
                .iter()
                .flat_map(|st| st.regions.iter().map(String::as_str))
                .collect();
            format!(" ({} still on {})", rest.join(", "), r.from)
        };
        a.reason = match phase {
            RollbackPhase::Succeeded => format!("rolled back {} to {}: {numbers}", r.from, r.to),
            RollbackPhase::Inconclusive => {
                a.escalate = true;
                format!(
                    "rolled back {} to {}{left} but no interval in {} had enough traffic to validate it; escalating",
                    r.from, r.to, c.validate_intervals
                )
            }
            _ => {
                a.escalate = true;
                format!(
                    "rolled back {} to {}{left} but after {} intervals {numbers}: the fault is not the deploy; escalating, no second rollback",
                    r.from, r.to, c.validate_intervals
                )
            }
        };
        self.emit(name, a, out);
    }

    // ---- operators -----------------------------------------------------

    pub(super) fn command(
        &mut self,
        subject: &str,
        cmd: &Command,
        now: Timestamp,
        out: &mut Vec<Proposal>,
    ) {
        if cmd.scope.is_some_and(|s| s != Scope::Service) {
            return;
        }
        let name = cmd.target.as_deref().unwrap_or(subject).to_owned();
        let by = match (&cmd.by, &cmd.reason) {
            (Some(b), Some(r)) => format!(" by {b}: {r}"),
            (Some(b), None) => format!(" by {b}"),
            (None, Some(r)) => format!(": {r}"),
            (None, None) => String::new(),
        };
        let c = Arc::clone(&self.config);
        match cmd.action {
            CommandAction::AbortRollback => {
                let s = self.svc(&name);
                if let Some(r) = s.rollback.take() {
                    s.quiet_until = Some(now.plus_millis(c.stability_ms));
                    let step = match &r.stage {
                        Stage::Acting { step, .. } => Some(*step),
                        // Not asked for yet: report the last step carried out.
                        Stage::Waiting { step, .. } => step.checked_sub(1),
                        Stage::Validating { wave, .. } => Some(wave.unwrap_or(r.steps.len() - 1)),
                        Stage::AwaitingApproval => None,
                    };
                    let mut a = self.step_decision(&name, &r, RollbackPhase::Aborted, step, 0);
                    a.reason = format!("rollback of {} to {} aborted{by}", r.from, r.to);
                    self.emit(&name, a, out);
                } else if let Some(d) = s.deploy.take() {
                    let mut a = self.blank(&name, RollbackPhase::Aborted, &d.version);
                    a.to_version =
                        Self::point(&self.state.services[&name], &d.version).or(d.previous.clone());
                    a.failures = d.failures;
                    a.canary_weight = d.weight;
                    a.reason = format!(
                        "automatic rollback of {} disabled and its analysis stopped{by}",
                        d.version
                    );
                    self.emit(&name, a, out);
                }
            }
            CommandAction::ApproveRollback => {
                let waiting = self.state.services.get(&name).is_some_and(|s| {
                    s.rollback
                        .as_ref()
                        .is_some_and(|r| r.stage == Stage::AwaitingApproval)
                });
                if waiting {
                    self.act(&name, now, 0, 1, &format!("approved{by}"), out);
                }
            }
            CommandAction::Unfreeze => {
                let s = self.svc(&name);
                s.frozen = None;
                s.history.clear();
            }
            _ => {}
        }
    }
}
