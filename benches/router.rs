//! Router agent cost per event.
//!
//! * `apply/request`: one `faultline.request` through the router's `apply`
//!   (tallies, consecutive-failure runs, the analysis timer every 10 s, the
//!   routing table compared for a material change), for a service with 100
//!   instances in 2 regions, 1 % failures and one instance failing in bursts
//!   long enough to be ejected and readmitted.
//! * Baseline in the same run: `baseline/classify` (reading each event and
//!   classifying it as failed or not, the least any consumer does).
//!
//! Run: `cargo bench --bench router`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use faultline::actors::router::{RouterAgent, RouterConfig};
use faultline::engine::Agent;
use faultline::events::observation::Request;
use faultline::events::{Data, Event, Timestamp};

const EVENTS: usize = 100_000;

fn events() -> Vec<Event> {
    let t0 = Timestamp::from_millis(1_767_225_600_000);
    (0..EVENTS)
        .map(|i| {
            let inst = i % 100;
            let burst = inst == 7 && (i / 100) % 50 < 6;
            let status = if burst || i % 101 == 0 { 503 } else { 200 };
            Event {
                id: format!("e{i}"),
                source: "bench".into(),
                subject: "api".into(),
                time: t0.plus_millis(i as u64),
                datacontenttype: None,
                causeseq: None,
                causeid: None,
                data: Data::Request(Request {
                    instance: Some(format!("api-{inst}")),
                    region: Some(if inst % 2 == 0 { "eu" } else { "us" }.into()),
                    status: Some(status),
                    latency_ms: Some(12.0),
                    ..Request::default()
                }),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let evs = events();
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    g.bench_function("apply/request", |b| {
        b.iter_batched(
            || RouterAgent::new(Arc::new(RouterConfig::default())),
            |mut agent| {
                let mut out = Vec::new();
                for (seq, e) in evs.iter().enumerate() {
                    agent.apply(seq as u64 + 1, e, &mut out);
                    out.clear();
                }
                agent
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("baseline/classify", |b| {
        b.iter(|| {
            let mut failed = 0u64;
            for e in &evs {
                if let Data::Request(r) = &e.data {
                    failed += u64::from(r.status.is_some_and(|s| s >= 500));
                }
            }
            black_box(failed)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
