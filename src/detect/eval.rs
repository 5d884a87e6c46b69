//! `faultline eval-detect`: detection quality of the ensemble on the
//! labelled synthetic corpus, measured the way the field measures it.
//!
//! Point-wise accuracy rewards a detector that never fires, so alarms are
//! scored as events. An alarm is an onset of the predictor's own hysteresis
//! ([`Alarm`]) over the score. A labelled window is *detected* when an alarm
//! starts inside it (later onsets in the same window are neither credit nor
//! penalty, as in NAB); an onset outside every window is a *false alarm*.
//!
//! * precision = detected windows / (detected windows + false alarms)
//! * recall = detected windows / windows
//! * early = share of windows detected within the first 10 % of their length
//! * false alarms per 10 000 points of the clean controls.

use std::fmt::Write as _;

use serde::Serialize;

use super::synth::{self, Kind, Series};
use crate::actors::predictor::alarm::{Alarm, Edge, Hysteresis};
use crate::actors::predictor::ensemble::{DetectorConfig, Ensemble, GENERIC};

/// Counts for one kind of series.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindStats {
    /// Kind name.
    pub kind: String,
    /// Series of this kind.
    pub series: usize,
    /// Points (present values).
    pub points: usize,
    /// Labelled windows.
    pub windows: usize,
    /// Windows with an alarm onset inside.
    pub detected: usize,
    /// Windows detected within their first 10 %.
    pub early: usize,
    /// Alarm onsets outside every window.
    pub false_alarms: usize,
    /// Mean points from window start to first onset, over detected windows.
    pub mean_delay_points: Option<f64>,
    #[serde(skip)]
    delay_sum: usize,
    #[serde(skip)]
    outside: usize,
}

impl KindStats {
    fn add(&mut self, o: &KindStats) {
        self.series += o.series;
        self.points += o.points;
        self.windows += o.windows;
        self.detected += o.detected;
        self.early += o.early;
        self.false_alarms += o.false_alarms;
        self.delay_sum += o.delay_sum;
        self.outside += o.outside;
        self.mean_delay_points =
            (self.detected > 0).then(|| self.delay_sum as f64 / self.detected as f64);
    }
}

/// Event-based quality of a set of per-kind counts.
#[derive(Clone, Debug, Serialize)]
pub struct Quality {
    /// Detected / (detected + false alarms).
    pub precision: f64,
    /// Detected / windows.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Share of windows detected within their first 10 %.
    pub early_fraction: f64,
    /// False alarms per 10 000 points of the clean controls.
    pub false_alarms_per_10k_clean: f64,
    /// False alarms per 10 000 points outside windows, all series.
    pub false_alarms_per_10k_outside: f64,
}

impl Quality {
    fn of(kinds: &[KindStats]) -> Quality {
        let sum = |f: fn(&KindStats) -> usize| kinds.iter().map(f).sum::<usize>();
        let clean = |f: fn(&KindStats) -> usize| {
            kinds
                .iter()
                .filter(|k| Kind::ALL.iter().any(|c| c.is_clean() && c.name() == k.kind))
                .map(f)
                .sum::<usize>()
        };
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (windows, detected, fa) = (
            sum(|k| k.windows),
            sum(|k| k.detected),
            sum(|k| k.false_alarms),
        );
        let precision = ratio(detected, detected + fa);
        let recall = ratio(detected, windows);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Quality {
            precision,
            recall,
            f1,
            early_fraction: ratio(sum(|k| k.early), windows),
            false_alarms_per_10k_clean: 1e4 * ratio(clean(|k| k.false_alarms), clean(|k| k.points)),
            false_alarms_per_10k_outside: 1e4 * ratio(fa, sum(|k| k.outside)),
        }
    }
}

/// The quality on one seed's corpus.
#[derive(Clone, Debug, Serialize)]
pub struct SeedQuality {
    /// Corpus seed.
    pub seed: u64,
    /// Its quality.
    #[serde(flatten)]
    pub quality: Quality,
}

/// The evaluation report: counts pooled over every seed's corpus, and the
/// quality of each seed on its own so a lucky seed cannot hide a bad one.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Corpus seeds.
    pub seeds: Vec<u64>,
    /// Alarm threshold used.
    pub alarm_threshold: f64,
    /// Per kind, pooled over seeds.
    pub kinds: Vec<KindStats>,
    /// Pooled quality.
    pub pooled: Quality,
    /// Per seed.
    pub per_seed: Vec<SeedQuality>,
    /// The worst seed's F1.
    pub min_f1: f64,
    /// The worst seed's false alarms per 10 000 clean points.
    pub max_false_alarms_per_10k_clean: f64,
}

fn score_series(s: &Series, config: &DetectorConfig, h: &Hysteresis) -> KindStats {
    let mut e = Ensemble::new(config);
    let mut alarm = Alarm::default();
    let mut onsets = Vec::new();
    let mut out = KindStats {
        kind: s.kind.name().to_owned(),
        series: 1,
        windows: s.windows.len(),
        ..KindStats::default()
    };
    for (i, v) in s.values.iter().enumerate() {
        let Some(x) = *v else { continue };
        out.points += 1;
        if !s.windows.iter().any(|&(a, b)| (a..=b).contains(&i)) {
            out.outside += 1;
        }
        let t = s.start_ns + i as i64 * s.step_ns;
        let a = e.update(t, x, config, &GENERIC);
        if alarm.update(a.score, h) == Some(Edge::Raised) {
            onsets.push(i);
        }
    }
    for &(a, b) in &s.windows {
        if let Some(&first) = onsets.iter().find(|&&o| (a..=b).contains(&o)) {
            out.detected += 1;
            out.delay_sum += first - a;
            if (first - a) as f64 <= 0.1 * (b - a) as f64 {
                out.early += 1;
            }
        }
    }
    out.false_alarms = onsets
        .iter()
        .filter(|&&o| !s.windows.iter().any(|&(a, b)| (a..=b).contains(&o)))
        .count();
    out.mean_delay_points = (out.detected > 0).then(|| out.delay_sum as f64 / out.detected as f64);
    out
}

/// Per-kind counts for one seed's corpus.
fn evaluate_seed(seed: u64, config: &DetectorConfig, h: &Hysteresis) -> Vec<KindStats> {
    let corpus = synth::corpus(seed);
    Kind::ALL
        .iter()
        .map(|&kind| {
            let mut k = KindStats {
                kind: kind.name().to_owned(),
                ..KindStats::default()
            };
            for s in corpus.iter().filter(|s| s.kind == kind) {
                k.add(&score_series(s, config, h));
            }
            k
        })
        .collect()
}

/// Runs the ensemble over the corpus of every seed in `seeds` (seeds are
/// spread over the available cores; the result does not depend on how).
pub fn evaluate(seeds: &[u64], config: &DetectorConfig, h: &Hysteresis) -> Report {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, seeds.len().max(1));
    let mut results: Vec<(u64, Vec<KindStats>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    seeds
                        .iter()
                        .skip(w)
                        .step_by(workers)
                        .map(|&seed| (seed, evaluate_seed(seed, config, h)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|j| j.join().expect("evaluation worker panicked"))
            .collect()
    });
    results.sort_by_key(|(seed, _)| *seed);
    let mut kinds: Vec<KindStats> = Kind::ALL
        .iter()
        .map(|k| KindStats {
            kind: k.name().to_owned(),
            ..KindStats::default()
        })
        .collect();
    let mut per_seed = Vec::new();
    for (seed, ks) in &results {
        for (total, k) in kinds.iter_mut().zip(ks) {
            total.add(k);
        }
        per_seed.push(SeedQuality {
            seed: *seed,
            quality: Quality::of(ks),
        });
    }
    let min_f1 = per_seed
        .iter()
        .map(|s| s.quality.f1)
        .fold(f64::INFINITY, f64::min);
    let max_fa = per_seed
        .iter()
        .map(|s| s.quality.false_alarms_per_10k_clean)
        .fold(0.0, f64::max);
    Report {
        seeds: results.iter().map(|(s, _)| *s).collect(),
        alarm_threshold: h.raise,
        pooled: Quality::of(&kinds),
        kinds,
        per_seed,
        min_f1: if min_f1.is_finite() { min_f1 } else { 0.0 },
        max_false_alarms_per_10k_clean: max_fa,
    }
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let seeds = seed_list(&self.seeds);
        let _ = writeln!(
            s,
            "# Detector evaluation (synthetic corpus, seeds {seeds})\n"
        );
        let _ = writeln!(
            s,
            "Alarm: score ≥ {} with the predictor's hysteresis. Counts are pooled over \
             the seeds; the worst seed is shown beside them. Regenerate with \
             `faultline eval-detect --seeds {seeds}`.\n",
            self.alarm_threshold
        );
        let q = &self.pooled;
        let _ = writeln!(s, "| metric | pooled | worst seed |\n|---|---|---|");
        let _ = writeln!(s, "| precision | {:.3} | |", q.precision);
        let _ = writeln!(s, "| recall | {:.3} | |", q.recall);
        let _ = writeln!(s, "| F1 | {:.3} | {:.3} |", q.f1, self.min_f1);
        let _ = writeln!(
            s,
            "| detected in first 10 % of window | {:.3} | |",
            q.early_fraction
        );
        let _ = writeln!(
            s,
            "| false alarms per 10 000 clean points | {:.2} | {:.2} |",
            q.false_alarms_per_10k_clean, self.max_false_alarms_per_10k_clean
        );
        let _ = writeln!(
            s,
            "| false alarms per 10 000 points outside windows | {:.2} | |\n",
            q.false_alarms_per_10k_outside
        );
        let _ = writeln!(
            s,
            "| kind | series | points | windows | detected | early | false alarms | mean delay (points) |\n|---|---|---|---|---|---|---|---|"
        );
        for k in &self.kinds {
            let delay = k
                .mean_delay_points
                .map_or_else(|| "-".to_owned(), |d| format!("{d:.1}"));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                k.kind, k.series, k.points, k.windows, k.detected, k.early, k.false_alarms, delay
            );
        }
        if self.per_seed.len() > 1 {
            let _ = writeln!(
                s,
                "\n| seed | precision | recall | F1 | early | false alarms per 10 000 clean |\n|---|---|---|---|---|---|"
            );
            for p in &self.per_seed {
                let q = &p.quality;
                let _ = writeln!(
                    s,
                    "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |",
                    p.seed,
                    q.precision,
                    q.recall,
                    q.f1,
                    q.early_fraction,
                    q.false_alarms_per_10k_clean
                );
            }
        }
        s
    }
}

/// `1..=8` for a contiguous run, else a comma list.
fn seed_list(seeds: &[u64]) -> String {
    let contiguous = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if contiguous && seeds.len() > 1 => format!("{a}..={b}"),
        _ => seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Parses `--seeds`: `N`, `A..=B`, `A..B` or a comma list of those.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let mut seeds = Vec::new();
    for part in text.split(',').map(str::trim) {
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("bad seed {t:?} in {text:?}"))
        };
        let range = if let Some((a, b)) = part.split_once("..=") {
            num(a)?..num(b)?.saturating_add(1)
        } else if let Some((a, b)) = part.split_once("..") {
            num(a)?..num(b)?
        } else {
            let n = num(part)?;
            n..n.saturating_add(1)
        };
        if range.is_empty() {
            return Err(format!("empty seed range {part:?} in {text:?}"));
        }
        seeds.extend(range);
    }
    seeds.sort_unstable();
    seeds.dedup();
    if seeds.is_empty() {
        return Err(format!("no seeds in {text:?}"));
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_windows_onsets_and_false_alarms() {
        let s = Series {
            name: "t".into(),
            kind: Kind::LevelShift,
            noise: synth::Noise::Gaussian,
            start_ns: 0,
            step_ns: 60_000_000_000,
            values: (0..600)
                .map(|i| {
                    let bump = if (300..320).contains(&i) { 50.0 } else { 0.0 };
                    Some(10.0 + f64::from(i % 3) * 0.1 + bump)
                })
                .collect(),
            windows: vec![(300, 330), (500, 510)],
        };
        let config = DetectorConfig {
            season_period_ns: 0,
            ..DetectorConfig::default()
        };
        let o = score_series(&s, &config, &Hysteresis::default());
        assert_eq!(o.detected, 1);
        assert_eq!(o.early, 1);
        assert_eq!(o.points, 600);
        assert_eq!(o.outside, 600 - 31 - 11);
        assert_eq!(o.mean_delay_points, Some(0.0));
    }

    #[test]
    fn seeds_parse_as_ranges_and_lists() {
        assert_eq!(parse_seeds("3").unwrap(), vec![3]);
        assert_eq!(parse_seeds("1..=4").unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(parse_seeds("1..3, 7,2").unwrap(), vec![1, 2, 7]);
        assert!(parse_seeds("x").unwrap_err().contains("\"x\""));
        assert!(parse_seeds("5..2").is_err());
        assert_eq!(seed_list(&[1, 2, 3]), "1..=3");
        assert_eq!(seed_list(&[1, 3]), "1,3");
    }

    #[test]
    fn pooled_counts_add_up_and_worst_seed_is_reported() {
        let c = DetectorConfig::default();
        let h = Hysteresis::default();
        let r = evaluate(&[2, 1], &c, &h);
        assert_eq!(r.seeds, vec![1, 2]);
        assert_eq!(r.kinds[0].series, 2 * 12);
        assert_eq!(r.per_seed.len(), 2);
        let worst = r.per_seed.iter().map(|s| s.quality.f1).fold(1.0, f64::min);
        assert!((r.min_f1 - worst).abs() < 1e-12);
        assert!(r.min_f1 <= r.pooled.f1 + 1e-12);
    }
}
