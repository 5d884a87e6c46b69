//! Predictor configuration: `[predictor]` in the policy file.
//!
//! ```toml
//! [predictor]
//! interval_s = 10            # bucket length for faultline.request events;
//!                            # a faultline.window is one point of its own
//! lateness_s = 10            # how long a bucket waits for late records
//! min_requests = 20          # fewer in a point: no error-rate/latency point
//! per_instance = true        # also watch each instance's signals
//! per_version = true         # also watch each version's signals
//! alarm_threshold = 0.5      # anomaly score that raises a prediction
//! clear_threshold = 0.3      # score below which a point counts as calm
//! clear_points = 5           # calm points in a row that clear it
//! horizon_s = 900            # how far ahead breach risk is forecast
//! risk_threshold = 0.5       # breach probability that raises a prediction
//!
//! [predictor.detector]       # also used by `faultline detect`
//! season_period_s = 86400    # 0 turns the seasonal detector off
//! season_bins = 144          # profile resolution (10 minutes a day)
//! warmup_points = 200        # no alarms before this many points
//!
//! [predictor.slo]            # for services whose topology declares none
//! availability = 0.999
//! latency_p99_ms = 1000.0
//! burn_rate = 14.4           # error-rate limit = (1 − availability) × burn_rate
//! ```
//!
//! The error-rate limit follows the fast-burn page of the Google SRE
//! workbook: a 30-day error budget burnt 14.4 times too fast is 2 % of it in
//! an hour. With 99.9 % availability that is an error rate of 1.44 %.

use serde::Deserialize;

use super::alarm::Hysteresis;
use super::ensemble::DetectorConfig;
use crate::config::{fraction, Problems};

const NANOS: i64 = 1_000_000_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawDetector {
    pub season_period_s: Option<u64>,
    pub season_bins: Option<u32>,
    pub warmup_points: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawSlo {
    pub availability: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub burn_rate: Option<f64>,
}

/// `[predictor]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawPredictor {
    pub interval_s: Option<u64>,
    pub lateness_s: Option<u64>,
    pub min_requests: Option<u64>,
    pub per_instance: Option<bool>,
    pub per_version: Option<bool>,
    pub alarm_threshold: Option<f64>,
    pub clear_threshold: Option<f64>,
    pub clear_points: Option<u32>,
    pub horizon_s: Option<u64>,
    pub risk_threshold: Option<f64>,
    #[serde(default)]
    pub detector: RawDetector,
    #[serde(default)]
    pub slo: RawSlo,
}

/// Default objectives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SloDefaults {
    /// Success fraction.
    pub availability: f64,
    /// p99 latency limit, ms.
    pub latency_p99_ms: f64,
    /// Burn-rate multiplier for the error-rate limit.
    pub burn_rate: f64,
}

/// The validated `[predictor]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictorConfig {
    /// Bucket length for requests, ns.
    pub interval_ns: i64,
    /// Allowed lateness, ns.
    pub lateness_ns: i64,
    /// Minimum requests for a rate or latency point.
    pub min_requests: u64,
    /// Watch instances too.
    pub per_instance: bool,
    /// Watch versions too.
    pub per_version: bool,
    /// Anomaly alarm thresholds.
    pub hysteresis: Hysteresis,
    /// Forecast horizon, seconds.
    pub horizon_s: u64,
    /// Breach probability that raises a prediction.
    pub risk_threshold: f64,
    /// Ensemble settings.
    pub detector: DetectorConfig,
    /// Objectives for services that declare none.
    pub slo: SloDefaults,
}

impl Default for PredictorConfig {
    fn default() -> Self {
        Self::from_raw(&RawPredictor::default(), &mut Problems::default())
    }
}

fn positive(v: Option<u64>, default: u64, path: &str, problems: &mut Problems) -> u64 {
    let v = v.unwrap_or(default);
    if v == 0 {
        problems.add(path, "must be greater than 0");
    }
    v
}

impl PredictorConfig {
    /// Validates the raw section, adding every problem to `problems`.
    pub fn from_raw(raw: &RawPredictor, problems: &mut Problems) -> Self {
        let p = "predictor";
        let interval_s = positive(raw.interval_s, 10, &format!("{p}.interval_s"), problems);
        let lateness_s = raw.lateness_s.unwrap_or(interval_s);
        let alarm = fraction(
            raw.alarm_threshold,
            0.5,
            &format!("{p}.alarm_threshold"),
            true,
            problems,
        );
        let clear = fraction(
            raw.clear_threshold,
            0.3,
            &format!("{p}.clear_threshold"),
            false,
            problems,
        );
        if clear >= alarm {
            problems.add(
                format!("{p}.clear_threshold"),
                format!("{clear} must be below alarm_threshold ({alarm}), or alarms would flap"),
            );
        }
        let clear_points = raw.clear_points.unwrap_or(5);
        if clear_points == 0 {
            problems.add(format!("{p}.clear_points"), "must be at least 1");
        }
        let d = &raw.detector;
        let season_period_s = d.season_period_s.unwrap_or(86_400);
        let season_bins = d.season_bins.unwrap_or(144);
        if season_period_s > 0 && !(1..=1024).contains(&season_bins) {
            problems.add(
                format!("{p}.detector.season_bins"),
                format!("{season_bins} is outside 1..=1024 (each bin costs 24 bytes per signal)"),
            );
        }
        if season_period_s > 366 * 86_400 {
            problems.add(
                format!("{p}.detector.season_period_s"),
                format!("{season_period_s} is longer than a year"),
            );
        }
        let s = &raw.slo;
        let availability = s.availability.unwrap_or(0.999);
        if !(availability > 0.0 && availability < 1.0) {
            problems.add(
                format!("{p}.slo.availability"),
                format!("{availability} is outside (0, 1)"),
            );
        }
        let latency_p99_ms = s.latency_p99_ms.unwrap_or(1000.0);
        if !(latency_p99_ms.is_finite() && latency_p99_ms > 0.0) {
            problems.add(
                format!("{p}.slo.latency_p99_ms"),
                format!("{latency_p99_ms} must be > 0"),
            );
        }
        let burn_rate = s.burn_rate.unwrap_or(14.4);
        if !(burn_rate.is_finite() && burn_rate >= 1.0) {
            problems.add(
                format!("{p}.slo.burn_rate"),
                format!("{burn_rate} must be >= 1"),
            );
        }
        Self {
            interval_ns: interval_s.saturating_mul(NANOS as u64).min(i64::MAX as u64) as i64,
            lateness_ns: lateness_s.saturating_mul(NANOS as u64).min(i64::MAX as u64) as i64,
            min_requests: raw.min_requests.unwrap_or(20),
            per_instance: raw.per_instance.unwrap_or(true),
            per_version: raw.per_version.unwrap_or(true),
            hysteresis: Hysteresis {
                raise: alarm,
                clear,
                clear_points,
            },
            horizon_s: positive(raw.horizon_s, 900, &format!("{p}.horizon_s"), problems),
            risk_threshold: fraction(
                raw.risk_threshold,
                0.5,
                &format!("{p}.risk_threshold"),
                true,
                problems,
            ),
            detector: DetectorConfig {
                season_period_ns: (season_period_s.min(366 * 86_400) as i64) * NANOS,
                season_bins: season_bins.min(1024),
                warmup_points: d.warmup_points.unwrap_or(200),
            },
            slo: SloDefaults {
                availability,
                latency_p99_ms,
                burn_rate,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PredictorConfig, Vec<String>> {
        let raw: RawPredictor = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Problems::default();
        let c = PredictorConfig::from_raw(&raw, &mut problems);
        let list = problems.list();
        if list.is_empty() {
            Ok(c)
        } else {
            Err(list
                .into_iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect())
        }
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = parse("").unwrap();
        assert_eq!(c.interval_ns, 10 * NANOS);
        assert_eq!(c.hysteresis, Hysteresis::default());
        assert_eq!(c.detector, DetectorConfig::default());
        assert_eq!(c.horizon_s, 900);
        assert_eq!(c.slo.burn_rate, 14.4);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let errs = parse(
            "alarm_threshold = 0.2\nclear_threshold = 0.4\ninterval_s = 0\n[detector]\nseason_bins = 0\n[slo]\navailability = 1.0\n",
        )
        .unwrap_err();
        let text = errs.join("\n");
        for needle in [
            "predictor.clear_threshold: 0.4 must be below",
            "predictor.interval_s: must be greater than 0",
            "predictor.detector.season_bins: 0 is outside",
            "predictor.slo.availability: 1 is outside",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("alarm = 0.5").is_err());
    }
}
