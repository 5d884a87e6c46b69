//! Turning observations into outcome tallies.
//!
//! Defaults follow common practice: status 0 (transport error) and 5xx are
//! failures, everything else a success. A publisher's own `outcome` overrides
//! the status; statuses in `ignore_statuses` are never counted (like
//! resilience4j's ignored exceptions). A call is slow when its latency is at or
//! above `slow_call_duration_threshold_ms` (inclusive, as in resilience4j).

use super::config::Settings;
use super::window::Tally;
use crate::events::observation::{Outcome, Request, Window};

/// The tally of one request, or `None` when it is ignored.
pub fn request(r: &Request, s: &Settings) -> Option<Tally> {
    let failed = match r.outcome {
        Some(Outcome::Ignored) => return None,
        Some(Outcome::Failure) => true,
        Some(Outcome::Success) => false,
        None => {
            let status = r.status?;
            if s.ignore_statuses.contains(status) {
                return None;
            }
            s.failure_statuses.contains(status)
        }
    };
    let slow = r.latency_ms.is_some_and(|l| l >= s.slow_call_duration_ms);
    Some(Tally {
        calls: 1,
        failed: u64::from(failed),
        slow: u64::from(slow),
    })
}

/// The tally of a window: `errors` failures, the rest successes, `slow` of them slow.
pub fn window(w: &Window) -> Tally {
    Tally {
        calls: w.requests,
        failed: w.errors,
        slow: w.slow.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn req(status: u16, outcome: Option<Outcome>, latency: f64) -> Request {
        Request {
            status: Some(status),
            outcome,
            latency_ms: Some(latency),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let text = "[breaker.default]\nslow_call_duration_threshold_ms = 100\nignore_statuses = [404, \"3xx\"]\n";
        let s = Config::from_toml(text, "t").unwrap().breaker.default;
        assert_eq!(
            request(&req(503, None, 1.0), &s),
            Some(Tally {
                calls: 1,
                failed: 1,
                slow: 0
            })
        );
        assert_eq!(request(&req(0, None, 1.0), &s).unwrap().failed, 1);
        assert_eq!(
            request(&req(200, None, 100.0), &s),
            Some(Tally {
                calls: 1,
                failed: 0,
                slow: 1
            })
        );
        assert_eq!(
            request(&req(200, Some(Outcome::Failure), 1.0), &s)
                .unwrap()
                .failed,
            1
        );
        assert_eq!(
            request(&req(503, Some(Outcome::Success), 1.0), &s)
                .unwrap()
                .failed,
            0
        );
        assert_eq!(request(&req(503, Some(Outcome::Ignored), 1.0), &s), None);
        assert_eq!(request(&req(404, None, 1.0), &s), None);
        assert_eq!(request(&req(302, None, 1.0), &s), None);
    }
}
