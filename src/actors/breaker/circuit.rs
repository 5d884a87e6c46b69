//! One circuit breaker's state machine.
//!
//! Semantics follow resilience4j's CircuitBreaker:
//!
//! * **closed**: outcomes go into the sliding window. Rates are *unknown*
//!   until the window holds `minimum_number_of_calls` (capped at the window
//!   size for count windows) and never trip while unknown. Thresholds are
//!   inclusive (`rate >= threshold` trips). Optional extra triggers: an
//!   absolute failure count in the window and N consecutive failures (Envoy's
//!   consecutive 5xx); these need no minimum volume.
//! * **open**: outcomes are not recorded. At `open_until` a timer moves to
//!   half-open. The wait is `base × multiplier^reopens`, capped, where
//!   `reopens` counts consecutive re-opens from half-open and resets on close.
//! * **half_open**: a fresh count window of `permitted` probe calls; the
//!   verdict comes after `min(minimum calls, permitted)` recorded outcomes:
//!   rates at or above a threshold re-open, otherwise close (with a fresh
//!   window). A `faultline.window` arriving in half-open is scaled down to the
//!   remaining probe budget, keeping its failure and slow proportions (rounded
//!   half up), since its calls beyond the budget would have been refused. With
//!   a half-open maximum wait, a timer re-opens when no verdict came in time.
//! * **forced_open**, **disabled**: by command only; nothing is recorded.
//! * `force_close` and `reset` always start a fresh window (and clear the
//!   backoff), even on a closed breaker, where they emit nothing.
//! * Deadlines are inclusive: a probe arriving exactly at the half-open time
//!   limit comes after the timer that re-opened the breaker.
//! * **metrics_only**: outcomes recorded, nothing trips; crossing a threshold
//!   emits one decision (to = metrics_only) per crossing.
//!
//! Self-transitions emit nothing (except the metrics-only crossing report) and
//! transitions outside [`legal`] are refused.

use serde::{Deserialize, Serialize};

use super::adaptive::Baseline;
use super::config::{Settings, WindowType};
use super::window::{CountWindow, Tally, TimeWindow};
use crate::events::decision::{BreakerState, BreakerTrigger};
use crate::events::observation::CommandAction;
use crate::events::Timestamp;

/// The closed-state window, of the configured kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Sliding {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Sliding {
    fn new(s: &Settings) -> Self {
        match s.window_type {
            WindowType::Count => Self::Count(CountWindow::new(u64::from(s.window_size))),
            WindowType::Time => Self::Time(TimeWindow::new(s.window_size)),
        }
    }
}

/// A state change (or metrics-only crossing) with the numbers behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// Cause.
    pub trigger: BreakerTrigger,
    /// Window contents at the decision.
    pub tally: Tally,
    /// Failure rate, when known.
    pub failure_rate: Option<f64>,
    /// Slow-call rate, when known.
    pub slow_call_rate: Option<f64>,
    /// Threshold compared.
    pub threshold: f64,
    /// Probe budget, entering half-open.
    pub permitted_calls: Option<u32>,
    /// End of the open wait, entering open.
    pub open_until: Option<Timestamp>,
    /// Extra words for the reason (who commanded, etc.).
    pub note: String,
}

/// An attempted transition that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal breaker transition {from:?} -> {to:?} ({trigger:?})")]
pub struct IllegalTransition {
    /// From.
    pub from: BreakerState,
    /// To.
    pub to: BreakerState,
    /// Claimed cause.
    pub trigger: BreakerTrigger,
}

/// Whether `from -> to` is allowed for `trigger`.
pub fn legal(
    from: BreakerState,
    to: BreakerState,
    trigger: BreakerTrigger,
) -> Result<(), IllegalTransition> {
    use BreakerState::*;
    use BreakerTrigger::*;
    let ok = match trigger {
        Command => matches!(to, Closed | ForcedOpen | Disabled | MetricsOnly),
        FailureRate | SlowCallRate | ErrorCount | ConsecutiveFailures => {
            matches!(
                (from, to),
                (Closed, Open) | (HalfOpen, Open) | (MetricsOnly, MetricsOnly)
            )
        }
        ProbesHealthy => (from, to) == (HalfOpen, Closed),
        OpenWaitElapsed => (from, to) == (Open, HalfOpen),
        HalfOpenTimeout => (from, to) == (HalfOpen, Open),
        OpenServices => matches!((from, to), (Closed, Open) | (Open, Closed)),
    };
    if ok {
        Ok(())
    } else {
        Err(IllegalTransition { from, to, trigger })
    }
}

/// One breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Circuit {
    state: BreakerState,
    window: Sliding,
    probes: CountWindow,
    consecutive_failures: u64,
    reopens: u32,
    open_until: Option<Timestamp>,
    half_open_until: Option<Timestamp>,
    above: bool,
    baseline: Baseline,
}

struct Verdict {
    trigger: BreakerTrigger,
    threshold: f64,
}

impl Circuit {
    /// A closed breaker with an empty window.
    pub fn new(s: &Settings) -> Self {
        Self {
            state: BreakerState::Closed,
            window: Sliding::new(s),
            probes: CountWindow::new(u64::from(s.permitted_half_open)),
            consecutive_failures: 0,
            reopens: 0,
            open_until: None,
            half_open_until: None,
            above: false,
            baseline: Baseline::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// What an enforcer needs: the state and when it next changes by itself.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({ "state": self.state, "until": self.deadline() })
    }

    /// When this breaker's next timer is due.
    pub fn deadline(&self) -> Option<Timestamp> {
        match self.state {
            BreakerState::Open => self.open_until,
            BreakerState::HalfOpen => self.half_open_until,
            _ => None,
        }
    }

    fn failure_threshold(&self, s: &Settings) -> f64 {
        match &s.adaptive {
            Some(a) => self.baseline.threshold(a, s.failure_rate_threshold),
            None => s.failure_rate_threshold,
        }
    }

    /// Records outcomes observed at `at` (over `interval_ms` before it for a
    /// window) with the agent clock at `now`. Returns false when the record was
    /// too old for a time window (late).
    pub fn record(
        &mut self,
        o: Tally,
        at: Timestamp,
        interval_ms: u64,
        now: Timestamp,
        s: &Settings,
    ) -> (bool, Option<Change>) {
        match self.state {
            BreakerState::Closed | BreakerState::MetricsOnly => {
                let in_window = match &mut self.window {
                    Sliding::Count(w) => {
                        w.add(o);
                        true
                    }
                    Sliding::Time(w) => w.add_spread(o, at, interval_ms, now),
                };
                if !in_window {
                    return (false, None);
                }
                self.consecutive_failures = if o.failed < o.calls {
                    o.failed
                } else {
                    self.consecutive_failures + o.failed
                };
                let change = self.evaluate_closed(now, s);
                // Judge first, learn after: the traffic being judged must not
                // raise the bar it is judged against, and an incident that
                // trips the breaker is not learned as normal.
                if self.state == BreakerState::Closed {
                    if let Some(a) = &s.adaptive {
                        self.baseline.learn(o, s.minimum_calls, a);
                    }
                }
                (true, change)
            }
            BreakerState::HalfOpen => {
                let room =
                    u64::from(s.permitted_half_open).saturating_sub(self.probes.tally().calls);
                let o = if o.calls > room { scale_up(o, room) } else { o };
                self.probes.add(o);
                (true, self.evaluate_half_open(now, s))
            }
            BreakerState::Open | BreakerState::ForcedOpen | BreakerState::Disabled => (true, None),
        }
    }

    fn tally(&mut self, now: Timestamp) -> Tally {
        match &mut self.window {
            Sliding::Count(w) => w.tally(),
            Sliding::Time(w) => w.tally(now),
        }
    }

    fn evaluate_closed(&mut self, now: Timestamp, s: &Settings) -> Option<Change> {
        let t = self.tally(now);
        let known = t.calls > 0 && t.calls >= s.effective_minimum_calls();
        let (fr, sr) = if known {
            (Some(t.failure_rate()), Some(t.slow_rate()))
        } else {
            (None, None)
        };
        let threshold = self.failure_threshold(s);
        let verdict = if fr.is_some_and(|r| r >= threshold) {
            Some(Verdict {
                trigger: BreakerTrigger::FailureRate,
                threshold,
            })
        } else if sr.is_some_and(|r| r >= s.slow_call_rate_threshold) {
            Some(Verdict {
                trigger: BreakerTrigger::SlowCallRate,
                threshold: s.slow_call_rate_threshold,
            })
        } else if let Some(n) = s.error_count_threshold.filter(|&n| t.failed >= n) {
            Some(Verdict {
                trigger: BreakerTrigger::ErrorCount,
                threshold: n as f64,
            })
        } else {
            s.consecutive_failures_threshold
                .filter(|&n| self.consecutive_failures >= n)
                .map(|n| Verdict {
                    trigger: BreakerTrigger::ConsecutiveFailures,
                    threshold: n as f64,
                })
        };
        let change = |from, to, v: &Verdict, open_until| Change {
            from,
            to,
            trigger: v.trigger,
            tally: t,
            failure_rate: fr,
            slow_call_rate: sr,
            threshold: v.threshold,
            permitted_calls: None,
            open_until,
            note: String::new(),
        };
        match (self.state, verdict) {
            (BreakerState::MetricsOnly, Some(v)) if !self.above => {
                self.above = true;
                Some(change(
                    BreakerState::MetricsOnly,
                    BreakerState::MetricsOnly,
                    &v,
                    None,
                ))
            }
            (BreakerState::MetricsOnly, None) => {
                self.above = false;
                None
            }
            (BreakerState::Closed, Some(v)) => {
                let until = self.open(now, s);
                Some(change(
                    BreakerState::Closed,
                    BreakerState::Open,
                    &v,
                    Some(until),
                ))
            }
            _ => None,
        }
    }

    fn evaluate_half_open(&mut self, now: Timestamp, s: &Settings) -> Option<Change> {
        let t = self.probes.tally();
        let needed = s.minimum_calls.min(u64::from(s.permitted_half_open));
        if t.calls == 0 || t.calls < needed {
            return None;
        }
        let (fr, sr) = (t.failure_rate(), t.slow_rate());
        let threshold = self.failure_threshold(s);
        let (to, trigger, thr) = if fr >= threshold {
            (BreakerState::Open, BreakerTrigger::FailureRate, threshold)
        } else if sr >= s.slow_call_rate_threshold {
            (
                BreakerState::Open,
                BreakerTrigger::SlowCallRate,
                s.slow_call_rate_threshold,
            )
        } else {
            (
                BreakerState::Closed,
                BreakerTrigger::ProbesHealthy,
                threshold,
            )
        };
        let open_until = if to == BreakerState::Open {
            self.reopens += 1;
            Some(self.open(now, s))
        } else {
            self.close(s);
            None
        };
        Some(Change {
            from: BreakerState::HalfOpen,
            to,
            trigger,
            tally: t,
            failure_rate: Some(fr),
            slow_call_rate: Some(sr),
            threshold: thr,
            permitted_calls: None,
            open_until,
            note: String::new(),
        })
    }

    /// Enters open; returns the end of the wait.
    fn open(&mut self, now: Timestamp, s: &Settings) -> Timestamp {
        let until = now.plus_millis(s.open_wait_ms(self.reopens));
        self.state = BreakerState::Open;
        self.open_until = Some(until);
        self.half_open_until = None;
        until
    }

    /// Enters closed with a fresh window and no backoff history.
    fn close(&mut self, s: &Settings) {
        let baseline = std::mem::take(&mut self.baseline);
        *self = Self::new(s);
        self.baseline = baseline;
    }

    /// Fires due timers at `now`.
    pub fn on_timer(&mut self, now: Timestamp, s: &Settings) -> Option<Change> {
        let due = self.deadline().is_some_and(|d| d <= now);
        if !due {
            return None;
        }
        let base = Change {
            from: self.state,
            to: self.state,
            trigger: BreakerTrigger::OpenWaitElapsed,
            tally: Tally::default(),
            failure_rate: None,
            slow_call_rate: None,
            threshold: self.failure_threshold(s),
            permitted_calls: None,
            open_until: None,
            note: String::new(),
        };
        match self.state {
            BreakerState::Open => {
                legal(
                    BreakerState::Open,
                    BreakerState::HalfOpen,
                    BreakerTrigger::OpenWaitElapsed,
                )
                .ok()?;
                self.state = BreakerState::HalfOpen;
                self.open_until = None;
                self.probes = CountWindow::new(u64::from(s.permitted_half_open));
                self.half_open_until = s.max_wait_half_open_ms.map(|ms| now.plus_millis(ms));
                Some(Change {
                    to: BreakerState::HalfOpen,
                    permitted_calls: Some(s.permitted_half_open),
                    ..base
                })
            }
            BreakerState::HalfOpen => {
                self.reopens += 1;
                let tally = self.probes.tally();
                let until = self.open(now, s);
                Some(Change {
                    to: BreakerState::Open,
                    trigger: BreakerTrigger::HalfOpenTimeout,
                    tally,
                    open_until: Some(until),
                    ..base
                })
            }
            _ => None,
        }
    }

    /// Applies an operator command; `None` when it changes nothing visible.
    pub fn command(
        &mut self,
        action: CommandAction,
        now: Timestamp,
        s: &Settings,
        note: String,
    ) -> Option<Change> {
        let from = self.state;
        let t = self.tally(now);
        let to = match action {
            CommandAction::ForceOpen => BreakerState::ForcedOpen,
            CommandAction::ForceClose | CommandAction::Reset => BreakerState::Closed,
            CommandAction::Disable => BreakerState::Disabled,
            CommandAction::MetricsOnly => BreakerState::MetricsOnly,
            _ => return None,
        };
        legal(from, to, BreakerTrigger::Command).ok()?;
        match to {
            BreakerState::Closed => self.close(s),
            BreakerState::MetricsOnly if from != BreakerState::MetricsOnly => {
                self.close(s);
                self.state = BreakerState::MetricsOnly;
            }
            BreakerState::ForcedOpen | BreakerState::Disabled => {
                self.state = to;
                self.open_until = None;
                self.half_open_until = None;
            }
            _ => {}
        }
        if from == to {
            return None;
        }
        Some(Change {
            from,
            to,
            trigger: BreakerTrigger::Command,
            tally: t,
            failure_rate: None,
            slow_call_rate: None,
            threshold: self.failure_threshold(s),
            permitted_calls: None,
            open_until: None,
            note,
        })
    }
}

/// `o` scaled to `room` calls, rounding failures and slow calls up so a failing
/// window never slips through the probe budget looking healthy.
fn scale_up(o: Tally, room: u64) -> Tally {
    if o.calls == 0 || room == 0 {
        return Tally::default();
    }
    let up = |x: u64| ((u128::from(x) * u128::from(room)).div_ceil(u128::from(o.calls))) as u64;
    Tally {
        calls: room,
        failed: up(o.failed).min(room),
        slow: up(o.slow).min(room),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn settings(extra: &str) -> Settings {
        let text = format!("[breaker.default]\nsliding_window_size = 4\nminimum_number_of_calls = 4\npermitted_number_of_calls_in_half_open_state = 2\nwait_duration_in_open_state_ms = 1000\n{extra}");
        Config::from_toml(&text, "t").unwrap().breaker.default
    }

    fn one(failed: bool) -> Tally {
        Tally {
            calls: 1,
            failed: u64::from(failed),
            slow: 0,
        }
    }

    #[test]
    fn illegal_transitions_are_refused() {
        use BreakerState::*;
        assert!(legal(Closed, HalfOpen, BreakerTrigger::OpenWaitElapsed).is_err());
        assert!(legal(ForcedOpen, HalfOpen, BreakerTrigger::OpenWaitElapsed).is_err());
        assert!(legal(Disabled, Open, BreakerTrigger::FailureRate).is_err());
        assert!(legal(Open, Closed, BreakerTrigger::ProbesHealthy).is_err());
        assert!(legal(Closed, Open, BreakerTrigger::FailureRate).is_ok());
    }

    #[test]
    fn full_cycle() {
        let s = settings("");
        let now = Timestamp::from_millis(0);
        let mut c = Circuit::new(&s);
        for f in [true, false, true] {
            assert_eq!(c.record(one(f), now, 0, now, &s).1, None);
        }
        let ch = c.record(one(false), now, 0, now, &s).1.unwrap();
        assert_eq!(
            (ch.from, ch.to, ch.failure_rate),
            (BreakerState::Closed, BreakerState::Open, Some(50.0))
        );
        assert_eq!(c.deadline(), Some(Timestamp::from_millis(1000)));
        assert!(c.on_timer(Timestamp::from_millis(999), &s).is_none());
        let ch = c.on_timer(Timestamp::from_millis(1000), &s).unwrap();
        assert_eq!(
            (ch.to, ch.permitted_calls),
            (BreakerState::HalfOpen, Some(2))
        );
        let t = Timestamp::from_millis(1000);
        assert!(c.record(one(false), t, 0, t, &s).1.is_none());
        let ch = c.record(one(false), t, 0, t, &s).1.unwrap();
        assert_eq!(
            (ch.from, ch.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
    }

    #[test]
    fn probe_budget_scales_a_large_window_rounding_failures_up() {
        assert_eq!(
            scale_up(
                Tally {
                    calls: 50,
                    failed: 1,
                    slow: 0
                },
                10
            ),
            Tally {
                calls: 10,
                failed: 1,
                slow: 0
            }
        );
        assert_eq!(
            scale_up(
                Tally {
                    calls: 50,
                    failed: 0,
                    slow: 0
                },
                10
            )
            .failed,
            0
        );
    }
}
