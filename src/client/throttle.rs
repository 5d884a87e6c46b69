//! Adaptive client-side throttling (Google SRE book, "Handling Overload").
//!
//! A breaker is binary: open refuses every call. That is right for a
//! dependency that is down, and wrong for one that is overloaded and still
//! serves most of what it can: opening turns "60 % served" into "0 %
//! served", and closing again sends the whole load back at once. An
//! overloaded backend needs *less* traffic, not none. Each client therefore
//! tracks, over a short sliding window, the calls it attempted and the calls
//! the backend accepted (answered in time, even with an error: only load
//! refusals and timeouts are not accepted), and refuses a new call locally
//! with probability
//!
//! ```text
//! p = max(0, (requests − K · accepts) / (requests + 1))
//! ```
//!
//! While the backend accepts more than 1/K of what is sent, nothing is
//! refused. Past that, the client sends about K times what the backend
//! accepts: enough excess that the backend's own signal stays fresh, little
//! enough that a backlog drains. Refused calls count as requests, so a
//! backend that stops accepting is soon spared almost all traffic, and one
//! that recovers sees the refusals fade within a window. Errors that are
//! not about load do not throttle: refusing calls to a service that fails
//! 30 % of them at random would only fail more.
//!
//! K = 2 and a 2-minute window are the book's values; the window here
//! defaults to 10 s so that throttling follows a spike as it comes and goes
//! (the agents, deciding per reported window, cannot). Time is passed in and
//! the draw comes from the client's seeded generator: deterministic.

/// Throttling parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrottleConfig {
    /// Multiplier K: calls sent per call accepted before refusing (≥ 1;
    /// lower refuses earlier).
    pub k: f64,
    /// Sliding window, whole seconds (≥ 1).
    pub window_s: u32,
    /// Highest refusal probability (0–1]. At 1 (the book) a backend that
    /// accepts nothing still gets about one call per window, since
    /// `requests / (requests + 1) < 1`; lower keeps a larger share flowing
    /// so that recovery is seen sooner.
    pub max_refusal: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            k: 2.0,
            window_s: 10,
            max_refusal: 1.0,
        }
    }
}

/// Requests and accepts over the last `window_s` seconds, per second.
#[derive(Clone, Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    /// (second, requests, accepts) per slot, slot = second % window.
    slots: Vec<(i64, u32, u32)>,
}

impl Throttle {
    /// An empty history.
    pub fn new(config: ThrottleConfig) -> Self {
        let n = config.window_s.max(1) as usize;
        Self {
            config,
            slots: vec![(i64::MIN, 0, 0); n],
        }
    }

    fn slot(&mut self, second: i64) -> &mut (i64, u32, u32) {
        let n = self.slots.len() as i64;
        let s = &mut self.slots[second.rem_euclid(n) as usize];
        if s.0 != second {
            *s = (second, 0, 0);
        }
        s
    }

    /// (requests, accepts) over the window ending at `second`.
    pub fn totals(&self, second: i64) -> (u64, u64) {
        let oldest = second - self.slots.len() as i64;
        self.slots
            .iter()
            .filter(|s| s.0 > oldest && s.0 <= second)
            .fold((0, 0), |(r, a), s| (r + u64::from(s.1), a + u64::from(s.2)))
    }

    /// The refusal probability at `second`.
    pub fn probability(&self, second: i64) -> f64 {
        let (requests, accepts) = self.totals(second);
        let r = requests as f64;
        ((r - self.config.k * accepts as f64) / (r + 1.0)).clamp(0.0, self.config.max_refusal)
    }

    /// Counts a request at `second` and says whether it goes ahead; `draw`
    /// is uniform in [0, 1).
    pub fn admit(&mut self, second: i64, draw: f64) -> bool {
        let p = self.probability(second);
        self.slot(second).1 += 1;
        draw >= p
    }

    /// Counts a request that the backend accepted, at `second`.
    pub fn accepted(&mut self, second: i64) {
        self.slot(second).2 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// `calls` attempts in `second`; `serve(n)` says whether the n-th sent
    /// is accepted. Returns how many were sent.
    fn run(
        t: &mut Throttle,
        rng: &mut ChaCha8Rng,
        second: i64,
        calls: u32,
        serve: impl Fn(u32) -> bool,
    ) -> u32 {
        let mut sent = 0;
        for _ in 0..calls {
            if t.admit(second, crate::client::unit(rng)) {
                sent += 1;
                if serve(sent) {
                    t.accepted(second);
                }
            }
        }
        sent
    }

    #[test]
    fn a_healthy_backend_is_never_throttled() {
        let mut t = Throttle::new(ThrottleConfig::default());
        let rng = &mut ChaCha8Rng::seed_from_u64(1);
        for s in 0..60 {
            assert_eq!(run(&mut t, rng, s, 100, |_| true), 100);
        }
        // A third refused is still more than 1/K accepted: nothing refused locally.
        for s in 60..120 {
            assert_eq!(run(&mut t, rng, s, 100, |n| n % 3 != 0), 100);
        }
    }

    #[test]
    fn an_overloaded_backend_gets_about_k_times_what_it_accepts() {
        let mut t = Throttle::new(ThrottleConfig::default());
        let rng = &mut ChaCha8Rng::seed_from_u64(2);
        // The backend accepts 20 calls a second, whatever is sent.
        let sent: u32 = (0..120)
            .map(|s| run(&mut t, rng, s, 100, |n| n <= 20))
            .skip(60)
            .sum();
        let per_second = f64::from(sent) / 60.0;
        assert!(
            (36.0..=44.0).contains(&per_second),
            "sent {per_second} a second of 100 for 20 accepted"
        );
    }

    #[test]
    fn a_dead_backend_is_spared_and_a_recovered_one_gets_everything_back() {
        let mut t = Throttle::new(ThrottleConfig::default());
        let rng = &mut ChaCha8Rng::seed_from_u64(3);
        let sent: u32 = (0..30).map(|s| run(&mut t, rng, s, 100, |_| false)).sum();
        assert!(sent < 100, "{sent} of 3000 sent to a dead backend");
        // Each window the share sent about doubles (K = 2): from a trickle
        // to everything in well under a minute.
        let back = (30..120)
            .find(|&s| run(&mut t, rng, s, 100, |_| true) == 100 && t.probability(s) == 0.0)
            .expect("recovered");
        assert!(back - 30 <= 60, "took {} s", back - 30);
    }

    #[test]
    fn old_seconds_leave_the_window() {
        let mut t = Throttle::new(ThrottleConfig {
            window_s: 3,
            ..ThrottleConfig::default()
        });
        run(&mut t, &mut ChaCha8Rng::seed_from_u64(4), 0, 10, |_| false);
        assert_eq!(t.totals(2), (10, 0));
        assert_eq!(t.totals(3), (0, 0));
        assert_eq!(t.probability(3), 0.0);
    }
}
