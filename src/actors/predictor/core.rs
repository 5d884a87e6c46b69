//! The predictor agent's pure core: signals per service (and per instance
//! and version), the ensemble and forecaster per signal, and the alarm
//! states that turn them into `faultline.prediction` decisions.
//!
//! Each signal has two alarms with hysteresis: *anomaly* (ensemble score)
//! and *breach risk* (forecast probability of crossing the SLO limit within
//! the horizon; error rate and p99 latency only). Its status is
//! `breach_risk` if that alarm is on, else `anomaly` if that one is, else
//! `clear`; a decision is emitted when the status changes, never per point.
//!
//! Buckets close when the agent's clock (the largest event time seen) passes
//! their end plus the allowed lateness, on whatever record moves it; the
//! predictor asks for no timers, so it adds no ticks to the log. A record
//! for a bucket already closed is counted as late. Predictor state is per
//! service throughout, so the agent partitions by service in a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::alarm::{Alarm, Hysteresis};
use super::config::PredictorConfig;
use super::ensemble::{Assessment, Ensemble, SignalParams};
use super::forecast::Forecaster;
use super::signal::{failed, Bucket, Facet, Point};
use super::tail::Direction;
use crate::engine::{decode_state, encode_state, map_view, Agent, Proposal};
use crate::events::decision::{DetectorScore, Prediction, PredictionStatus, SignalKind};
use crate::events::observation::Slo;
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// Agent name in decision ids, sources and subjects.
pub const NAME: &str = "predictor";

/// How each signal is judged.
pub fn params(kind: SignalKind) -> SignalParams {
    match kind {
        SignalKind::ErrorRate => SignalParams {
            direction: Direction::Up,
            min_abs: 0.1,
            min_rel: 0.02,
        },
        SignalKind::LatencyP99 | SignalKind::LatencyP50 => SignalParams {
            direction: Direction::Up,
            min_abs: 0.5,
            min_rel: 0.02,
        },
        SignalKind::Throughput => SignalParams {
            direction: Direction::Both,
            min_abs: 0.1,
            min_rel: 0.02,
        },
    }
}

fn facet_key(f: &Facet) -> String {
    match f {
        Facet::Service => String::new(),
        Facet::Instance(i) => format!("instance/{i}"),
        Facet::Version(v) => format!("version/{v}"),
    }
}

fn facet_of(key: &str) -> Facet {
    if let Some(i) = key.strip_prefix("instance/") {
        Facet::Instance(i.to_owned())
    } else if let Some(v) = key.strip_prefix("version/") {
        Facet::Version(v.to_owned())
    } else {
        Facet::Service
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SignalState {
    ensemble: Ensemble,
    forecast: Forecaster,
    anomaly: Alarm,
    risk: Alarm,
    status: PredictionStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Series {
    bucket: Option<Bucket>,
    signals: Vec<SignalState>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ServiceState {
    slo: Option<Slo>,
    /// Facet key (`""`, `instance/<id>`, `version/<v>`) → series.
    series: BTreeMap<String, Series>,
}

/// Everything the predictor remembers; what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictorMemory {
    clock: Option<Timestamp>,
    services: BTreeMap<String, ServiceState>,
    /// (close time ns, service, facet key) of every open bucket.
    closing: BTreeSet<(i64, String, String)>,
    late: u64,
    points: u64,
}

/// The predictor agent.
pub struct PredictorAgent {
    config: Arc<PredictorConfig>,
    state: PredictorMemory,
    /// Scratch for facet keys (no allocation per record).
    key: String,
}

impl PredictorAgent {
    /// A predictor with nothing watched yet.
    pub fn new(config: Arc<PredictorConfig>) -> Self {
        Self {
            config,
            state: PredictorMemory::default(),
            key: String::new(),
        }
    }

    /// Records that arrived after their bucket had closed.
    pub fn late_records(&self) -> u64 {
        self.state.late
    }

    /// Points judged so far (all signals of a closed bucket count once).
    pub fn points(&self) -> u64 {
        self.state.points
    }

    /// Current status of a signal, if it is watched.
    pub fn status(
        &self,
        service: &str,
        facet: &Facet,
        kind: SignalKind,
    ) -> Option<PredictionStatus> {
        let s = self
            .state
            .services
            .get(service)?
            .series
            .get(&facet_key(facet))?;
        s.signals.get(kind as usize).map(|x| x.status)
    }

    /// The facet keys an observation counts toward: the service's own
    /// (`""`), then its instance's and version's when those are tracked.
    fn facet_keys<'a>(
        &self,
        instance: Option<&'a String>,
        version: Option<&'a String>,
    ) -> [Option<(&'static str, &'a str)>; 3] {
        [
            Some(("", "")),
            instance
                .filter(|_| self.config.per_instance)
                .map(|i| ("instance/", i.as_str())),
            version
                .filter(|_| self.config.per_version)
                .map(|v| ("version/", v.as_str())),
        ]
    }

    /// Adds to the open bucket of each facet the observation at `t` belongs to.
    ///
    /// This runs for every request and window, so it looks each map up once
    /// and allocates only when a series or bucket is new.
    fn observe(
        &mut self,
        service: &str,
        facets: [Option<(&'static str, &str)>; 3],
        t: i64,
        add: impl Fn(&mut Bucket),
        out: &mut Vec<Proposal>,
    ) {
        let interval = self.config.interval_ns;
        let start = t.div_euclid(interval) * interval;
        let PredictorMemory {
            services,
            closing,
            late,
            points,
            ..
        } = &mut self.state;
        let st = match services.get_mut(service) {
            Some(st) => st,
            None => services.entry(service.to_owned()).or_default(),
        };
        let mut key = std::mem::take(&mut self.key);
        for (prefix, name) in facets.into_iter().flatten() {
            key.clear();
            key.push_str(prefix);
            key.push_str(name);
            let series = match st.series.get_mut(key.as_str()) {
                Some(series) => series,
                None => (st.series)
                    .entry(key.clone())
                    .or_insert_with(|| new_series(&self.config)),
            };
            match series.bucket.as_ref().map(|b| b.start) {
                Some(s) if s == start => {}
                Some(s) if s > start => {
                    *late += 1;
                    continue;
                }
                Some(_) => {
                    let mut closer = Closer {
                        config: &self.config,
                        closing,
                        points,
                        out,
                    };
                    closer.close(service, &key, st.slo.as_ref(), series);
                }
                None => {}
            }
            if series.bucket.is_none() {
                let b = Bucket::new(start, start + interval);
                closing.insert((
                    b.end + self.config.lateness_ns,
                    service.to_owned(),
                    key.clone(),
                ));
                series.bucket = Some(b);
            }
            add(series.bucket.as_mut().expect("opened above"));
        }
        self.key = key;
    }

    /// Closes every bucket whose close time the clock has passed.
    fn close_due(&mut self, out: &mut Vec<Proposal>) {
        let Some(now) = self.state.clock else { return };
        let PredictorMemory {
            services,
            closing,
            points,
            ..
        } = &mut self.state;
        // Compared by reference first: nearly every record closes nothing.
        while closing.first().is_some_and(|(at, _, _)| *at <= now.nanos()) {
            let (_, service, key) = closing.first().cloned().expect("checked above");
            let mut closer = Closer {
                config: &self.config,
                closing,
                points,
                out,
            };
            match services.get_mut(&service) {
                Some(st) => match st.series.get_mut(&key) {
                    Some(series) => closer.close(&service, &key, st.slo.as_ref(), series),
                    None => closer.forget(&service, &key),
                },
                None => closer.forget(&service, &key),
            }
        }
    }
}

fn new_series(config: &PredictorConfig) -> Series {
    let signal = SignalState {
        ensemble: Ensemble::new(&config.detector),
        forecast: Forecaster::default(),
        anomaly: Alarm::default(),
        risk: Alarm::default(),
        status: PredictionStatus::Clear,
    };
    Series {
        bucket: None,
        signals: vec![signal; SignalKind::ALL.len()],
    }
}

/// What closing a bucket touches besides its series (borrowed apart from
/// the service map so that one lookup serves both).
struct Closer<'a> {
    config: &'a PredictorConfig,
    closing: &'a mut BTreeSet<(i64, String, String)>,
    points: &'a mut u64,
    out: &'a mut Vec<Proposal>,
}

impl Closer<'_> {
    /// Drops a close time whose series is gone.
    fn forget(&mut self, service: &str, key: &str) {
        self.closing
            .retain(|(_, s, k)| !(s.as_str() == service && k.as_str() == key));
    }

    /// Closes the series' open bucket and judges its point.
    fn close(&mut self, service: &str, key: &str, slo: Option<&Slo>, series: &mut Series) {
        let config = self.config;
        let Some(bucket) = series.bucket.take() else {
            self.forget(service, key);
            return;
        };
        self.closing.remove(&(
            bucket.end + config.lateness_ns,
            service.to_owned(),
            key.to_owned(),
        ));
        let Some(point) = bucket.close(config.min_requests) else {
            return;
        };
        *self.points += 1;
        for kind in SignalKind::ALL {
            let Some(value) = point.values[kind as usize] else {
                continue;
            };
            let signal = &mut series.signals[kind as usize];
            if let Some(mut p) = judge(signal, config, slo, kind, &point, value) {
                match facet_of(key) {
                    Facet::Instance(i) => p.instance = Some(i),
                    Facet::Version(v) => p.version = Some(v),
                    Facet::Service => {}
                }
                p.reason = reason(service, &p);
                self.out.push(Proposal::new(service, Data::Prediction(p)));
            }
        }
    }
}

/// The SLO limit of a signal, in its unit.
pub fn slo_limit(config: &PredictorConfig, slo: Option<&Slo>, kind: SignalKind) -> Option<f64> {
    match kind {
        SignalKind::ErrorRate => {
            let a = slo
                .and_then(|s| s.availability)
                .unwrap_or(config.slo.availability);
            Some((1.0 - a) * 100.0 * config.slo.burn_rate)
        }
        SignalKind::LatencyP99 => Some(
            slo.and_then(|s| s.latency_p99_ms)
                .unwrap_or(config.slo.latency_p99_ms),
        ),
        SignalKind::LatencyP50 | SignalKind::Throughput => None,
    }
}

/// Runs one point through a signal; returns a prediction when its status changed.
fn judge(
    signal: &mut SignalState,
    config: &PredictorConfig,
    slo: Option<&Slo>,
    kind: SignalKind,
    point: &Point,
    value: f64,
) -> Option<Prediction> {
    let params = params(kind);
    let a: Assessment = signal
        .ensemble
        .update(point.t, value, &config.detector, &params);
    let floor = params.min_abs.max(params.min_rel * value.abs());
    signal.forecast.update(point.t, value, floor);
    let limit = slo_limit(config, slo, kind);
    let horizon_ns =
        i64::try_from(config.horizon_s).unwrap_or(i64::MAX / 1_000_000_000) * 1_000_000_000;
    let breach = limit.map(|l| signal.forecast.breach(point.t, l, horizon_ns, floor));
    let risk = breach.map_or(0.0, |b| b.risk);
    // Risk alarms need the ensemble's warm-up too: a forecast from a handful
    // of points is a guess.
    let warm = signal.ensemble.points() > config.detector.warmup_points;
    let risk_h = Hysteresis {
        raise: config.risk_threshold,
        clear: config.risk_threshold / 2.0,
        clear_points: config.hysteresis.clear_points,
    };
    signal.anomaly.update(a.score, &config.hysteresis);
    signal.risk.update(if warm { risk } else { 0.0 }, &risk_h);
    let status = if signal.risk.is_on() {
        PredictionStatus::BreachRisk
    } else if signal.anomaly.is_on() {
        PredictionStatus::Anomaly
    } else {
        PredictionStatus::Clear
    };
    if status == signal.status {
        return None;
    }
    signal.status = status;
    Some(Prediction {
        signal: kind,
        instance: None,
        version: None,
        status,
        score: round(a.score),
        risk: round(risk),
        horizon_s: config.horizon_s,
        // Whole seconds: the forecast is not more precise than that.
        predicted_breach_at: breach
            .and_then(|b| b.at)
            .map(|ns| Timestamp::from_nanos(ns - ns.rem_euclid(1_000_000_000))),
        slo_limit: limit.map(round),
        detectors: a
            .named()
            .map(|(name, score)| DetectorScore {
                name: name.to_owned(),
                score: round(score),
            })
            .collect(),
        baseline: round(a.expected),
        observed: round(a.observed),
        reason: String::new(),
    })
}

/// Six significant decimals: stable text, no false precision.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6 + 0.0
}

fn reason(service: &str, p: &Prediction) -> String {
    let what = match (&p.instance, &p.version) {
        (Some(i), _) => format!("{} of {service}/{i}", p.signal.as_str()),
        (_, Some(v)) => format!("{} of {service}@{v}", p.signal.as_str()),
        _ => format!("{} of {service}", p.signal.as_str()),
    };
    let unit = p.signal.unit();
    match p.status {
        PredictionStatus::BreachRisk => match (p.predicted_breach_at, p.slo_limit) {
            (Some(at), Some(limit)) => format!(
                "{what} is forecast to cross its SLO limit {limit} {unit} at {at} (risk {:.2}; now {} {unit})",
                p.risk, p.observed
            ),
            (None, Some(limit)) => format!(
                "{what} may cross its SLO limit {limit} {unit} within {} s (risk {:.2}; now {} {unit})",
                p.horizon_s, p.risk, p.observed
            ),
            _ => format!("{what} is at risk (risk {:.2})", p.risk),
        },
        PredictionStatus::Anomaly => {
            let lead = p
                .detectors
                .iter()
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .map_or("", |d| d.name.as_str());
            format!(
                "{what} is anomalous: {} {unit} where {} {unit} was expected (score {:.2}, {lead} leading)",
                p.observed, p.baseline, p.score
            )
        }
        PredictionStatus::Clear => format!(
            "{what} is back to normal: {} {unit} (score {:.2}, risk {:.2})",
            p.observed, p.score, p.risk
        ),
    }
}

impl Agent for PredictorAgent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, _seq: Seq, record: &Event, out: &mut Vec<Proposal>) {
        let t = record.time;
        if self.state.clock.is_none_or(|c| t > c) {
            self.state.clock = Some(t);
        }
        self.close_due(out);
        let service = record.subject.as_str();
        match &record.data {
            Data::Request(r) => {
                let Some(bad) = failed(r) else { return };
                let facets = self.facet_keys(r.instance.as_ref(), r.version.as_ref());
                let latency = r.latency_ms;
                self.observe(
                    service,
                    facets,
                    t.nanos(),
                    |b| b.add_request(bad, latency),
                    out,
                );
            }
            Data::Window(w) => {
                let facets = self.facet_keys(w.instance.as_ref(), w.version.as_ref());
                // A window's time is the end of its interval: it belongs to
                // the bucket holding its last instant.
                self.observe(service, facets, t.nanos() - 1, |b| b.add_window(w), out);
            }
            Data::Topology(topo) => {
                self.state
                    .services
                    .entry(service.to_owned())
                    .or_default()
                    .slo = topo.slo.clone();
            }
            _ => {}
        }
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        None
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_state(&self.state, NAME)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = decode_state(bytes, NAME)?;
        Ok(())
    }

    fn view(&self, service: Option<&str>) -> Option<serde_json::Value> {
        map_view(&self.state.services, service)
    }
}
