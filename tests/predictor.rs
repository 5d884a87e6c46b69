//! Predictor acceptance: breach forecasts come before the breach, a clean
//! seasonal week stays quiet, scores stay in [0, 1], and the agent is a
//! deterministic fold (same input, same decisions; snapshot + tail = whole).

use std::path::Path;

use faultline::actors::predictor::ensemble::{DetectorConfig, Ensemble, GENERIC};
use faultline::config::Config;
use faultline::engine::Engine;
use faultline::events::{decode_input, Codec, Event, Timestamp};
use faultline::process::{self, Processor};
use proptest::prelude::*;
use serde_json::Value;

fn scenario(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scenarios/predictor")
            .join(name)
            .join("input.jsonl"),
    )
    .unwrap()
}

fn decisions(input: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut p = Processor::new(process::engine(&Config::defaults()), None, &mut out);
    process::json_lines(&mut p, input, |_, _| {}).unwrap();
    p.finish().unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Time of the first window whose `field` exceeds `limit`.
fn first_breach(input: &[u8], field: impl Fn(&Value) -> Option<f64>, limit: f64) -> Timestamp {
    String::from_utf8_lossy(input)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| field(&e["data"]).is_some_and(|v| v > limit))
        .map(|e| Timestamp::parse(e["time"].as_str().unwrap()).unwrap())
        .expect("the scenario breaches")
}

fn first_forecast(decisions: &[Value], signal: &str) -> (Timestamp, Timestamp) {
    let d = decisions
        .iter()
        .find(|d| d["data"]["signal"] == signal && d["data"]["status"] == "breach_risk")
        .expect("a breach forecast");
    (
        Timestamp::parse(d["time"].as_str().unwrap()).unwrap(),
        Timestamp::parse(
            d["data"]["predicted_breach_at"]
                .as_str()
                .expect("a breach time"),
        )
        .unwrap(),
    )
}

#[test]
fn a_latency_leak_is_forecast_before_the_slo_is_breached() {
    let input = scenario("01_latency_leak");
    let breach = first_breach(&input, |d| d["latency_ms"]["p99"].as_f64(), 500.0);
    let (warned, predicted) = first_forecast(&decisions(&input), "latency_p99");
    let lead_s = breach.millis_since(warned) / 1000.0;
    eprintln!(
        "latency leak: warned {warned}, predicted {predicted}, breached {breach}: lead {lead_s} s"
    );
    assert!(lead_s >= 300.0, "lead time {lead_s} s");
    assert!(
        predicted.millis_since(breach).abs() <= 900_000.0,
        "predicted {predicted} vs {breach}"
    );
}

#[test]
fn a_rising_error_rate_is_forecast_before_the_slo_is_breached() {
    let input = scenario("02_error_rate_rising");
    let rate = |d: &Value| Some(100.0 * d["errors"].as_f64()? / d["requests"].as_f64()?);
    let breach = first_breach(&input, rate, 1.44);
    let (warned, predicted) = first_forecast(&decisions(&input), "error_rate");
    let lead_s = breach.millis_since(warned) / 1000.0;
    eprintln!(
        "error ramp: warned {warned}, predicted {predicted}, breached {breach}: lead {lead_s} s"
    );
    assert!(lead_s >= 300.0, "lead time {lead_s} s");
}

#[test]
fn a_clean_seasonal_week_predicts_nothing() {
    assert_eq!(
        decisions(&scenario("03_seasonal_week_clean")),
        Vec::<Value>::new()
    );
}

fn events(input: &[u8]) -> Vec<Event> {
    input
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| decode_input(Codec::Json, l).unwrap())
        .collect()
}

#[test]
fn snapshot_plus_tail_equals_the_whole_run() {
    let evs = events(&scenario("01_latency_leak"));
    let config = Config::defaults();
    let run = |engine: &mut Engine, evs: &[Event]| {
        let mut all = Vec::new();
        for e in evs {
            let mut out = Vec::new();
            engine.ingest(e.clone(), &mut out);
            all.extend(out);
        }
        all
    };
    let mut whole = process::engine(&config);
    let expected = run(&mut whole, &evs);
    let mut first = process::engine(&config);
    let mut got = run(&mut first, &evs[..400]);
    let snap = first.snapshot();
    let mut second = process::engine(&config);
    second.restore(&snap).unwrap();
    got.extend(run(&mut second, &evs[400..]));
    assert_eq!(got, expected);
    assert!(expected.iter().any(|e| e.source == "faultline/predictor"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scores_stay_in_unit_interval(
        values in prop::collection::vec(prop_oneof![
            4 => -1e3f64..1e3,
            1 => -1e12f64..1e12,
            1 => Just(0.0),
            1 => prop::num::f64::NORMAL,
        ], 1..600),
        step_s in 1i64..3600,
    ) {
        let config = DetectorConfig { warmup_points: 5, ..DetectorConfig::default() };
        let mut e = Ensemble::new(&config);
        for (i, v) in values.iter().enumerate() {
            let a = e.update(i as i64 * step_s * 1_000_000_000, *v, &config, &GENERIC);
            prop_assert!((0.0..=1.0).contains(&a.score), "score {} at {}", a.score, i);
            for d in a.detectors {
                prop_assert!((0.0..=1.0).contains(&d));
            }
        }
    }

    #[test]
    fn the_agent_is_deterministic(seed in 0u64..1000, len in 250usize..400) {
        // A service with a random walk in latency and occasional bursts.
        let mut x = seed;
        let mut next = || { x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (x >> 33) as f64 / (1u64 << 31) as f64 };
        let mut lines = String::new();
        let mut p99 = 100.0;
        for i in 0..len {
            p99 = (p99 + (next() - 0.5) * 20.0).max(1.0);
            let errors = if next() < 0.05 { 60 } else { (next() * 3.0) as u64 };
            lines.push_str(&format!(
                "{{\"specversion\":\"1.0\",\"id\":\"w{i}\",\"source\":\"t\",\"type\":\"faultline.window\",\"subject\":\"svc\",\"time\":\"{}\",\"data\":{{\"interval_ms\":10000,\"requests\":200,\"errors\":{errors},\"latency_ms\":{{\"p99\":{p99}}}}}}}\n",
                Timestamp::from_nanos(1_767_225_600_000_000_000 + i as i64 * 10_000_000_000)
            ));
        }
        let a = decisions(lines.as_bytes());
        let b = decisions(lines.as_bytes());
        prop_assert_eq!(a, b);
    }
}
