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

use super::config::RollbackConfig;
use super::sample::Tally;
use super::state::{Rollback, RollbackMemory, Service, Stage};
use crate::engine::{decode_state, encode_state, map_view, slot, Agent, Proposal};
use crate::events::decision::{BlockCause, RollbackDecision, RollbackPhase};
use crate::events::observation::{Request, Window};
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// Agent name in decision ids, sources and subjects.
pub const NAME: &str = "rollback";

pub(super) const HOUR_MS: u64 = 3_600_000;

/// The rollback agent.
pub struct RollbackAgent {
    pub(super) config: Arc<RollbackConfig>,
    pub(super) state: RollbackMemory,
    /// The record being applied and where this agent's proposals start in
    /// `out`, so each decision knows its own id (`rollback-<seq>-<n>`) and
    /// can match the acknowledgement that names it.
    seq: Seq,
    base: usize,
}

/// What the safety gate says about a spent budget.
pub(super) enum Gate {
    /// Wait: the stability period is not over.
    Hold(String),
    /// Never automatically: escalate (and maybe freeze).
    Block {
        why: String,
        freeze: bool,
        cause: BlockCause,
    },
    /// Roll back to `to`.
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

pub(super) fn secs(ms: u64) -> String {
    format!("{} s", ms / 1000)
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

    /// The analysis-interval bucket of `time`, and how many buckets make
    /// the pre-deploy baseline window.
    pub(super) fn bucket(&self, time: Timestamp) -> (i64, usize) {
        let c = &self.config;
        let keep = c.baseline_window_ms.div_ceil(c.interval_ms).max(1) as usize;
        let ms = time.nanos().div_euclid(1_000_000);
        (ms.div_euclid(c.interval_ms as i64), keep)
    }

    pub(super) fn svc(&mut self, name: &str) -> &mut Service {
        slot(&mut self.state.services, name)
    }

    /// A decision about `service` with the service's standing fields filled in.
    pub(super) fn blank(
        &self,
        service: &str,
        phase: RollbackPhase,
        from: &str,
    ) -> RollbackDecision {
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
            blocked_by: None,
            reason: String::new(),
        }
    }

    /// Emits `d` about `service`; returns the id the engine will give it.
    pub(super) fn emit(
        &self,
        service: &str,
        d: RollbackDecision,
        out: &mut Vec<Proposal>,
    ) -> String {
        let id = format!("{NAME}-{}-{}", self.seq, out.len() - self.base);
        out.push(Proposal::new(service, Data::Rollback(d)));
        id
    }

    pub(super) fn schedule(&mut self, name: &str) {
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
        let (index, keep) = self.bucket(time);
        let s = self.svc(name);
        // The service's own history is the baseline of its next deploy: only
        // steady-state traffic goes in, never a deploy's or a rollback's.
        if s.deploy.is_none() && s.rollback.is_none() {
            s.remember(index, keep, |t| obs.add(t));
        }
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

    fn view(&self, service: Option<&str>) -> Option<serde_json::Value> {
        map_view(&self.state.services, service)
    }
}
