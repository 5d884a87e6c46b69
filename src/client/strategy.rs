//! Load-balancing strategies: how one endpoint is chosen among the
//! selectable ones of a group.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A named load-balancing strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// Smooth weighted round robin over endpoint weights.
    Weighted,
    /// Uniformly at random (seeded).
    Random,
    /// Power of two choices on requests in flight.
    LeastRequest,
    /// Power of two choices on peak-EWMA latency × (in flight + 1), as Linkerd.
    LatencyEwma,
    /// Consistent hashing of the request key (sticky sessions).
    RingHash,
    /// The local region first, failing over by Envoy's priority levels; round robin within.
    LocalityPriority,
    /// Versions by the canary weights of the route decision; round robin within.
    CanarySplit,
}

impl Strategy {
    /// All strategies.
    pub const ALL: [Strategy; 8] = [
        Strategy::RoundRobin,
        Strategy::Weighted,
        Strategy::Random,
        Strategy::LeastRequest,
        Strategy::LatencyEwma,
        Strategy::RingHash,
        Strategy::LocalityPriority,
        Strategy::CanarySplit,
    ];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Weighted => "weighted",
            Self::Random => "random",
            Self::LeastRequest => "least_request",
            Self::LatencyEwma => "latency_ewma",
            Self::RingHash => "ring_hash",
            Self::LocalityPriority => "locality_priority",
            Self::CanarySplit => "canary_split",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown strategy {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Peak-EWMA latency (Finagle/Linkerd): jumps up to a slower observation at
/// once, decays towards faster ones with time constant `tau_ms`.
pub fn peak_ewma(cost: f64, observed: f64, elapsed_ms: f64, tau_ms: f64) -> f64 {
    if observed > cost {
        observed
    } else {
        let w = (-elapsed_ms.max(0.0) / tau_ms).exp();
        cost * w + observed * (1.0 - w)
    }
}

/// An estimate last measured `elapsed_ms` ago, as read now: it decays
/// towards zero with time constant `tau_ms` (as tower's and Finagle's do),
/// so an endpoint that lost every comparison, and so was never measured
/// again, is tried again once its bad estimate has faded.
pub fn decayed(cost: f64, elapsed_ms: f64, tau_ms: f64) -> f64 {
    cost * (-elapsed_ms.max(0.0) / tau_ms).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_listed() {
        for s in Strategy::ALL {
            assert_eq!(s.as_str().parse::<Strategy>().unwrap(), s);
        }
        let e = "fastest".parse::<Strategy>().unwrap_err();
        assert!(e.contains("\"fastest\"") && e.contains("ring_hash"), "{e}");
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        assert_eq!(peak_ewma(10.0, 50.0, 0.0, 10_000.0), 50.0);
        let after = peak_ewma(50.0, 10.0, 10_000.0, 10_000.0);
        assert!((after - (10.0 + 40.0 / std::f64::consts::E)).abs() < 1e-9);
        assert_eq!(peak_ewma(50.0, 10.0, 0.0, 10_000.0), 50.0);
    }
}
