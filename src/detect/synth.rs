//! A seeded generator of labelled synthetic series for evaluating the
//! detector ensemble.
//!
//! Each series has a base level, a noise model (Gaussian, heavy-tailed
//! Student-t with 4 degrees of freedom, or autocorrelated AR(1)), a sampling
//! step of 1 or 5 minutes, randomly missing points, and at most one kind of
//! anomaly with its labelled windows. Magnitudes are stated in units of the
//! noise's marginal standard deviation σ and drawn from ranges an operator
//! would call "clearly wrong" on a dashboard; the clean controls (flat,
//! slowly drifting, and seasonal) carry no windows at all. Same seed, same
//! corpus, on every platform (ChaCha8).

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, StandardUniform, StudentT};

/// What a series contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The level moves by 4–8σ and stays.
    LevelShift,
    /// A leak: a linear climb of 6–10σ over 100–300 points, then a plateau.
    Ramp,
    /// One to three isolated spikes of 7–12σ.
    Spike,
    /// The noise grows 3–5× for 200–400 points.
    VarianceChange,
    /// A daily pattern with a temporary 5–8σ shift of 100–200 points.
    SeasonalShift,
    /// A daily pattern whose peak fails to come one day.
    SeasonalMissingPeak,
    /// Noise around a flat level.
    Clean,
    /// Noise around a slow drift of 3σ over the whole series.
    CleanDrift,
    /// A daily pattern with noise.
    CleanSeasonal,
}

impl Kind {
    /// All kinds, anomalous first.
    pub const ALL: [Kind; 9] = [
        Kind::LevelShift,
        Kind::Ramp,
        Kind::Spike,
        Kind::VarianceChange,
        Kind::SeasonalShift,
        Kind::SeasonalMissingPeak,
        Kind::Clean,
        Kind::CleanDrift,
        Kind::CleanSeasonal,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::LevelShift => "level_shift",
            Kind::Ramp => "ramp",
            Kind::Spike => "spike",
            Kind::VarianceChange => "variance_change",
            Kind::SeasonalShift => "seasonal_shift",
            Kind::SeasonalMissingPeak => "seasonal_missing_peak",
            Kind::Clean => "clean",
            Kind::CleanDrift => "clean_drift",
            Kind::CleanSeasonal => "clean_seasonal",
        }
    }

    /// Whether the series is a control with no anomaly.
    pub fn is_clean(self) -> bool {
        matches!(self, Kind::Clean | Kind::CleanDrift | Kind::CleanSeasonal)
    }

    fn seasonal(self) -> bool {
        matches!(
            self,
            Kind::SeasonalShift | Kind::SeasonalMissingPeak | Kind::CleanSeasonal
        )
    }
}

/// Noise models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// Independent Gaussian.
    Gaussian,
    /// Student-t, 4 degrees of freedom (heavy tails).
    Heavy,
    /// AR(1) with coefficient 0.3–0.6.
    Autocorrelated,
}

/// One labelled series.
#[derive(Clone, Debug)]
pub struct Series {
    /// `kind-index`.
    pub name: String,
    /// What it contains.
    pub kind: Kind,
    /// Noise model.
    pub noise: Noise,
    /// Time of point 0, ns since the epoch.
    pub start_ns: i64,
    /// Sampling step, ns.
    pub step_ns: i64,
    /// Values; `None` is a missing point.
    pub values: Vec<Option<f64>>,
    /// Labelled anomaly windows, inclusive point indices.
    pub windows: Vec<(usize, usize)>,
}

/// Points per series.
pub const LENGTH: usize = 4032;
/// Series per kind.
pub const PER_KIND: usize = 12;
const MINUTE: i64 = 60_000_000_000;
const DAY: i64 = 1440 * MINUTE;

struct Draw(ChaCha8Rng);

impl Draw {
    fn unit(&mut self) -> f64 {
        StandardUniform.sample(&mut self.0)
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn index(&mut self, lo: usize, hi: usize) -> usize {
        lo + ((hi - lo) as f64 * self.unit()) as usize
    }
    fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }
    fn sign(&mut self) -> f64 {
        if self.unit() < 0.5 {
            -1.0
        } else {
            1.0
        }
    }
}

/// The whole corpus for `seed`: [`PER_KIND`] series of every kind.
pub fn corpus(seed: u64) -> Vec<Series> {
    let mut out = Vec::new();
    for (k, kind) in Kind::ALL.into_iter().enumerate() {
        for i in 0..PER_KIND {
            let stream = seed ^ ((k as u64) << 32 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            out.push(series(kind, i, stream));
        }
    }
    out
}

/// One series of `kind`.
pub fn series(kind: Kind, index: usize, seed: u64) -> Series {
    let mut d = Draw(ChaCha8Rng::seed_from_u64(seed));
    let noise = match index % 3 {
        0 => Noise::Gaussian,
        1 => Noise::Heavy,
        _ => Noise::Autocorrelated,
    };
    let step_ns = if kind.seasonal() || d.unit() < 0.5 {
        5 * MINUTE
    } else {
        MINUTE
    };
    let level = 10f64.powf(d.range(0.0, 3.0));
    let sigma = level * d.range(0.01, 0.1);
    let phi = d.range(0.3, 0.6);
    let heavy = StudentT::new(4.0).expect("valid degrees of freedom");
    let mut scale = vec![1.0; LENGTH];
    let mut shape = vec![0.0; LENGTH];
    let mut windows = Vec::new();
    let mut keep = Vec::new();
    let onset = |d: &mut Draw| d.index(LENGTH * 3 / 10, LENGTH * 8 / 10);

    let per_day = (DAY / step_ns) as usize;
    let amplitude = sigma * d.range(4.0, 10.0);
    let phase0 = d.range(0.0, std::f64::consts::TAU);
    if kind.seasonal() {
        for (i, s) in shape.iter_mut().enumerate() {
            let ph = phase0 + i as f64 / per_day as f64 * std::f64::consts::TAU;
            *s = amplitude * (ph.sin() + 0.3 * (2.0 * ph).sin());
        }
    }
    match kind {
        Kind::LevelShift => {
            let at = onset(&mut d);
            let size = d.sign() * d.range(4.0, 8.0) * sigma;
            shape[at..].iter_mut().for_each(|s| *s += size);
            windows.push((at, at + 150));
        }
        Kind::Ramp => {
            let at = onset(&mut d);
            let len = d.index(100, 300);
            let size = d.sign() * d.range(6.0, 10.0) * sigma;
            for (j, s) in shape[at..].iter_mut().enumerate() {
                *s += size * (j as f64 / len as f64).min(1.0);
            }
            windows.push((at, at + len + 50));
        }
        Kind::Spike => {
            let count = d.index(1, 4);
            let mut at = onset(&mut d).min(LENGTH - 600);
            for _ in 0..count {
                // In heavy-tailed noise 7σ blips are part of normal life
                // (about two per series) and 15σ ones happen once in 25 000
                // points; a labelled spike must stand out from the noise's
                // own extremes.
                let extreme = if noise == Noise::Heavy { 3.0 } else { 1.0 };
                shape[at] += d.sign() * extreme * d.range(7.0, 12.0) * sigma;
                keep.push(at);
                windows.push((at, at + 10));
                at += d.index(150, 250);
            }
        }
        Kind::VarianceChange => {
            let at = onset(&mut d);
            let len = d.index(200, 400);
            let factor = d.range(3.0, 5.0);
            scale[at..at + len].iter_mut().for_each(|s| *s = factor);
            windows.push((at, at + len));
        }
        Kind::SeasonalShift => {
            let at = onset(&mut d);
            let len = d.index(100, 200);
            let size = d.sign() * d.range(5.0, 8.0) * sigma;
            shape[at..at + len].iter_mut().for_each(|s| *s += size);
            windows.push((at, at + len));
        }
        Kind::SeasonalMissingPeak => {
            // Find a peak after the onset; the quarter-day around it stays
            // at the daily mean.
            let at = onset(&mut d);
            let peak = (at..at + per_day)
                .max_by(|&a, &b| shape[a].total_cmp(&shape[b]))
                .expect("a day of points");
            let half = per_day / 8;
            shape[peak - half..=peak + half]
                .iter_mut()
                .for_each(|s| *s = s.min(0.0));
            windows.push((peak - half, peak + half));
        }
        Kind::CleanDrift => {
            let size = d.sign() * 3.0 * sigma;
            for (i, s) in shape.iter_mut().enumerate() {
                *s += size * i as f64 / LENGTH as f64;
            }
        }
        Kind::Clean | Kind::CleanSeasonal => {}
    }

    let mut ar = 0.0;
    let values = (0..LENGTH)
        .map(|i| {
            let e = match noise {
                Noise::Gaussian => d.normal(),
                Noise::Heavy => heavy.sample(&mut d.0) / 2f64.sqrt(),
                Noise::Autocorrelated => {
                    ar = phi * ar + (1.0 - phi * phi).sqrt() * d.normal();
                    ar
                }
            };
            let missing = d.unit() < 0.01 && !keep.contains(&i);
            (!missing).then_some(level + shape[i] + sigma * scale[i] * e)
        })
        .collect();
    Series {
        name: format!("{}-{index:02}", kind.name()),
        kind,
        noise,
        start_ns: 1_700_000_000 * 1_000_000_000 - (1_700_000_000 * 1_000_000_000) % DAY,
        step_ns,
        values,
        windows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_corpus() {
        let a = corpus(7);
        let b = corpus(7);
        assert_eq!(a.len(), Kind::ALL.len() * PER_KIND);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.values, y.values);
            assert_eq!(x.windows, y.windows);
        }
        assert_ne!(corpus(8)[0].values, a[0].values);
    }

    #[test]
    fn windows_are_labelled_only_on_anomalous_series_and_fit() {
        for s in corpus(1) {
            assert_eq!(s.windows.is_empty(), s.kind.is_clean(), "{}", s.name);
            for &(a, b) in &s.windows {
                assert!(a < b && b < LENGTH, "{}: {a}..{b}", s.name);
                assert!(
                    a >= LENGTH * 3 / 10 - 200,
                    "{}: anomaly at {a} is in the warm-up",
                    s.name
                );
            }
            let missing = s.values.iter().filter(|v| v.is_none()).count();
            assert!(missing < LENGTH / 20, "{}", s.name);
        }
    }
}
