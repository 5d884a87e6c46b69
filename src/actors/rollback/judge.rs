//! The judge: one analysis interval of the new version against its
//! baseline, as Kayenta's NetflixACAJudge does it.
//!
//! Each metric is checked two ways. The threshold check is absolute: above
//! `max` the metric is high, whatever the baseline. The comparison is
//! relative: a one-sided Mann–Whitney U test (normal approximation with tie
//! and continuity corrections, CDF from statrs) asks whether the new
//! version's samples rank above the baseline's, and an effect-size guard
//! keeps significant-but-trivial differences (1.02 % against 1.00 % over a
//! million requests) from counting: the means must differ by at least
//! `min_delta` and by the factor `min_ratio`. Each metric is then `pass`,
//! `high` or `low` (`low` is better and passes).
//!
//! The score is the weighted share of passing metrics (dry-run metrics and
//! metrics without data left out), 0–100. A failing critical metric fails
//! the analysis whatever the score; otherwise below `marginal_score` fails,
//! from `pass_score` passes, and in between is marginal. Fewer than
//! `min_requests` requests of the new version is inconclusive, never a
//! verdict: a handful of errors in ten requests says little.

use statrs::distribution::{ContinuousCDF, Normal};

use super::config::{MetricConfig, RollbackConfig};
use super::sample::{Hist, Tally};
use crate::events::decision::{MetricCheck, MetricVerdict, Verdict};

/// One-sided p-values of a Mann–Whitney U test of `a` against `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranks {
    /// P(a's samples rank this high or higher by chance): small when `a` is larger.
    pub p_greater: f64,
    /// Small when `a` is smaller.
    pub p_less: f64,
}

/// The Mann–Whitney U test of `a` against `b`; `None` when either is empty.
pub fn mann_whitney(a: &Hist, b: &Hist) -> Option<Ranks> {
    let (n1, n2) = (a.n() as f64, b.n() as f64);
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    // Walk both histograms in bucket order, giving each tie group its midrank.
    let mut ia = a.iter().peekable();
    let mut ib = b.iter().peekable();
    let (mut rank, mut r1, mut ties) = (0.0_f64, 0.0_f64, 0.0_f64);
    loop {
        let next = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (Some(x), Some(y)) => x.0.min(y.0),
        };
        let ca = ia.next_if(|x| x.0 == next).map_or(0, |x| x.1) as f64;
        let cb = ib.next_if(|y| y.0 == next).map_or(0, |y| y.1) as f64;
        let t = ca + cb;
        r1 += ca * (rank + (t + 1.0) / 2.0);
        ties += t * t * t - t;
        rank += t;
    }
    let n = n1 + n2;
    let u = r1 - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    if var <= 0.0 {
        return Some(Ranks {
            p_greater: 1.0,
            p_less: 1.0,
        });
    }
    let sd = var.sqrt();
    let normal = Normal::standard();
    Some(Ranks {
        p_greater: normal.sf((u - mean - 0.5) / sd),
        p_less: normal.cdf((u - mean + 0.5) / sd),
    })
}

/// Samples, observed value and baseline value of one metric.
struct Side<'a> {
    samples: &'a Hist,
    observed: Option<f64>,
}

fn side<'a>(t: &'a Tally, metric: &str) -> Side<'a> {
    match metric {
        "error_rate" => Side {
            samples: &t.error_samples,
            observed: t.error_rate(),
        },
        _ => Side {
            samples: &t.latency_samples,
            observed: t.p99(),
        },
    }
}

fn check(m: &MetricConfig, new: &Tally, base: Option<&Tally>, alpha: f64) -> MetricCheck {
    let s = side(new, m.name);
    let b = base.map(|t| side(t, m.name)).filter(|b| b.samples.n() > 0);
    let ranks = b.as_ref().and_then(|b| mann_whitney(s.samples, b.samples));
    let material = |worse: &Hist, better: &Hist| match (worse.mean(), better.mean()) {
        (Some(w), Some(o)) => w - o >= m.min_delta && (o <= 0.0 || w / o >= m.min_ratio),
        _ => false,
    };
    let verdict = match s.observed {
        None => MetricVerdict::NoData,
        Some(v) if v > m.max => MetricVerdict::High,
        Some(_) => match (&b, ranks) {
            (Some(b), Some(r)) if r.p_greater < alpha && material(s.samples, b.samples) => {
                MetricVerdict::High
            }
            (Some(b), Some(r)) if r.p_less < alpha && material(b.samples, s.samples) => {
                MetricVerdict::Low
            }
            _ => MetricVerdict::Pass,
        },
    };
    MetricCheck {
        name: m.name.to_owned(),
        observed: s.observed.map(round),
        limit: m.max,
        baseline: b.and_then(|b| b.observed).map(round),
        p_value: ranks.map(|r| round(r.p_greater)),
        samples: s.samples.n(),
        baseline_samples: base.map_or(0, |t| side(t, m.name).samples.n()),
        verdict,
        critical: m.critical,
        dry_run: m.dry_run,
    }
}

/// Rounds to 4 significant decimals for reports (the decision is taken on the exact value).
fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// An analysis interval judged.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// 0–100; `None` when inconclusive.
    pub score: Option<f64>,
    /// Every metric.
    pub metrics: Vec<MetricCheck>,
    /// Requests of the new version.
    pub requests: u64,
    /// Why, in a few words.
    pub summary: String,
}

/// Whether a metric fails the analysis.
fn failing(c: &MetricCheck) -> bool {
    c.verdict == MetricVerdict::High && !c.dry_run
}

/// Judges `new` against `base` (the stable version's or the pre-deploy tally).
pub fn judge(new: &Tally, base: Option<&Tally>, config: &RollbackConfig) -> Judgement {
    let metrics: Vec<MetricCheck> = config
        .metrics
        .iter()
        .map(|m| check(m, new, base, config.alpha))
        .collect();
    if new.requests < config.min_requests.max(1) {
        let summary = if new.requests == 0 {
            "no data from the new version".to_owned()
        } else {
            format!(
                "too few requests ({} < {})",
                new.requests, config.min_requests
            )
        };
        return Judgement {
            verdict: Verdict::Inconclusive,
            score: None,
            metrics,
            requests: new.requests,
            summary,
        };
    }
    let (mut total, mut passed) = (0.0, 0.0);
    for (c, m) in metrics.iter().zip(&config.metrics) {
        if c.dry_run || c.verdict == MetricVerdict::NoData {
            continue;
        }
        total += m.weight;
        if !failing(c) {
            passed += m.weight;
        }
    }
    let score = if total > 0.0 {
        round(100.0 * passed / total)
    } else {
        100.0
    };
    let failed: Vec<String> = metrics
        .iter()
        .filter(|c| failing(c))
        .map(|c| {
            let why = match (c.observed, c.baseline) {
                (Some(o), _) if o > c.limit => format!("{o} > limit {}", c.limit),
                (Some(o), Some(b)) => format!(
                    "{o} vs baseline {b}, p={}",
                    c.p_value.map_or("-".into(), |p| p.to_string())
                ),
                _ => String::new(),
            };
            format!(
                "{}{} {why}",
                c.name,
                if c.critical { " (critical)" } else { "" }
            )
        })
        .collect();
    let critical = metrics.iter().any(|c| failing(c) && c.critical);
    let verdict = if critical || score < config.marginal_score {
        Verdict::Fail
    } else if score < config.pass_score {
        Verdict::Marginal
    } else {
        Verdict::Pass
    };
    let summary = if failed.is_empty() {
        format!("score {score}: every metric passes")
    } else {
        format!("score {score}: {}", failed.join("; "))
    };
    Judgement {
        verdict,
        score: Some(score),
        metrics,
        requests: new.requests,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::observation::{LatencySummary, Window};

    fn hist(values: &[f64]) -> Hist {
        let mut h = Hist::default();
        for v in values {
            h.add(*v, 1);
        }
        h
    }

    #[test]
    fn mann_whitney_matches_the_textbook() {
        // Two clearly separated samples of 8: U = 64, z ≈ 3.31 with continuity.
        let a = hist(&[20., 21., 22., 23., 24., 25., 26., 27.]);
        let b = hist(&[10., 11., 12., 13., 14., 15., 16., 17.]);
        let r = mann_whitney(&a, &b).unwrap();
        assert!(r.p_greater < 0.001 && r.p_greater > 0.0003, "{r:?}");
        assert!(r.p_less > 0.99);
        // Identical samples: nothing to see.
        let r = mann_whitney(&a, &a).unwrap();
        assert!(r.p_greater > 0.4 && r.p_less > 0.4, "{r:?}");
        assert_eq!(mann_whitney(&a, &Hist::default()), None);
    }

    #[test]
    fn all_ties_are_not_significant() {
        let a = hist(&[0.0; 50]);
        let b = hist(&[0.0; 50]);
        assert_eq!(
            mann_whitney(&a, &b),
            Some(Ranks {
                p_greater: 1.0,
                p_less: 1.0
            })
        );
    }

    fn windows(rates: &[(u64, u64, f64)]) -> Tally {
        let mut t = Tally::default();
        for &(requests, errors, p99) in rates {
            t.window(&Window {
                interval_ms: 10_000,
                requests,
                errors,
                latency_ms: Some(LatencySummary {
                    p99: Some(p99),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        t
    }

    #[test]
    fn a_significant_but_tiny_difference_passes() {
        let c = RollbackConfig::default();
        let new = windows(&[(10_000, 130, 200.0); 6]);
        let base = windows(&[(10_000, 100, 200.0); 6]);
        let j = judge(&new, Some(&base), &c);
        assert_eq!(j.metrics[0].verdict, MetricVerdict::Pass, "{j:?}");
        assert_eq!(j.verdict, Verdict::Pass);
    }

    #[test]
    fn a_material_rise_below_the_limit_is_high() {
        let c = RollbackConfig::default();
        let new = windows(&[(1000, 40, 200.0); 6]);
        let base = windows(&[(1000, 5, 200.0); 6]);
        let j = judge(&new, Some(&base), &c);
        assert_eq!(j.metrics[0].verdict, MetricVerdict::High, "{j:?}");
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(j.metrics[0].p_value.unwrap() < 0.05);
    }

    #[test]
    fn few_requests_are_inconclusive_whatever_they_say() {
        let c = RollbackConfig::default();
        let new = windows(&[(10, 9, 200.0)]);
        let j = judge(&new, None, &c);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.score, None);
        assert_eq!(j.metrics[0].verdict, MetricVerdict::High);
    }

    #[test]
    fn non_critical_failure_scores_marginal_and_dry_run_is_ignored() {
        let mut c = RollbackConfig::default();
        c.metrics[1].critical = false;
        let new = windows(&[(1000, 0, 2000.0); 3]);
        let j = judge(&new, None, &c);
        assert_eq!((j.score, j.verdict), (Some(50.0), Verdict::Marginal));
        c.metrics[1].dry_run = true;
        let j = judge(&new, None, &c);
        assert_eq!((j.score, j.verdict), (Some(100.0), Verdict::Pass));
        assert_eq!(j.metrics[1].verdict, MetricVerdict::High);
    }
}
