//! Failure accrual: an endpoint that refuses or times out several calls in a
//! row leaves this client's rotation at once, for a jittered backoff.
//!
//! The router ejects outliers from windowed statistics, so it sees a host
//! go bad one reporting window late, and everyone follows its decision.
//! Meanwhile round robin keeps sending the host its full share: a host
//! crushed by a noisy neighbour times out a sixth of all calls for tens of
//! seconds. Every caller already knows sooner: its own calls are failing.
//! Like Linkerd's failure accrual (and Envoy's `consecutive_5xx`), the
//! client takes such a host out locally after `consecutive` calls in a row
//! were not accepted, for `base_ms` doubling up to `max_ms` each time it is
//! taken out again, less a seeded random share (`jitter`) so that many
//! clients do not return together.
//!
//! A host back from a time out is on probation for `calm_ms`: a single
//! rejection then takes it out again, for twice as long, and the doubling
//! is forgiven one step per `calm_ms` spent back without a time out
//! (Envoy's ejection multiplier). Ending the probation at the first
//! accepted call and resetting the backoff, as Linkerd does, suits a host
//! that failed once; a host that is merely short of capacity (a noisy
//! neighbour took its CPU) drains while out, answers its first calls, and
//! is crushed again by its full share a moment later. Reset, it cycles out
//! and in every second, timing out five calls each time; on probation it
//! costs one timed-out call per return, and returns ever less often.
//!
//! Only [`super::Outcome::Rejected`] counts (refusals and timeouts): a
//! host that answers with errors is answering; the router's success-rate
//! test judges those. And only an outlier is taken out: while the other
//! endpoints (the median one) reject `peer_rejected_below` or more of
//! their recent calls too, the trouble is the service's (an overload, a
//! slow release), and taking hosts out would only pile their share on the
//! rest; the throttle, the breakers and the rollback agent handle that. For
//! the same reason at most `max_out_percent` of the endpoints (at least
//! one) are out at once.

use crate::events::Timestamp;

/// Failure accrual parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccrualConfig {
    /// Rejected calls in a row that take an endpoint out (≥ 1).
    pub consecutive: u32,
    /// First time out, ms (≥ 1).
    pub base_ms: u64,
    /// Longest time out, ms (≥ `base_ms`).
    pub max_ms: u64,
    /// Share of each backoff taken off at random, 0–1.
    pub jitter: f64,
    /// Probation after a time out, and the time back without one that
    /// forgives one doubling, ms (≥ 1).
    pub calm_ms: u64,
    /// Most endpoints out at once, percent of those known (at least one is
    /// always allowed).
    pub max_out_percent: f64,
    /// A host is an outlier only while the others in the rotation have
    /// rejected less than this share of their recent calls (median), 0–1.
    pub peer_rejected_below: f64,
}

impl Default for AccrualConfig {
    /// Linkerd's backoff (1 s doubling to 60 s, half jitter), Envoy's five
    /// in a row and its 10 s interval.
    fn default() -> Self {
        Self {
            consecutive: 5,
            base_ms: 1_000,
            max_ms: 60_000,
            jitter: 0.5,
            calm_ms: 10_000,
            max_out_percent: 10.0,
            peer_rejected_below: 0.2,
        }
    }
}

/// One endpoint's accrual state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accrual {
    /// Rejected calls in a row.
    failures: u32,
    /// Share of recent calls rejected (moving average over about
    /// [`RECENT`] calls).
    rejected: f64,
    /// Doublings of the next time out.
    level: u32,
    /// End of the latest time out (past or current).
    out_until: Option<Timestamp>,
}

impl Accrual {
    /// Whether the endpoint is out of the rotation at `now`.
    pub fn is_out(&self, now: Timestamp) -> bool {
        self.out_until(now).is_some()
    }

    /// Share of its recent calls it rejected.
    pub fn rejected(&self) -> f64 {
        self.rejected
    }

    /// When the time out in force at `now` ends (`None`: in the rotation).
    pub fn out_until(&self, now: Timestamp) -> Option<Timestamp> {
        self.out_until.filter(|&t| now < t)
    }

    /// Records a call's outcome at `now`; returns whether the endpoint has
    /// earned a time out. Outcomes that arrive while it is out (calls sent
    /// before) change nothing.
    pub fn record(&mut self, now: Timestamp, rejected: bool, config: &AccrualConfig) -> bool {
        if self.is_out(now) {
            return false;
        }
        self.rejected += (f64::from(u8::from(rejected)) - self.rejected) / RECENT;
        if !rejected {
            self.failures = 0;
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        let probation = self
            .out_until
            .is_some_and(|end| now.millis_since(end) < config.calm_ms as f64);
        probation || self.failures >= config.consecutive.max(1)
    }

    /// Takes the endpoint out from `now`; `draw` is uniform in [0, 1).
    /// Returns the end of the time out.
    pub fn take_out(&mut self, now: Timestamp, draw: f64, config: &AccrualConfig) -> Timestamp {
        if let Some(end) = self.out_until {
            let calm = (now.millis_since(end) / config.calm_ms.max(1) as f64).max(0.0);
            self.level = self
                .level
                .saturating_sub(calm.min(f64::from(u32::MAX)) as u32);
        }
        let base = config.base_ms.max(1) as f64;
        let backoff = (base * 2f64.powi(self.level.min(62) as i32)).min(config.max_ms as f64);
        let ms = backoff * (1.0 - config.jitter.clamp(0.0, 1.0) * draw);
        let until = now.plus_millis(ms.max(1.0) as u64);
        self.level = self.level.saturating_add(1);
        self.failures = 0;
        self.out_until = Some(until);
        until
    }
}

/// Calls the rejected share is averaged over.
pub const RECENT: f64 = 10.0;

/// Whether a host may be taken out, given the rejected shares of the
/// others in the rotation: the median one must be accepting. (The median,
/// not the mean: two bad hosts of six are each an outlier.)
pub fn is_outlier(peers: impl Iterator<Item = f64>, config: &AccrualConfig) -> bool {
    let mut peers: Vec<f64> = peers.collect();
    if peers.is_empty() {
        return false;
    }
    peers.sort_by(f64::total_cmp);
    peers[(peers.len() - 1) / 2] < config.peer_rejected_below
}

/// Endpoints that may be out at once among `known`.
pub fn cap(known: usize, config: &AccrualConfig) -> usize {
    ((known as f64 * config.max_out_percent / 100.0).floor() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_000_000);

    fn at(ms: u64) -> Timestamp {
        T0.plus_millis(ms)
    }

    #[test]
    fn only_an_unbroken_run_of_rejections_earns_a_time_out() {
        let c = AccrualConfig::default();
        let mut a = Accrual::default();
        for _ in 0..4 {
            assert!(!a.record(T0, true, &c));
        }
        assert!(!a.record(T0, false, &c), "an accepted call breaks the run");
        for _ in 0..4 {
            assert!(!a.record(T0, true, &c));
        }
        assert!(a.record(T0, true, &c), "the fifth in a row");
    }

    #[test]
    fn on_probation_one_rejection_doubles_the_time_out_and_calm_forgives_it() {
        let c = AccrualConfig {
            jitter: 0.0,
            ..AccrualConfig::default()
        };
        let mut a = Accrual::default();
        for _ in 0..5 {
            a.record(T0, true, &c);
        }
        assert_eq!(a.take_out(T0, 0.5, &c), at(1_000));
        assert!(a.is_out(at(999)) && !a.is_out(at(1_000)));
        assert!(
            !a.record(at(500), true, &c),
            "late outcomes while out are ignored"
        );
        // Back on probation: accepted calls do not end it...
        assert!(!a.record(at(1_000), false, &c));
        assert!(!a.record(at(1_200), false, &c));
        // ...one rejection within calm_ms takes it out for twice as long.
        assert!(a.record(at(1_300), true, &c));
        assert_eq!(a.take_out(at(1_300), 0.5, &c), at(3_300));
        assert!(a.record(at(3_300), true, &c));
        assert_eq!(a.take_out(at(3_300), 0.5, &c), at(7_300));
        // Past its probation it needs five in a row again...
        for _ in 0..4 {
            assert!(!a.record(at(17_300), true, &c));
        }
        assert!(a.record(at(17_300), true, &c));
        // ...and the 10 s of calm forgave one doubling: 8 s → 4 s.
        assert_eq!(a.take_out(at(17_300), 0.5, &c), at(21_300));
        // A long calm forgives them all.
        for _ in 0..5 {
            a.record(at(1_000_000), true, &c);
        }
        assert_eq!(a.take_out(at(1_000_000), 0.5, &c), at(1_001_000));
    }

    #[test]
    fn backoff_is_capped_and_jitter_only_shortens_it() {
        let c = AccrualConfig::default();
        let mut a = Accrual::default();
        let mut now = T0;
        for _ in 0..20 {
            let until = a.take_out(now, 0.0, &c);
            assert!(until.millis_since(now) <= 60_000.0);
            now = until;
        }
        assert_eq!(a.take_out(now, 0.0, &c).millis_since(now), 60_000.0);
        assert_eq!(a.take_out(now, 0.999_999, &c).millis_since(now), 30_000.0);
    }

    #[test]
    fn a_host_is_an_outlier_only_while_its_peers_accept() {
        let c = AccrualConfig::default();
        let mut peer = Accrual::default();
        for _ in 0..20 {
            peer.record(T0, false, &c);
        }
        assert!(is_outlier([peer.rejected(); 5].into_iter(), &c));
        // Every other call rejected everywhere: overload, not an outlier.
        for k in 0..20 {
            peer.record(T0, k % 2 == 0, &c);
        }
        assert!((0.4..0.6).contains(&peer.rejected()), "{}", peer.rejected());
        assert!(!is_outlier([peer.rejected(); 5].into_iter(), &c));
        assert!(
            !is_outlier(std::iter::empty(), &c),
            "no peers to compare with"
        );
        assert!(
            is_outlier([0.0, 0.0, 0.0, 0.0, 1.0].into_iter(), &c),
            "two bad of six"
        );
        assert!(!is_outlier([0.0, 0.0, 1.0, 1.0, 1.0].into_iter(), &c));
    }

    #[test]
    fn at_least_one_endpoint_may_be_out() {
        let c = AccrualConfig::default();
        assert_eq!(cap(1, &c), 1);
        assert_eq!(cap(6, &c), 1);
        assert_eq!(cap(20, &c), 2);
        assert_eq!(cap(100, &c), 10);
    }
}
