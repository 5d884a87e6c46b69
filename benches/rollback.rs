//! Rollback agent cost per event.
//!
//! * `apply/request`: one `faultline.request` through the rollback agent's
//!   `apply` during a canary analysis: v1 and v2 serve alternately, each
//!   request tallied into the service's recent history and into its side of
//!   the analysis (latency into the 1 % histogram), with an analysis judged
//!   every 60 s of event time (Mann–Whitney over both sides' latencies and
//!   error samples). 100,000 requests 10 ms apart: 16 analyses.
//! * `apply/window`: the same with one `faultline.window` per version per
//!   second (what most publishers send).
//! * Baseline in the same run: `baseline/classify` (reading each event and
//!   classifying it as failed or not, the least any consumer does).
//!
//! Run: `cargo bench --bench rollback`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use faultline::actors::rollback::{RollbackAgent, RollbackConfig};
use faultline::engine::Agent;
use faultline::events::observation::{
    Deploy, DeployPhase, DeployStrategy, LatencySummary, Request, Window,
};
use faultline::events::{Data, Event, Timestamp};

const EVENTS: usize = 100_000;

fn event(i: usize, time: Timestamp, data: Data) -> Event {
    Event {
        id: format!("e{i}"),
        source: "bench".into(),
        subject: "api".into(),
        time,
        datacontenttype: None,
        causeseq: None,
        causeid: None,
        data,
    }
}

fn deploy(t0: Timestamp) -> Event {
    event(
        0,
        t0,
        Data::Deploy(Deploy {
            phase: DeployPhase::Started,
            version: "v2".into(),
            previous_version: Some("v1".into()),
            strategy: Some(DeployStrategy::Canary),
            canary_weight: Some(50),
            irreversible_migration: None,
            regions: None,
        }),
    )
}

fn requests() -> Vec<Event> {
    let t0 = Timestamp::from_millis(1_767_225_600_000);
    let mut v = vec![deploy(t0)];
    v.extend((1..EVENTS).map(|i| {
        let version = if i % 2 == 0 { "v1" } else { "v2" };
        event(
            i,
            t0.plus_millis(i as u64 * 10),
            Data::Request(Request {
                version: Some(version.into()),
                status: Some(if i % 97 == 0 { 503 } else { 200 }),
                latency_ms: Some(20.0 + (i * 7919 % 400) as f64),
                ..Request::default()
            }),
        )
    }));
    v
}

fn windows() -> Vec<Event> {
    let t0 = Timestamp::from_millis(1_767_225_600_000);
    let mut v = vec![deploy(t0)];
    v.extend((1..EVENTS).map(|i| {
        let version = if i % 2 == 0 { "v1" } else { "v2" };
        event(
            i,
            t0.plus_millis(i as u64 / 2 * 1000),
            Data::Window(Window {
                version: Some(version.into()),
                interval_ms: 1000,
                requests: 100,
                errors: (i % 3) as u64,
                latency_ms: Some(LatencySummary {
                    p99: Some(180.0 + (i * 7919 % 60) as f64),
                    ..LatencySummary::default()
                }),
                ..Window::default()
            }),
        )
    }));
    v
}

fn run(evs: &[Event]) -> RollbackAgent {
    let mut agent = RollbackAgent::new(Arc::new(RollbackConfig::default()));
    let mut out = Vec::new();
    for (seq, e) in evs.iter().enumerate() {
        agent.apply(seq as u64 + 1, e, &mut out);
        out.clear();
    }
    agent
}

fn bench(c: &mut Criterion) {
    let reqs = requests();
    let wins = windows();
    let mut g = c.benchmark_group("rollback");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    g.bench_function("apply/request", |b| {
        b.iter_batched(|| (), |()| run(&reqs), BatchSize::LargeInput)
    });
    g.bench_function("apply/window", |b| {
        b.iter_batched(|| (), |()| run(&wins), BatchSize::LargeInput)
    });
    g.bench_function("baseline/classify", |b| {
        b.iter(|| {
            let mut failed = 0u64;
            for e in &reqs {
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
