//! One incident: what it involves, how bad it is, what is still unhealthy.
//!
//! **Signals.** Every significant state another agent reports is a keyed
//! signal: `breaker:<scope>:<target>` until the breaker closes,
//! `prediction:<service>:<signal>` until it clears, `rollback:<service>`
//! while a rollback runs, `blocked:<service>` until a later analysis passes,
//! `containment:<root>` and `storm:<edge>` until lifted. An incident is
//! `mitigated` when none of its signals is unhealthy *and* every involved
//! service fails less than `healthy_error_rate` of its traffic (an
//! ineffective rollback ends the rollback signal, not the failure), and
//! `resolved` after the stability period passes with neither coming back.
//!
//! **Severity** is the highest of three readings, and never falls during
//! an incident (a page should not flap):
//! * tier: a `critical`-tier service involved is `high`, a `high`-tier one
//!   `medium`; a `critical`-tier service failing half its traffic is `critical`;
//! * impact: revenue at risk per minute at `impact_critical` is `critical`,
//!   at `impact_high` `high`, at a tenth of that `medium`;
//! * breadth: `breadth_critical` services is `critical`, `breadth_high`
//!   `high`, three `medium`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::config::HubConfig;
use crate::events::decision::{EscalationTrigger, IncidentStatus, Severity, TimelineEntry};
use crate::events::observation::Tier;
use crate::events::Timestamp;

/// Timeline entries kept per incident; later ones are counted, not kept.
pub const TIMELINE_CAP: usize = 500;

/// What the hub knows of a service for impact and severity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Declared tier.
    pub tier: Option<Tier>,
    /// Declared revenue per minute.
    pub revenue_per_minute: f64,
    /// Calls in the open interval.
    pub calls: u64,
    /// Failed calls in the open interval.
    pub failures: u64,
    /// Failing fraction of the last closed interval.
    pub failing: f64,
}

/// An incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `inc-<seq>`.
    pub id: String,
    /// Subject of its decisions (the service of the decision that opened it).
    pub subject: String,
    /// Its last decision's time (for the grouping window).
    pub last: Timestamp,
    /// Status.
    pub status: IncidentStatus,
    /// Severity (only rises).
    pub severity: Severity,
    /// Services involved.
    pub services: BTreeSet<String>,
    /// The guard's root cause.
    pub root_cause: Option<String>,
    /// Every signal key seen, and whether it is unhealthy now.
    pub signals: BTreeMap<String, bool>,
    /// Decisions, in order (at most [`TIMELINE_CAP`]).
    pub timeline: Vec<TimelineEntry>,
    /// Decisions beyond the cap.
    pub dropped: u64,
    /// Revenue at risk per minute.
    pub impact: f64,
    /// Revenue lost so far.
    pub loss: f64,
    /// Loss counted up to here.
    pub accounted: Timestamp,
    /// Escalations sent (each trigger once).
    pub escalated: BTreeSet<EscalationTrigger>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When it resolves if nothing comes back.
    pub resolve_at: Option<Timestamp>,
}

impl Incident {
    /// A new open incident.
    pub fn new(id: String, subject: &str, now: Timestamp) -> Self {
        Self {
            id,
            subject: subject.to_owned(),
            last: now,
            status: IncidentStatus::Open,
            severity: Severity::Low,
            services: BTreeSet::new(),
            root_cause: None,
            signals: BTreeMap::new(),
            timeline: Vec::new(),
            dropped: 0,
            impact: 0.0,
            loss: 0.0,
            accounted: now,
            escalated: BTreeSet::new(),
            acknowledged_by: None,
            resolve_at: None,
        }
    }

    /// Signals unhealthy now.
    pub fn unhealthy(&self) -> usize {
        self.signals.values().filter(|u| **u).count()
    }

    /// Appends a timeline entry (counted once the cap is reached).
    pub fn record(&mut self, entry: TimelineEntry) {
        if self.timeline.len() < TIMELINE_CAP {
            self.timeline.push(entry);
        } else {
            self.dropped += 1;
        }
    }

    /// Adds the loss since the last accounting at the current impact, then
    /// takes the new impact.
    pub fn account(&mut self, now: Timestamp, impact: f64) {
        let minutes = now.millis_since(self.accounted).max(0.0) / 60_000.0;
        self.loss = round2(self.loss + self.impact * minutes);
        self.accounted = self.accounted.max(now);
        self.impact = impact;
    }
}

/// Rounds money to cents so decisions read cleanly.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Revenue at risk per minute over `services`.
pub fn impact(services: &BTreeSet<String>, info: &BTreeMap<String, ServiceInfo>) -> f64 {
    round2(
        services
            .iter()
            .filter_map(|s| info.get(s))
            .map(|i| i.revenue_per_minute * i.failing)
            .sum(),
    )
}

/// Severity from tier, impact and breadth (see the module doc).
pub fn severity(
    c: &HubConfig,
    services: &BTreeSet<String>,
    info: &BTreeMap<String, ServiceInfo>,
    impact: f64,
) -> Severity {
    let tier = services
        .iter()
        .filter_map(|s| info.get(s))
        .map(|i| match i.tier {
            Some(Tier::Critical) if i.failing >= 0.5 => Severity::Critical,
            Some(Tier::Critical) => Severity::High,
            Some(Tier::High) => Severity::Medium,
            _ => Severity::Low,
        })
        .max()
        .unwrap_or_default();
    let money = if impact >= c.impact_critical {
        Severity::Critical
    } else if impact >= c.impact_high {
        Severity::High
    } else if impact >= c.impact_high / 10.0 {
        Severity::Medium
    } else {
        Severity::Low
    };
    let n = services.len();
    let breadth = if n >= c.breadth_critical {
        Severity::Critical
    } else if n >= c.breadth_high {
        Severity::High
    } else if n >= 3 {
        Severity::Medium
    } else {
        Severity::Low
    };
    tier.max(money).max(breadth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(tier: Tier, revenue: f64, failing: f64) -> ServiceInfo {
        ServiceInfo {
            tier: Some(tier),
            revenue_per_minute: revenue,
            failing,
            ..ServiceInfo::default()
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn severity_takes_the_worst_of_tier_impact_and_breadth() {
        let c = HubConfig::default();
        let mut m = BTreeMap::new();
        m.insert("blog".to_owned(), info(Tier::Low, 1.0, 1.0));
        m.insert("cart".to_owned(), info(Tier::High, 50.0, 0.2));
        m.insert("pay".to_owned(), info(Tier::Critical, 2000.0, 0.1));
        let one = set(&["blog"]);
        assert_eq!(severity(&c, &one, &m, impact(&one, &m)), Severity::Low);
        let cart = set(&["cart"]);
        assert_eq!(impact(&cart, &m), 10.0);
        assert_eq!(severity(&c, &cart, &m, 10.0), Severity::Medium);
        let pay = set(&["pay"]);
        assert_eq!(impact(&pay, &m), 200.0);
        assert_eq!(severity(&c, &pay, &m, 200.0), Severity::High);
        m.get_mut("pay").unwrap().failing = 0.6;
        assert_eq!(severity(&c, &pay, &m, impact(&pay, &m)), Severity::Critical);
        let wide = set(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
        assert_eq!(severity(&c, &wide, &m, 0.0), Severity::Critical);
    }

    #[test]
    fn loss_integrates_the_impact_over_event_time() {
        let mut i = Incident::new("inc-1".into(), "pay", Timestamp::from_millis(0));
        i.account(Timestamp::from_millis(0), 120.0);
        i.account(Timestamp::from_millis(30_000), 60.0);
        i.account(Timestamp::from_millis(90_000), 0.0);
        assert_eq!(i.loss, 120.0);
        assert_eq!(i.impact, 0.0);
    }
}
