//! Guard and hub cost per event on a 500-service graph.
//!
//! The graph is layered (entries, then four layers; every service calls two
//! services of the next layer). Each service publishes a `faultline.window`
//! every 5 s (half of them per caller, so the guard also learns edges), for
//! 1,000 s: 100,000 windows, 100 guard intervals. From t=500 s to 700 s one
//! mid-graph service fails 40 % and its callers 30 %, so ranking,
//! containment and lifting all run.
//!
//! * `guard/apply`: every window through the guard's `apply` (its interval
//!   closes judge 500 services and measure every edge).
//! * `hub/apply`: the same windows plus the guard's decisions (recorded once
//!   through the engine) through the hub's `apply`.
//! * `baseline/read`: reading each window and summing its errors, the least
//!   any consumer does.
//!
//! Run: `cargo bench --bench guard_hub`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use faultline::actors::guard::{GuardAgent, GuardConfig};
use faultline::actors::hub::{HubAgent, HubConfig};
use faultline::config::Config;
use faultline::engine::Agent;
use faultline::events::observation::{Dependency, LatencySummary, Topology, Window};
use faultline::events::{Data, Event, Timestamp};
use faultline::process;

const SERVICES: usize = 500;
const LAYER: usize = 100;
const SECONDS: u64 = 1000;

fn event(i: usize, subject: &str, time: Timestamp, data: Data) -> Event {
    Event {
        id: format!("e{i}"),
        source: "bench".into(),
        subject: subject.into(),
        time,
        datacontenttype: None,
        causeseq: None,
        causeid: None,
        data,
    }
}

fn name(i: usize) -> String {
    format!("svc{i:03}")
}

fn callees(i: usize) -> Vec<usize> {
    if i + LAYER >= SERVICES {
        return Vec::new();
    }
    let next = (i / LAYER + 1) * LAYER;
    vec![next + (i * 7) % LAYER, next + (i * 7 + 1) % LAYER]
}

fn inputs() -> Vec<Event> {
    let t0 = Timestamp::from_millis(1_767_225_600_000);
    let mut v = Vec::new();
    for i in 0..SERVICES {
        let deps = callees(i)
            .into_iter()
            .map(|c| Dependency {
                callee: name(c),
                critical: true,
            })
            .collect();
        let topo = Topology {
            dependencies: deps,
            ..Topology::default()
        };
        v.push(event(v.len(), &name(i), t0, Data::Topology(topo)));
    }
    let root = 250;
    let callers: Vec<usize> = (0..SERVICES)
        .filter(|i| callees(*i).contains(&root))
        .collect();
    let mut t = 1;
    while t < SECONDS {
        for i in 0..SERVICES {
            let faulty = (500..700).contains(&t) && (i == root || callers.contains(&i));
            let errors = if !faulty {
                1
            } else if i == root {
                40
            } else {
                30
            };
            let caller = (i % 2 == 1 && i >= LAYER).then(|| name(i - LAYER));
            let w = Window {
                caller,
                interval_ms: 5000,
                requests: 100,
                errors,
                latency_ms: Some(LatencySummary {
                    p99: Some(50.0 + (i % 13) as f64),
                    ..LatencySummary::default()
                }),
                ..Window::default()
            };
            v.push(event(
                v.len(),
                &name(i),
                t0.plus_millis(t * 1000),
                Data::Window(w),
            ));
        }
        t += 5;
    }
    v
}

/// The inputs with the guard's decisions, as the log would hold them.
fn with_decisions(inputs: &[Event]) -> Vec<Event> {
    let config = Config::from_toml("agents = [\"guard\"]\n", "bench").unwrap();
    let mut engine = process::engine(&config);
    let mut log = Vec::new();
    for e in inputs {
        engine.ingest(e.clone(), &mut log);
    }
    log
}

fn run(agent: &mut dyn Agent, evs: &[Event]) -> usize {
    let mut out = Vec::new();
    let mut n = 0;
    for (seq, e) in evs.iter().enumerate() {
        agent.apply(seq as u64 + 1, e, &mut out);
        n += out.len();
        out.clear();
    }
    n
}

fn bench(c: &mut Criterion) {
    let evs = inputs();
    let logged = with_decisions(&evs);
    let decisions = logged.len() - evs.len();
    eprintln!(
        "{} windows and topologies, {decisions} guard decisions",
        evs.len()
    );
    let mut g = c.benchmark_group("guard_hub");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.sample_size(10);
    g.bench_function("guard/apply", |b| {
        b.iter_batched(
            || GuardAgent::new(Arc::new(GuardConfig::default())),
            |mut a| black_box(run(&mut a, &evs)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("hub/apply", |b| {
        b.iter_batched(
            || HubAgent::new(Arc::new(HubConfig::default())),
            |mut a| black_box(run(&mut a, &logged)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("baseline/read", |b| {
        b.iter(|| {
            let mut errors = 0u64;
            for e in &evs {
                if let Data::Window(w) = &e.data {
                    errors += w.errors;
                }
            }
            black_box(errors)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
