//! Hub configuration: `[hub]` in the policy file.
//!
//! ```toml
//! [hub]
//! strategy = "adaptive"          # parallel | sequential | priority | adaptive
//! priority = ["rollback", "guard", "breaker"]   # for strategy = "priority", first wins
//! group_window_s = 300           # a related decision this soon after an incident's last one joins it
//! stability_s = 300              # every signal healthy this long: resolved
//! interval_s = 10                # traffic interval for the failing fraction behind impact
//! healthy_error_rate = 5.0       # percent; an involved service failing more keeps the incident open
//! high_risk = 0.8                # breach risk of a prediction that opens an incident
//! impact_high = 100.0            # revenue at risk per minute for `high` ...
//! impact_critical = 1000.0       # ... and for `critical`
//! breadth_high = 5               # services involved for `high` ...
//! breadth_critical = 10          # ... and for `critical`
//! ```

use serde::Deserialize;

use crate::config::{fraction, non_negative, percent, positive, seconds, Problems};
use crate::events::decision::CoordinationStrategy;

/// Agents whose actions the hub coordinates.
pub const COORDINATED: [&str; 3] = ["rollback", "guard", "breaker"];

/// `[hub]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawHub {
    pub strategy: Option<CoordinationStrategy>,
    pub priority: Option<Vec<String>>,
    pub group_window_s: Option<u64>,
    pub stability_s: Option<u64>,
    pub interval_s: Option<u64>,
    pub healthy_error_rate: Option<f64>,
    pub high_risk: Option<f64>,
    pub impact_high: Option<f64>,
    pub impact_critical: Option<f64>,
    pub breadth_high: Option<usize>,
    pub breadth_critical: Option<usize>,
}

/// The validated `[hub]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct HubConfig {
    /// How conflicting actions are settled.
    pub strategy: CoordinationStrategy,
    /// Agents first to last, for the priority strategy.
    pub priority: Vec<String>,
    /// Grouping window, ms.
    pub group_window_ms: u64,
    /// Stability period before resolving, ms.
    pub stability_ms: u64,
    /// Traffic interval, ms.
    pub interval_ms: u64,
    /// Error rate (percent) under which an involved service counts as healthy.
    pub healthy_error_rate: f64,
    /// Breach risk that opens an incident.
    pub high_risk: f64,
    /// Revenue per minute for `high`.
    pub impact_high: f64,
    /// Revenue per minute for `critical`.
    pub impact_critical: f64,
    /// Services for `high`.
    pub breadth_high: usize,
    /// Services for `critical`.
    pub breadth_critical: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self::from_raw(&RawHub::default(), &mut Problems::default())
    }
}

impl HubConfig {
    /// Validates the raw section, adding every problem to `problems`.
    pub fn from_raw(raw: &RawHub, problems: &mut Problems) -> Self {
        let p = |k: &str| format!("hub.{k}");
        let priority = raw
            .priority
            .clone()
            .unwrap_or_else(|| COORDINATED.iter().map(|s| s.to_string()).collect());
        for (i, a) in priority.iter().enumerate() {
            if !COORDINATED.contains(&a.as_str()) {
                problems.add(
                    p("priority"),
                    format!("{a:?} is not a coordinated agent (one of {COORDINATED:?})"),
                );
            } else if priority[..i].contains(a) {
                problems.add(p("priority"), format!("{a:?} is listed twice"));
            }
        }
        let high_risk = fraction(raw.high_risk, 0.8, &p("high_risk"), false, problems);
        let impact_high = non_negative(raw.impact_high, 100.0, &p("impact_high"), problems);
        let impact_critical =
            non_negative(raw.impact_critical, 1000.0, &p("impact_critical"), problems);
        if impact_critical < impact_high {
            problems.add(
                p("impact_critical"),
                format!("{impact_critical} is below impact_high ({impact_high})"),
            );
        }
        let breadth_high = positive(raw.breadth_high, 5, &p("breadth_high"), problems);
        let breadth_critical = positive(raw.breadth_critical, 10, &p("breadth_critical"), problems);
        if breadth_critical < breadth_high {
            problems.add(
                p("breadth_critical"),
                format!("{breadth_critical} is below breadth_high ({breadth_high})"),
            );
        }
        Self {
            strategy: raw.strategy.unwrap_or(CoordinationStrategy::Adaptive),
            priority,
            group_window_ms: seconds(raw.group_window_s, 300, 1, &p("group_window_s"), problems),
            stability_ms: seconds(raw.stability_s, 300, 0, &p("stability_s"), problems),
            interval_ms: seconds(raw.interval_s, 10, 1, &p("interval_s"), problems),
            healthy_error_rate: percent(
                raw.healthy_error_rate,
                5.0,
                &p("healthy_error_rate"),
                problems,
            ),
            high_risk,
            impact_high,
            impact_critical,
            breadth_high,
            breadth_critical,
        }
    }

    /// Rank of `agent` in the priority order (lower wins).
    pub fn rank(&self, agent: &str) -> usize {
        self.priority
            .iter()
            .position(|a| a == agent)
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_key_and_the_value() {
        let raw: RawHub = toml::from_str(
            "priority = [\"guard\", \"router\", \"guard\"]\nimpact_critical = 5.0\nhigh_risk = 1.5",
        )
        .unwrap();
        let mut problems = Problems::default();
        HubConfig::from_raw(&raw, &mut problems);
        let text: Vec<String> = problems
            .list()
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text
            .iter()
            .any(|t| t.contains("\"router\" is not a coordinated agent")));
        assert!(text.iter().any(|t| t.contains("\"guard\" is listed twice")));
        assert!(text
            .iter()
            .any(|t| t.starts_with("hub.impact_critical: 5 is below")));
        assert!(text
            .iter()
            .any(|t| t.starts_with("hub.high_risk: 1.5 is outside [0, 1]")));
    }

    #[test]
    fn strategy_names_parse_and_adaptive_is_the_default() {
        let raw: RawHub = toml::from_str("strategy = \"sequential\"").unwrap();
        let c = HubConfig::from_raw(&raw, &mut Problems::default());
        assert_eq!(c.strategy, CoordinationStrategy::Sequential);
        assert_eq!(
            HubConfig::default().strategy,
            CoordinationStrategy::Adaptive
        );
        assert!(toml::from_str::<RawHub>("strategy = \"random\"").is_err());
    }
}
