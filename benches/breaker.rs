//! Breaker cost per event and `process` throughput.
//!
//! * `apply/request`: one request through the engine with the breaker agent
//!   (no decode), per event.
//! * `process/1M`: one million JSON lines through decode, validation, engine
//!   and decision output (to a sink), as `faultline process` does.
//! * Baselines in the same run: `decode/1M` (decode + validate only) and
//!   `raw/1M` (serde_json skipping over each line, no typed decode).
//!
//! Run: `cargo bench --bench breaker`. Compare `process` with `decode` and
//! `raw`; the absolute numbers depend on the machine.

use std::hint::black_box;
use std::io;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use faultline::config::Config;
use faultline::events::{decode_input, Codec, Event};
use faultline::process::{self, Processor};

const POLICY: &str = "[breaker.default]\nsliding_window_size = 50\nminimum_number_of_calls = 20\nwait_duration_in_open_state_ms = 5000\n";
const EVENTS: usize = 1_000_000;

/// A day of traffic for 20 services, with failure bursts so breakers trip.
fn lines(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 200);
    let start = 1_767_225_600_000i64;
    for i in 0..n {
        let svc = i % 20;
        let t = start + (i as i64) * 2;
        let burst = (i / 50_000) % 4 == 1 && svc < 3;
        let status = if burst && i % 3 != 0 {
            503
        } else if i % 97 == 0 {
            500
        } else {
            200
        };
        let secs = t.div_euclid(1000);
        let ms = t.rem_euclid(1000);
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let day = 1 + (secs - 1_767_225_600) / 86_400;
        out.extend_from_slice(
            format!(
                "{{\"specversion\":\"1.0\",\"id\":\"e{i}\",\"source\":\"bench\",\"type\":\"faultline.request\",\"subject\":\"svc{svc}\",\"time\":\"2026-01-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z\",\"data\":{{\"caller\":\"web\",\"status\":{status},\"latency_ms\":{}.5}}}}\n",
                i % 300
            )
            .as_bytes(),
        );
    }
    out
}

fn config() -> Config {
    Config::from_toml(POLICY, "bench").unwrap()
}

fn bench(c: &mut Criterion) {
    let input = lines(EVENTS);
    let events: Vec<Event> = input
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .take(100_000)
        .map(|l| decode_input(Codec::Json, l).unwrap())
        .collect();

    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(1));
    g.bench_function("request", |b| {
        let mut engine = process::engine(&config());
        let mut out = Vec::new();
        let mut i = 0;
        b.iter_batched_ref(
            || {
                i = (i + 1) % events.len();
                events[i].clone()
            },
            |e| {
                out.clear();
                engine.ingest(std::mem::replace(e, events[0].clone()), &mut out);
                black_box(out.len())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("throughput");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("raw/1M", |b| {
        b.iter(|| {
            for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(line).unwrap());
            }
        })
    });
    g.bench_function("decode/1M", |b| {
        b.iter(|| {
            for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                black_box(decode_input(Codec::Json, line).unwrap());
            }
        })
    });
    g.bench_function("process/1M", |b| {
        b.iter(|| {
            let mut p = Processor::new(process::engine(&config()), None, io::sink());
            process::json_lines(&mut p, &input[..], |_, _| {}).unwrap();
            black_box(p.finish().unwrap().1)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
