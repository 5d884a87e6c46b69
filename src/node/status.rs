//! One agent's progress, and when it counts as stalled.
//!
//! `/readyz` used to ask only whether each agent had caught up once since it
//! started. A node whose reader later stopped delivering (see
//! `JsReader`'s quiet check) or whose writes kept failing stayed "ready"
//! while records piled up behind it. Lag alone is no better signal: under a
//! burst every agent is thousands of records behind for a moment, and a
//! readiness probe that fails then would shed the traffic the node is
//! busiest with. What marks a stuck agent is records waiting while it
//! applies none, for longer than any batch takes: that is what
//! [`AgentStatus::observe`] tracks, each time the ticker or a scrape
//! compares progress with the end of the log.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::Timestamp;
use crate::log::Seq;

/// How long an agent may have records waiting and apply none before
/// `/readyz` reports it stalled. A batch takes milliseconds and a restart's
/// replay advances as it goes; an agent whose writes keep failing (the log
/// unreachable) stops applying, and is rightly reported.
pub const STALLED: Duration = Duration::from_secs(10);

/// One agent's progress, as the ticker, `/readyz` and the supervisor see it.
#[derive(Clone, Debug, Default)]
pub struct AgentStatus {
    /// Last sequence applied (the decisions it caused sent, not
    /// necessarily durable yet).
    pub applied: Seq,
    /// The record being applied (names the culprit when the agent panics);
    /// an atomic the agent updates without taking the status lock per record.
    pub current: Arc<AtomicU64>,
    /// The agent's earliest timer.
    pub deadline: Option<Timestamp>,
    /// Has read to the end of the log at least once since it started.
    pub caught_up: bool,
    /// Restarts so far.
    pub restarts: u64,
    /// `applied` when progress was last observed.
    seen: Seq,
    /// Since when records have been waiting with none applied; `None`
    /// while the agent keeps up.
    waiting_since: Option<Instant>,
}

impl AgentStatus {
    /// Compares progress with `last`, the log's last sequence, at `now`:
    /// an agent behind the log that has applied nothing since the previous
    /// look starts (or goes on) waiting; one that moved, or is at the end,
    /// does not.
    pub fn observe(&mut self, last: Seq, now: Instant) {
        let moved = self.applied != self.seen;
        self.seen = self.applied;
        if moved || self.applied >= last {
            self.waiting_since = None;
        } else {
            self.waiting_since.get_or_insert(now);
        }
    }

    /// Why the agent makes the node unready at `now`, if it does: it has
    /// not caught up since it started, or it has had records waiting for
    /// [`STALLED`] and applied none. `last` is the log's last sequence as
    /// just observed; `None` when it is not known exactly (the log is
    /// unreachable, or the stream also holds subjects the node does not
    /// read), and then only the first reason is looked at.
    pub fn unready(&self, last: Option<Seq>, now: Instant) -> Option<String> {
        if !self.caught_up {
            return Some(format!("is catching up (at {})", self.applied));
        }
        let last = last?;
        let waited = now.saturating_duration_since(self.waiting_since?);
        (waited >= STALLED).then(|| {
            format!(
                "has applied nothing for {} s with {} records waiting (at {}, the log at {last})",
                waited.as_secs(),
                last.saturating_sub(self.applied),
                self.applied,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(applied: Seq) -> AgentStatus {
        AgentStatus {
            applied,
            caught_up: true,
            ..AgentStatus::default()
        }
    }

    #[test]
    fn an_agent_behind_that_applies_nothing_for_the_stall_time_is_unready() {
        let t0 = Instant::now();
        let mut s = status(100);
        s.observe(100, t0);
        // Records arrive and the agent does not move.
        s.observe(150, t0 + Duration::from_millis(200));
        assert_eq!(s.unready(Some(150), t0 + Duration::from_secs(5)), None);
        s.observe(400, t0 + Duration::from_secs(9));
        let why = s
            .unready(Some(400), t0 + Duration::from_secs(11))
            .expect("stalled");
        // Not knowing where the log ends, it cannot tell.
        assert_eq!(s.unready(None, t0 + Duration::from_secs(11)), None);
        assert_eq!(
            why,
            "has applied nothing for 10 s with 300 records waiting (at 100, the log at 400)"
        );
        // It moves again: ready at the next look.
        s.applied = 120;
        s.observe(400, t0 + Duration::from_secs(12));
        assert_eq!(s.unready(Some(400), t0 + Duration::from_secs(30)), None);
    }

    #[test]
    fn a_busy_agent_far_behind_but_moving_stays_ready() {
        let t0 = Instant::now();
        let mut s = status(0);
        for i in 1..=100u32 {
            s.applied += 1_000;
            s.observe(u64::from(i) * 5_000, t0 + Duration::from_millis(200) * i);
        }
        assert!(s.applied < 500_000);
        assert_eq!(s.unready(Some(500_000), t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn an_idle_agent_at_the_end_of_the_log_stays_ready() {
        let t0 = Instant::now();
        let mut s = status(42);
        s.observe(42, t0);
        s.observe(42, t0 + Duration::from_secs(3_600));
        assert_eq!(s.unready(Some(42), t0 + Duration::from_secs(7_200)), None);
    }

    #[test]
    fn an_agent_that_never_caught_up_is_unready_at_once() {
        let s = AgentStatus {
            applied: 7,
            ..AgentStatus::default()
        };
        assert_eq!(
            s.unready(Some(7), Instant::now()).as_deref(),
            Some("is catching up (at 7)")
        );
    }
}
