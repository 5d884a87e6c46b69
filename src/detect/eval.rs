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
}

/// The evaluation report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Corpus seed.
    pub seed: u64,
    /// Alarm threshold used.
    pub alarm_threshold: f64,
    /// Per kind.
    pub kinds: Vec<KindStats>,
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

struct Outcome {
    detected: usize,
    early: usize,
    false_alarms: usize,
    points: usize,
    outside: usize,
    delays: Vec<usize>,
}

fn score_series(s: &Series, config: &DetectorConfig, h: &Hysteresis) -> Outcome {
    let mut e = Ensemble::new(config);
    let mut alarm = Alarm::default();
    let mut onsets = Vec::new();
    let mut points = 0;
    let mut outside = 0;
    for (i, v) in s.values.iter().enumerate() {
        let Some(x) = *v else { continue };
        points += 1;
        if !s.windows.iter().any(|&(a, b)| (a..=b).contains(&i)) {
            outside += 1;
        }
        let t = s.start_ns + i as i64 * s.step_ns;
        let a = e.update(t, x, config, &GENERIC);
        if alarm.update(a.score, h) == Some(Edge::Raised) {
            onsets.push(i);
        }
    }
    let mut out = Outcome {
        detected: 0,
        early: 0,
        false_alarms: 0,
        points,
        outside,
        delays: Vec::new(),
    };
    for &(a, b) in &s.windows {
        if let Some(&first) = onsets.iter().find(|&&o| (a..=b).contains(&o)) {
            out.detected += 1;
            out.delays.push(first - a);
            if (first - a) as f64 <= 0.1 * (b - a) as f64 {
                out.early += 1;
            }
        }
    }
    out.false_alarms = onsets
        .iter()
        .filter(|&&o| !s.windows.iter().any(|&(a, b)| (a..=b).contains(&o)))
        .count();
    out
}

/// Runs the ensemble over the corpus for `seed`.
pub fn evaluate(seed: u64, config: &DetectorConfig, h: &Hysteresis) -> Report {
    let corpus = synth::corpus(seed);
    let mut kinds = Vec::new();
    let (mut windows, mut detected, mut early, mut fa) = (0, 0, 0, 0);
    let (mut clean_points, mut clean_fa, mut outside) = (0, 0, 0);
    for kind in Kind::ALL {
        let mut k = KindStats {
            kind: kind.name().to_owned(),
            ..KindStats::default()
        };
        let mut delays = Vec::new();
        for s in corpus.iter().filter(|s| s.kind == kind) {
            let o = score_series(s, config, h);
            k.series += 1;
            k.points += o.points;
            k.windows += s.windows.len();
            k.detected += o.detected;
            k.early += o.early;
            k.false_alarms += o.false_alarms;
            delays.extend(o.delays);
            outside += o.outside;
            if kind.is_clean() {
                clean_points += o.points;
                clean_fa += o.false_alarms;
            }
        }
        k.mean_delay_points =
            (!delays.is_empty()).then(|| delays.iter().sum::<usize>() as f64 / delays.len() as f64);
        windows += k.windows;
        detected += k.detected;
        early += k.early;
        fa += k.false_alarms;
        kinds.push(k);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(detected, detected + fa);
    let recall = ratio(detected, windows);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Report {
        seed,
        alarm_threshold: h.raise,
        kinds,
        precision,
        recall,
        f1,
        early_fraction: ratio(early, windows),
        false_alarms_per_10k_clean: 1e4 * ratio(clean_fa, clean_points),
        false_alarms_per_10k_outside: 1e4 * ratio(fa, outside),
    }
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Detector evaluation (synthetic corpus, seed {})\n",
            self.seed
        );
        let _ = writeln!(
            s,
            "Alarm: score ≥ {} with the predictor's hysteresis. Regenerate with \
             `faultline eval-detect --seed {}`.\n",
            self.alarm_threshold, self.seed
        );
        let _ = writeln!(s, "| metric | value |\n|---|---|");
        let _ = writeln!(s, "| precision | {:.3} |", self.precision);
        let _ = writeln!(s, "| recall | {:.3} |", self.recall);
        let _ = writeln!(s, "| F1 | {:.3} |", self.f1);
        let _ = writeln!(
            s,
            "| detected in first 10 % of window | {:.3} |",
            self.early_fraction
        );
        let _ = writeln!(
            s,
            "| false alarms per 10 000 clean points | {:.2} |",
            self.false_alarms_per_10k_clean
        );
        let _ = writeln!(
            s,
            "| false alarms per 10 000 points outside windows | {:.2} |\n",
            self.false_alarms_per_10k_outside
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
        s
    }
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
        assert_eq!(o.delays, vec![0]);
    }
}
