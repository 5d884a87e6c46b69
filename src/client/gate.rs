//! The breaker gate: a client's side of a circuit breaker.
//!
//! The breaker agent decides; the gate only follows its decisions. Closed,
//! disabled and metrics-only let every call through. Open and forced-open
//! refuse every call, even after `open_until` has passed: leaving the open
//! state is the agent's decision (its half-open transition), so that every
//! client moves together and the log says when they did. Half-open admits
//! exactly `permitted_calls` probes and then refuses until the agent's next
//! decision.

use crate::events::decision::{BreakerDecision, BreakerState};

/// One breaker as a client sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    state: BreakerState,
    permits: u32,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed,
            permits: 0,
        }
    }
}

/// Whether a call may go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Yes.
    Allowed,
    /// Yes, as one of the half-open probes.
    Probe,
    /// No.
    Refused,
}

impl Gate {
    /// Follows a breaker decision.
    pub fn apply(&mut self, d: &BreakerDecision) {
        self.state = d.to;
        self.permits = if d.to == BreakerState::HalfOpen {
            d.permitted_calls.unwrap_or(0)
        } else {
            0
        };
    }

    /// The breaker's state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a call would be admitted, without taking a probe.
    pub fn would_admit(&self) -> bool {
        match self.state {
            BreakerState::Open | BreakerState::ForcedOpen => false,
            BreakerState::HalfOpen => self.permits > 0,
            BreakerState::Closed | BreakerState::Disabled | BreakerState::MetricsOnly => true,
        }
    }

    /// Admits a call (taking a probe in half-open) or refuses it.
    pub fn admit(&mut self) -> Admission {
        match self.state {
            BreakerState::HalfOpen if self.permits > 0 => {
                self.permits -= 1;
                Admission::Probe
            }
            _ if self.would_admit() => Admission::Allowed,
            _ => Admission::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decision::BreakerTrigger;
    use crate::events::observation::Scope;

    pub(crate) fn decision(to: BreakerState, permitted: Option<u32>) -> BreakerDecision {
        BreakerDecision {
            scope: Scope::Service,
            target: "api".into(),
            from: BreakerState::Closed,
            to,
            trigger: BreakerTrigger::Command,
            failure_rate: None,
            slow_call_rate: None,
            calls: 0,
            failed: 0,
            slow: 0,
            threshold: 0.0,
            permitted_calls: permitted,
            open_until: None,
            reason: String::new(),
        }
    }

    #[test]
    fn open_refuses_and_half_open_admits_exactly_the_permitted_probes() {
        let mut g = Gate::default();
        assert_eq!(g.admit(), Admission::Allowed);
        g.apply(&decision(BreakerState::Open, None));
        assert!((0..100).all(|_| g.admit() == Admission::Refused));
        g.apply(&decision(BreakerState::HalfOpen, Some(3)));
        let admitted: Vec<_> = (0..10).map(|_| g.admit()).collect();
        assert_eq!(admitted[..3], [Admission::Probe; 3]);
        assert!(admitted[3..].iter().all(|&a| a == Admission::Refused));
        g.apply(&decision(BreakerState::Closed, None));
        assert_eq!(g.admit(), Admission::Allowed);
    }

    #[test]
    fn operator_states() {
        let mut g = Gate::default();
        for (state, admits) in [
            (BreakerState::ForcedOpen, false),
            (BreakerState::Disabled, true),
            (BreakerState::MetricsOnly, true),
        ] {
            g.apply(&decision(state, None));
            assert_eq!(g.admit() != Admission::Refused, admits, "{state:?}");
        }
    }
}
