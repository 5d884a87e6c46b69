//! The system-scope breaker: a cross-service view.
//!
//! It opens when at least `open_services_threshold` percent of known services
//! have a tripped service breaker (open, half-open or forced open: a half-open
//! service has not yet shown it recovered), provided at least
//! `minimum_services` are known, and closes when the share falls below. It is
//! fed by the service breakers' *decisions* (records in the log), not by their
//! internal state, because in cluster mode the service breakers of different
//! partitions live on different nodes and only their decisions are shared; the
//! set of known services comes from the observations every partition carries.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::circuit::{legal, Change};
use super::config::SystemSettings;
use super::window::Tally;
use crate::events::decision::{BreakerDecision, BreakerState, BreakerTrigger};
use crate::events::observation::{CommandAction, Scope};

/// State of the system breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemView {
    state: BreakerState,
    known: BTreeSet<String>,
    tripped: BTreeSet<String>,
}

impl Default for SystemView {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed,
            known: BTreeSet::new(),
            tripped: BTreeSet::new(),
        }
    }
}

impl SystemView {
    /// Notes a service seen in an observation.
    pub fn know(&mut self, service: &str, s: &SystemSettings) -> Option<Change> {
        if self.known.contains(service) {
            return None;
        }
        self.known.insert(service.to_owned());
        self.evaluate(s)
    }

    /// Folds a breaker decision.
    pub fn observe(&mut self, d: &BreakerDecision, s: &SystemSettings) -> Option<Change> {
        if d.scope != Scope::Service {
            return None;
        }
        self.known.insert(d.target.clone());
        if d.to.is_tripped() {
            self.tripped.insert(d.target.clone());
        } else {
            self.tripped.remove(&d.target);
        }
        self.evaluate(s)
    }

    fn share(&self) -> f64 {
        if self.known.is_empty() {
            0.0
        } else {
            self.tripped.len() as f64 * 100.0 / self.known.len() as f64
        }
    }

    fn change(
        &self,
        from: BreakerState,
        to: BreakerState,
        trigger: BreakerTrigger,
        s: &SystemSettings,
        note: String,
    ) -> Change {
        Change {
            from,
            to,
            trigger,
            tally: Tally {
                calls: self.known.len() as u64,
                failed: self.tripped.len() as u64,
                slow: 0,
            },
            failure_rate: Some(self.share()),
            slow_call_rate: None,
            threshold: s.open_services_threshold,
            permitted_calls: None,
            open_until: None,
            note,
        }
    }

    fn evaluate(&mut self, s: &SystemSettings) -> Option<Change> {
        let enough = self.known.len() as u64 >= s.minimum_services;
        let above = enough && self.share() >= s.open_services_threshold;
        let to = match (self.state, above) {
            (BreakerState::Closed, true) => BreakerState::Open,
            (BreakerState::Open, false) => BreakerState::Closed,
            _ => return None,
        };
        legal(self.state, to, BreakerTrigger::OpenServices).ok()?;
        let from = std::mem::replace(&mut self.state, to);
        let names = self.tripped.iter().cloned().collect::<Vec<_>>().join(", ");
        Some(self.change(from, to, BreakerTrigger::OpenServices, s, names))
    }

    /// An operator command with scope `system`.
    pub fn command(
        &mut self,
        action: CommandAction,
        s: &SystemSettings,
        note: String,
    ) -> Option<Change> {
        let to = match action {
            CommandAction::ForceOpen => BreakerState::ForcedOpen,
            CommandAction::ForceClose | CommandAction::Reset => BreakerState::Closed,
            CommandAction::Disable => BreakerState::Disabled,
            _ => return None,
        };
        let from = self.state;
        if from == to {
            return None;
        }
        legal(from, to, BreakerTrigger::Command).ok()?;
        self.state = to;
        Some(self.change(from, to, BreakerTrigger::Command, s, note))
    }
}
