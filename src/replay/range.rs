//! Which records a replay reports on.
//!
//! `--from`/`--to` take a log sequence (an integer), an RFC 3339 time or a
//! time relative to now (`-2h`, `-90m`). Times select by *event* time, so a
//! record that arrived late is in the range its time says, wherever the log
//! put it; sequences select by position. A decision's time is its cause's
//! time and its `causeseq` is its cause's sequence, so a decision is in the
//! range exactly when the record that caused it is: causes and their
//! decisions are never split by a bound.

use serde::{Deserialize, Serialize};

use crate::events::{Event, Timestamp};
use crate::log::Seq;
use crate::simulate::span::Span;

/// One end of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// A log sequence (inclusive).
    Seq(Seq),
    /// An event time (inclusive).
    Time(Timestamp),
}

/// A bound that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} {value:?}: {reason} (write a log sequence such as 1200, an RFC 3339 time such as 2026-11-22T10:00:00Z, or a time before now such as -2h or -90m)")]
pub struct BoundError {
    /// `--from` or `--to`.
    pub flag: &'static str,
    /// What was given.
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

impl Bound {
    /// Parses `text` given for `flag`; relative times count back from `now`.
    pub fn parse(flag: &'static str, text: &str, now: Timestamp) -> Result<Self, BoundError> {
        let err = |reason: String| BoundError {
            flag,
            value: text.to_owned(),
            reason,
        };
        let t = text.trim();
        if let Some(rest) = t.strip_prefix('-') {
            let span = Span::parse(rest).map_err(err)?;
            let back = i64::try_from(span.ms())
                .ok()
                .and_then(|ms| ms.checked_mul(1_000_000))
                .ok_or_else(|| err("too far back".to_owned()))?;
            return Ok(Self::Time(Timestamp::from_nanos(
                now.nanos().saturating_sub(back),
            )));
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            let seq: Seq = t
                .parse()
                .map_err(|_| err("too large for a sequence".to_owned()))?;
            if seq == 0 {
                return Err(err("sequences start at 1".to_owned()));
            }
            return Ok(Self::Seq(seq));
        }
        Timestamp::parse(t)
            .map(Self::Time)
            .map_err(|e| err(e.reason))
    }
}

/// The records a replay reports on: a range, optionally one service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// First record (inclusive); the start of the log when absent.
    pub from: Option<Bound>,
    /// Last record (inclusive); the end of the log when absent.
    pub to: Option<Bound>,
    /// Only records and decisions about these services (any when empty).
    pub services: Vec<String>,
}

/// A range whose ends are out of order.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--from {from} is after --to {to}: the range is empty")]
pub struct EmptyRange {
    from: String,
    to: String,
}

impl Selection {
    /// Checks that the range is not empty when both ends are of one kind.
    pub fn validate(&self) -> Result<(), EmptyRange> {
        let (from, to) = match (self.from, self.to) {
            (Some(Bound::Seq(a)), Some(Bound::Seq(b))) if a > b => (a.to_string(), b.to_string()),
            (Some(Bound::Time(a)), Some(Bound::Time(b))) if a > b => (a.to_string(), b.to_string()),
            _ => return Ok(()),
        };
        Err(EmptyRange { from, to })
    }

    /// Whether the record at `seq` (or the decision it caused) is in range.
    /// For a decision pass its cause's sequence: a decision is in range when its cause is.
    pub fn in_range(&self, seq: Seq, time: Timestamp) -> bool {
        let after = match self.from {
            None => true,
            Some(Bound::Seq(s)) => seq >= s,
            Some(Bound::Time(t)) => time >= t,
        };
        let before = match self.to {
            None => true,
            Some(Bound::Seq(s)) => seq <= s,
            Some(Bound::Time(t)) => time <= t,
        };
        after && before
    }

    /// Whether `record` (at `seq`) is selected: in range and about a chosen service.
    pub fn wants(&self, seq: Seq, record: &Event) -> bool {
        let cause = record.causeseq.unwrap_or(seq);
        self.in_range(cause, record.time) && self.about(&record.subject)
    }

    /// Whether records about `service` are selected.
    pub fn about(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }

    /// The last sequence any selected record can have, when the range ends by sequence.
    pub fn last_seq(&self) -> Option<Seq> {
        match self.to {
            Some(Bound::Seq(s)) => Some(s),
            _ => None,
        }
    }

    /// The first sequence a selected record can have (1 unless the range starts by sequence).
    pub fn first_seq(&self) -> Seq {
        match self.from {
            Some(Bound::Seq(s)) => s,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-22T12:00:00Z").unwrap()
    }

    #[test]
    fn bounds_parse_as_sequence_time_or_relative_time() {
        assert_eq!(Bound::parse("--from", "1200", now()), Ok(Bound::Seq(1200)));
        assert_eq!(
            Bound::parse("--from", "2026-11-22T10:00:00Z", now()),
            Ok(Bound::Time(
                Timestamp::parse("2026-11-22T10:00:00Z").unwrap()
            ))
        );
        assert_eq!(
            Bound::parse("--from", "-2h", now()),
            Ok(Bound::Time(
                Timestamp::parse("2026-11-22T10:00:00Z").unwrap()
            ))
        );
        assert_eq!(
            Bound::parse("--to", "-1h30m", now()),
            Ok(Bound::Time(
                Timestamp::parse("2026-11-22T10:30:00Z").unwrap()
            ))
        );
    }

    #[test]
    fn bad_bounds_name_the_flag_and_the_value() {
        let e = Bound::parse("--to", "yesterday", now()).unwrap_err();
        assert_eq!(e.flag, "--to");
        assert!(e.to_string().contains("\"yesterday\""), "{e}");
        assert!(Bound::parse("--from", "0", now()).is_err());
        assert!(Bound::parse("--from", "-2x", now()).is_err());
    }

    #[test]
    fn decisions_are_in_range_with_their_cause() {
        let s = Selection {
            from: Some(Bound::Seq(10)),
            to: Some(Bound::Seq(20)),
            services: vec![],
        };
        assert!(s.in_range(10, now()) && s.in_range(20, now()));
        assert!(!s.in_range(9, now()) && !s.in_range(21, now()));
        let t = Selection {
            from: Some(Bound::Time(now())),
            to: None,
            services: vec!["checkout".into()],
        };
        assert!(t.in_range(1, now()) && !t.in_range(99, Timestamp::from_nanos(now().nanos() - 1)));
        assert!(t.about("checkout") && !t.about("cart"));
    }

    #[test]
    fn reversed_ranges_are_refused() {
        let s = Selection {
            from: Some(Bound::Seq(20)),
            to: Some(Bound::Seq(10)),
            services: vec![],
        };
        assert!(s.validate().unwrap_err().to_string().contains("--from 20"));
    }
}
