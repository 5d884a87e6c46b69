//! Root-cause ranking: which anomalous service did the cascade start at?
//!
//! Each anomalous service `c` gets three scores in 0–1 and a weighted sum:
//!
//! * **position** (weight ½): 1 when none of `c`'s callees is anomalous (its
//!   trouble is its own); otherwise `1 − e`, where `e` is how much of `c`'s
//!   trouble its anomalous callees explain: at least ¾ (a failing callee
//!   usually explains its callers, through errors or through timeouts that
//!   failure counts cannot attribute), up to 1 when the failed calls `c`
//!   made to them account for all of `c`'s own failures in the interval.
//! * **onset** (weight ¼): `exp(−Δ / interval)`, Δ the time since the
//!   earliest onset among the anomalous: effects follow causes.
//! * **magnitude** (weight ¼): the service's robust z of the change
//!   ([`super::baseline`]) over the largest among the anomalous, capped at
//!   [`Z_CAP`] so one runaway metric does not flatten everyone else. A
//!   service anomalous only by another agent's word (a prediction, an open
//!   breaker) counts at the anomaly threshold.
//!
//! Graph position leads because it is the most specific evidence; onset and
//! magnitude break ties between services whose callees are all healthy
//! (two independent faults, or noise beside a real fault) and order a
//! cycle. The weights are round numbers chosen from these arguments, not
//! fitted to any data set.
//!
//! **Confidence** is the top score discounted when the runner-up is close:
//! `s₁ · min(1, 2 (1 − s₂/s₁))`. A runner-up at half the top score or less
//! costs nothing; a tie gives 0.

use std::collections::BTreeMap;

use super::graph::Graph;
use crate::events::decision::Candidate;

/// Largest robust z counted as magnitude.
pub const Z_CAP: f64 = 50.0;
/// Least share of a caller's trouble an anomalous callee explains.
const EXPLAINED: f64 = 0.75;
/// Candidates reported.
const REPORTED: usize = 5;

/// What the ranking knows of one anomalous service.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suspect {
    /// When its anomaly began, ns.
    pub onset: i64,
    /// Robust z of its change.
    pub magnitude: f64,
    /// Its own failed calls in the interval.
    pub failures: u64,
}

/// The ranking: candidates best first, and how sure it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranking {
    /// At most five candidates, best first (ties by name).
    pub candidates: Vec<Candidate>,
    /// 0–1.
    pub confidence: f64,
}

/// Ranks `suspects` (anomalous services by name) on `graph`.
pub fn rank(suspects: &BTreeMap<String, Suspect>, graph: &Graph, interval_ns: i64) -> Ranking {
    let first = suspects.values().map(|s| s.onset).min().unwrap_or(0);
    let top_z = suspects
        .values()
        .map(|s| s.magnitude.clamp(0.0, Z_CAP))
        .fold(0.0, f64::max);
    let mut scored: Vec<Candidate> = suspects
        .iter()
        .map(|(name, s)| {
            let position = 1.0 - explained(name, s, suspects, graph);
            let delay = (s.onset - first) as f64 / interval_ns.max(1) as f64;
            let onset = (-delay).exp();
            let magnitude = if top_z > 0.0 {
                s.magnitude.clamp(0.0, Z_CAP) / top_z
            } else {
                1.0
            };
            Candidate {
                service: name.clone(),
                score: round3(0.5 * position + 0.25 * onset + 0.25 * magnitude),
            }
        })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.service.cmp(&b.service))
    });
    let s1 = scored.first().map_or(0.0, |c| c.score);
    let s2 = scored.get(1).map_or(0.0, |c| c.score);
    let confidence = if s1 > 0.0 {
        s1 * (2.0 * (1.0 - s2 / s1)).min(1.0)
    } else {
        0.0
    };
    scored.truncate(REPORTED);
    Ranking {
        candidates: scored,
        confidence: round3(confidence),
    }
}

/// How much of `name`'s trouble its anomalous callees explain, 0–1.
fn explained(name: &str, s: &Suspect, suspects: &BTreeMap<String, Suspect>, graph: &Graph) -> f64 {
    let mut any = false;
    let mut failed = 0u64;
    for callee in graph.callees(name) {
        if callee != name && suspects.contains_key(callee) {
            any = true;
            failed += graph.edge(name, callee).map_or(0, |e| e.window_failures);
        }
    }
    if !any {
        return 0.0;
    }
    let attributed = if s.failures > 0 {
        (failed as f64 / s.failures as f64).min(1.0)
    } else {
        0.0
    };
    attributed.max(EXPLAINED)
}

/// Scores are reported to three decimals so a decision reads cleanly and
/// replays byte for byte whatever the summation order's last bit.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::observation::Dependency;

    const S: i64 = 1_000_000_000;

    fn chain() -> Graph {
        let mut g = Graph::default();
        let dep = |c: &str| Dependency {
            callee: c.into(),
            critical: true,
        };
        g.declare("web", &[dep("api")]);
        g.declare("api", &[dep("db"), dep("cache")]);
        g
    }

    fn suspect(onset_s: i64, magnitude: f64, failures: u64) -> Suspect {
        Suspect {
            onset: onset_s * S,
            magnitude,
            failures,
        }
    }

    fn names(r: &Ranking) -> Vec<&str> {
        r.candidates.iter().map(|c| c.service.as_str()).collect()
    }

    #[test]
    fn the_deepest_anomalous_service_with_healthy_callees_leads() {
        let g = chain();
        let s = BTreeMap::from([
            ("web".to_owned(), suspect(10, 30.0, 30)),
            ("api".to_owned(), suspect(10, 30.0, 30)),
            ("db".to_owned(), suspect(10, 20.0, 30)),
        ]);
        let r = rank(&s, &g, 10 * S);
        assert_eq!(names(&r), ["db", "api", "web"]);
        // db: 0.5 + 0.25 + 0.25 * 20/30; the others 0.125 + 0.25 + 0.25.
        assert_eq!(r.candidates[0].score, 0.917);
        assert_eq!(r.candidates[1].score, 0.625);
        assert_eq!(r.confidence, 0.584);
    }

    #[test]
    fn a_caller_with_failures_of_its_own_keeps_some_suspicion() {
        let mut g = chain();
        g.observe(
            "api",
            "db",
            crate::events::Timestamp::from_nanos(0),
            100,
            10,
            None,
        );
        let s = BTreeMap::from([
            ("api".to_owned(), suspect(0, 10.0, 40)),
            ("db".to_owned(), suspect(0, 10.0, 10)),
        ]);
        let r = rank(&s, &g, 10 * S);
        assert_eq!(names(&r), ["db", "api"]);
        assert_eq!(r.candidates[1].score, 0.625);
        // Every api failure explained by its calls to db: position 0.
        let s = BTreeMap::from([
            ("api".to_owned(), suspect(0, 10.0, 10)),
            ("db".to_owned(), suspect(0, 10.0, 10)),
        ]);
        assert_eq!(rank(&s, &g, 10 * S).candidates[1].score, 0.5);
    }

    #[test]
    fn onset_and_magnitude_separate_independent_faults() {
        let g = chain();
        let s = BTreeMap::from([
            ("cache".to_owned(), suspect(30, 6.0, 5)),
            ("db".to_owned(), suspect(10, 40.0, 50)),
        ]);
        let r = rank(&s, &g, 10 * S);
        assert_eq!(names(&r), ["db", "cache"]);
        assert!(r.candidates[1].score < 0.7, "{r:?}");
    }

    #[test]
    fn a_tie_has_no_confidence() {
        let g = chain();
        let s = BTreeMap::from([
            ("cache".to_owned(), suspect(0, 8.0, 5)),
            ("db".to_owned(), suspect(0, 8.0, 5)),
        ]);
        let r = rank(&s, &g, 10 * S);
        assert_eq!(names(&r), ["cache", "db"]);
        assert_eq!(r.confidence, 0.0);
    }
}
