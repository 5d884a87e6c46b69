//! Predictor cost per point and memory per signal.
//!
//! * `ensemble/point`: one point through the whole detector ensemble (all
//!   four detectors, the vote and the post-processing), steady state, on a
//!   seasonal series with noise, a spike and a level shift.
//! * `forecast/point`: one point through the breach forecaster.
//! * Baselines in the same run: `baseline/ewma` (one exponentially weighted
//!   mean per point, the cheapest possible detector) and `baseline/read`
//!   (reading the point).
//! * Memory per signal is printed once: the ensemble including its seasonal
//!   profile, plus the forecaster and alarm state the agent keeps beside it.
//!
//! Run: `cargo bench --bench predictor`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultline::actors::predictor::alarm::Alarm;
use faultline::actors::predictor::ensemble::{DetectorConfig, Ensemble, GENERIC};
use faultline::actors::predictor::forecast::Forecaster;

const POINTS: usize = 100_000;
const STEP: i64 = 60_000_000_000;

fn series() -> Vec<(i64, f64)> {
    let mut x: u64 = 7;
    (0..POINTS)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let noise = ((x >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 4.0;
            let day = (i % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
            let shift = if i > 70_000 { 15.0 } else { 0.0 };
            let spike = if i % 9_973 == 0 { 60.0 } else { 0.0 };
            (
                i as i64 * STEP,
                100.0 + 20.0 * day.sin() + noise + shift + spike,
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = series();
    let config = DetectorConfig::default();
    // Warm state, as in a long-running agent.
    let mut warm = Ensemble::new(&config);
    for &(t, v) in &data {
        warm.update(t, v, &config, &GENERIC);
    }
    let per_signal =
        warm.memory_bytes() + std::mem::size_of::<Forecaster>() + 2 * std::mem::size_of::<Alarm>();
    eprintln!(
        "memory per signal: {per_signal} bytes (ensemble {} incl. {} seasonal bins)",
        warm.memory_bytes(),
        config.season_bins
    );

    let mut g = c.benchmark_group("predictor");
    g.throughput(Throughput::Elements(POINTS as u64));
    g.sample_size(20);
    let offset = POINTS as i64 * STEP;
    g.bench_function("ensemble/point", |b| {
        b.iter_batched_ref(
            || warm.clone(),
            |e| {
                for &(t, v) in &data {
                    black_box(e.update(offset + t, v, &config, &GENERIC));
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("forecast/point", |b| {
        b.iter_batched_ref(
            Forecaster::default,
            |f| {
                for &(t, v) in &data {
                    f.update(t, v, 1e-3);
                    black_box(f.breach(t, 500.0, 900_000_000_000, 1e-3));
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("baseline/ewma", |b| {
        b.iter(|| {
            let mut m = 0.0;
            for &(_, v) in &data {
                m += 0.05 * (v - m);
                black_box(m);
            }
        })
    });
    g.bench_function("baseline/read", |b| {
        b.iter(|| {
            for p in &data {
                black_box(p);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
