//! The rollback agent's pure core: deploys under analysis, rollbacks in
//! progress, and the safety rules between them.
//!
//! Life of a deploy: `faultline.deploy started` opens an analysis; every
//! `interval_s` of event time the new version's samples are judged against
//! the baseline (see [`super::judge`]) and the result is emitted. Failures
//! count against the budget; when it is spent, the safety gate decides:
//! an irreversible migration, a revision already rolled back once, the
//! storm guard or a missing rollback point *block* (and escalate); a recent
//! rollback *holds* until the stability period ends; otherwise a strategy is
//! chosen ([`super::plan`]) and its steps are asked for one at a time. Each
//! step waits for a `faultline.actuation` acknowledgement of its decision
//! id, retried with a doubling timeout, and the rollback is the service's
//! lock until it ends. After the last step the error rate must come back
//! under its limit within `validate_intervals`, else the rollback was
//! `ineffective`: the fault is elsewhere, and nobody rolls back again. A
//! deploy that completes and passes for `bake_time_s` becomes the service's
//! known-good version: the next rollback point.

use std::sync::Arc;

use super::config::{BudgetMode, RollbackConfig};
use super::judge::{judge, Judgement};
use super::plan::{self, Context};
use super::sample::Tally;
use super::state::{Deploy, KnownGood, Rollback, RollbackMemory, Service, Stage};
use crate::engine::{decode_state, encode_state, Agent, Proposal};
use crate::events::decision::{
    MetricVerdict, RollbackDecision, RollbackPhase, RollbackStrategy, Verdict,
};
use crate::events::observation::{
    ActuationStatus, Command, CommandAction, Deploy as DeployEvent, DeployPhase, DeployStrategy,
    Request, Scope, Window,
};
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// Agent name in decision ids, sources and subjects.
pub const NAME: &str = "rollback";

const HOUR_MS: u64 = 3_600_000;

/// The rollback agent.
pub struct RollbackAgent {
    config: Arc<RollbackConfig>,
    state: RollbackMemory,
    /// The record being applied and where this agent's proposals start in
    /// `out`, so each decision knows its own id (`rollback-<seq>-<n>`) and
    /// can match the acknowledgement that names it.
    seq: Seq,
    base: usize,
}

/// What the safety gate says about a spent budget.
enum Gate {
    Hold(String),
    Block { why: String, freeze: bool },
    Start { to: String },
}

/// An observation of the service's traffic.
#[derive(Clone, Copy)]
enum Obs<'a> {
    Request(&'a Request),
    Window(&'a Window),
}

impl Obs<'_> {
    fn add(self, t: &mut Tally) {
        match self {
            Obs::Request(r) => t.request(r),
            Obs::Window(w) => t.window(w),
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{} s", ms / 1000)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", v))
}

impl RollbackAgent {
    /// A rollback agent with no services yet.
    pub fn new(config: Arc<RollbackConfig>) -> Self {
        Self {
            config,
            state: RollbackMemory::default(),
            seq: 0,
            base: 0,
        }
    }

    fn svc(&mut self, name: &str) -> &mut Service {
        self.state.services.entry(name.to_owned()).or_default()
    }

    /// A decision about `service` with the service's standing fields filled in.
    fn blank(&self, service: &str, phase: RollbackPhase, from: &str) -> RollbackDecision {
        let s = self.state.services.get(service);
        RollbackDecision {
            phase,
            strategy: None,
            from_version: from.to_owned(),
            to_version: None,
            step: 0,
            steps: 0,
            canary_weight: None,
            regions: Vec::new(),
            attempt: 0,
            score: None,
            verdict: None,
            metrics: Vec::new(),
            requests: 0,
            failures: 0,
            budget: self.config.failure_budget,
            restore_to: None,
            known_good: s.and_then(|s| s.known_good.as_ref().map(|k| k.version.clone())),
            escalate: false,
            freeze: s.is_some_and(|s| s.frozen.is_some()),
            reason: String::new(),
        }
    }

    /// Emits `d` about `service`; returns the id the engine will give it.
    fn emit(&self, service: &str, d: RollbackDecision, out: &mut Vec<Proposal>) -> String {
        let id = format!("{NAME}-{}-{}", self.seq, out.len() - self.base);
        out.push(Proposal::new(service, Data::Rollback(d)));
        id
    }

    fn schedule(&mut self, name: &str) {
        self.state.deadlines.retain(|(_, n)| n != name);
        if let Some(t) = self.state.services.get(name).and_then(Service::due) {
            self.state.deadlines.insert((t, name.to_owned()));
        }
    }

    fn fire_timers(&mut self, now: Timestamp, out: &mut Vec<Proposal>) {
        while let Some((due, name)) = self.state.deadlines.first().cloned().filter(|d| d.0 <= now) {
            self.state.deadlines.remove(&(due, name.clone()));
            self.on_timer(&name, due, out);
            self.schedule(&name);
        }
    }

    fn on_timer(&mut self, name: &str, now: Timestamp, out: &mut Vec<Proposal>) {
        let Some(s) = self.state.services.get(name) else {
            return;
        };
        if s.rollback
            .as_ref()
            .and_then(Rollback::due)
            .is_some_and(|d| d <= now)
        {
            self.rollback_timer(name, now, out);
        }
        let s = &self.state.services[name];
        if s.deploy.as_ref().is_some_and(|d| d.next <= now) {
            self.analyse(name, now, out);
        }
    }

    // ---- traffic -------------------------------------------------------

    fn observe(
        &mut self,
        name: &str,
        time: Timestamp,
        obs: Obs<'_>,
        version: Option<&str>,
        region: Option<&str>,
    ) {
        let c = Arc::clone(&self.config);
        let keep = c.baseline_window_ms.div_ceil(c.interval_ms).max(1) as usize;
        let index = time.nanos().div_euclid(c.interval_ms as i64 * 1_000_000);
        let s = self.svc(name);
        s.remember(index, keep, |t| obs.add(t));
        if let Some(d) = s.deploy.as_mut() {
            match version {
                Some(v) if v == d.version => obs.add(&mut d.new),
                Some(v) if d.previous.as_deref().is_none_or(|p| p == v) => obs.add(&mut d.stable),
                _ => {}
            }
        }
        if let Some(r) = s.rollback.as_mut() {
            if let Stage::Validating { wave, tally, .. } = &mut r.stage {
                let region_ok = match wave {
                    Some(i) => r.steps[*i].regions.first().map(String::as_str) == region,
                    None => true,
                };
                if region_ok {
                    obs.add(tally);
                }
            }
        }
    }

    // ---- deploys -------------------------------------------------------

    fn deploy(&mut self, name: &str, now: Timestamp, e: &DeployEvent, out: &mut Vec<Proposal>) {
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

    fn start_deploy(
        &mut self,
        name: &str,
        now: Timestamp,
        e: &DeployEvent,
        out: &mut Vec<Proposal>,
    ) {
        let interval = self.config.interval_ms;
        if let Some(r) = self.svc(name).rollback.take() {
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
            d.reason = format!(
                "deploy of {} started while deploys of {name} are frozen ({why})",
                e.version
            );
            self.emit(name, d, out);
        }
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
            baseline: s.baseline(),
            failures: 0,
            last: None,
            last_bad: None,
            passes: 0,
            healthy: Tally::default(),
            no_data_since: None,
            escalated: false,
            manual: false,
        });
    }

    /// The rollback point for `version`: the last known-good version, else the previous one.
    fn point(s: &Service, version: &str) -> Option<String> {
        s.known_good
            .as_ref()
            .map(|k| k.version.clone())
            .filter(|k| k != version)
            .or_else(|| s.deploy.as_ref().and_then(|d| d.previous.clone()))
            .filter(|p| p != version)
    }

    // ---- analysis ------------------------------------------------------

    fn analyse(&mut self, name: &str, now: Timestamp, out: &mut Vec<Proposal>) {
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
            Some(Gate::Block { why, freeze }) => self.block(name, now, &j, &why, freeze, out),
            Some(Gate::Start { to }) => self.begin(name, now, &j, to, out),
            Some(Gate::Hold(_)) | None => {}
        }
    }

    fn inconclusive(
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
    fn gate(&self, name: &str, now: Timestamp) -> Gate {
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
            }
        } else if let Some(why) = &s.frozen {
            Gate::Block {
                why: format!("deploys of {name} are frozen ({why})"),
                freeze: false,
            }
        } else if s.rolled_back.contains(v) {
            Gate::Block {
                why: format!("{v} was already rolled back automatically once"),
                freeze: false,
            }
        } else if recent >= c.max_rollbacks_per_hour as usize {
            Gate::Block {
                why: format!(
                    "storm guard: {recent} automatic rollbacks of {name} in the last hour (max {})",
                    c.max_rollbacks_per_hour
                ),
                freeze: false,
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
                },
            }
        }
    }

    fn block(
        &mut self,
        name: &str,
        now: Timestamp,
        j: &Judgement,
        why: &str,
        freeze: bool,
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
        b.reason = format!("rollback of {} blocked: {why}; escalating", d.version);
        self.emit(name, b, out);
    }

    // ---- rollbacks -----------------------------------------------------

    fn begin(
        &mut self,
        name: &str,
        now: Timestamp,
        j: &Judgement,
        to: String,
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
                .find(|m| m.name == "error_rate")
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

    fn step_decision(
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
    fn act(
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
        let wait = c.ack_timeout_ms.saturating_mul(1 << (attempt - 1).min(16));
        let r = self.svc(name).rollback.as_mut().expect("rollback");
        r.stage = Stage::Acting {
            step,
            attempt,
            decision: id,
            deadline: now.plus_millis(wait),
        };
    }

    fn rollback_timer(&mut self, name: &str, now: Timestamp, out: &mut Vec<Proposal>) {
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
                    secs(c.ack_timeout_ms.saturating_mul(1 << (attempt - 1).min(16)))
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
            Stage::Validating {
                wave,
                remaining,
                tally,
                ..
            } => self.validate(name, now, wave, remaining, &tally, out),
        }
    }

    fn retry(
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

    fn actuation(
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
                    ..
                }) if decision == id => Some((n.clone(), *step, *attempt)),
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
                due: now.plus_millis(c.ack_timeout_ms.saturating_mul(1 << (attempt - 1).min(16))),
            }
        } else if r.strategy == RollbackStrategy::Staged || step + 1 == r.steps.len() {
            Stage::Validating {
                wave: (r.strategy == RollbackStrategy::Staged).then_some(step),
                remaining: c.validate_intervals,
                next: now.plus_millis(c.interval_ms),
                tally: Tally::default(),
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

    fn validate(
        &mut self,
        name: &str,
        now: Timestamp,
        wave: Option<usize>,
        remaining: u32,
        tally: &Tally,
        out: &mut Vec<Proposal>,
    ) {
        let c = Arc::clone(&self.config);
        let j = judge(tally, None, &c);
        let err = &j.metrics[0];
        let ok = j.verdict != Verdict::Inconclusive && err.verdict != MetricVerdict::High;
        let r = self.state.services[name]
            .rollback
            .clone()
            .expect("rollback");
        let scope = match wave.and_then(|w| r.steps[w].regions.first()) {
            Some(region) => format!("{region} error rate"),
            None => "error rate".to_owned(),
        };
        let numbers = format!(
            "{scope} {} over {} requests (limit {}%)",
            pct(err.observed),
            tally.requests,
            err.limit
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
            };
            return;
        } else {
            RollbackPhase::Ineffective
        };
        let s = self.svc(name);
        s.rollback = None;
        s.current = Some(r.to.clone());
        s.previous = Some(r.from.clone());
        s.quiet_until = Some(now.plus_millis(c.stability_ms));
        let last = wave.unwrap_or(r.steps.len() - 1);
        let mut a = self.step_decision(name, &r, phase, Some(last), 0);
        a.metrics = j.metrics.clone();
        a.requests = tally.requests;
        a.verdict = Some(match (ok, j.verdict) {
            (true, _) => Verdict::Pass,
            (false, Verdict::Inconclusive) => Verdict::Inconclusive,
            (false, _) => Verdict::Fail,
        });
        a.reason = if ok {
            format!("rolled back {} to {}: {numbers}", r.from, r.to)
        } else {
            a.escalate = true;
            format!(
                "rolled back {} to {} but the {numbers} after {} intervals: the fault is not the deploy; escalating, no second rollback",
                r.from, r.to, c.validate_intervals
            )
        };
        self.emit(name, a, out);
    }

    // ---- operators -----------------------------------------------------

    fn command(&mut self, subject: &str, cmd: &Command, now: Timestamp, out: &mut Vec<Proposal>) {
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
                        Stage::Acting { step, .. } | Stage::Waiting { step, .. } => Some(*step),
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

impl Agent for RollbackAgent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, seq: Seq, record: &Event, out: &mut Vec<Proposal>) {
        self.seq = seq;
        self.base = out.len();
        let now = self.state.clock.map_or(record.time, |c| c.max(record.time));
        self.state.clock = Some(now);
        self.fire_timers(now, out);
        let subject = record.subject.as_str();
        match &record.data {
            Data::Request(r) => {
                self.observe(
                    subject,
                    record.time,
                    Obs::Request(r),
                    r.version.as_deref(),
                    r.region.as_deref(),
                );
            }
            Data::Window(w) => {
                self.observe(
                    subject,
                    record.time,
                    Obs::Window(w),
                    w.version.as_deref(),
                    w.region.as_deref(),
                );
            }
            Data::Deploy(d) => {
                self.deploy(subject, now, d, out);
                self.schedule(subject);
            }
            Data::Actuation(a) => self.actuation(&a.decision_id, a.status, now, out),
            Data::Command(c) => {
                self.command(subject, c, now, out);
                let name = c.target.clone().unwrap_or_else(|| subject.to_owned());
                if self.state.services.contains_key(&name) {
                    self.schedule(&name);
                }
            }
            _ => {}
        }
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        self.state.deadlines.first().map(|d| d.0)
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_state(&self.state, NAME)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = decode_state(bytes, NAME)?;
        Ok(())
    }
}
