//! `faultline::client` endpoint selection: cost per pick for 100 endpoints
//! under every strategy, each pick completed at once (in-flight counts and
//! latency estimates updated, as in use).
//!
//! * `pick/<strategy>`: one `pick` + `complete`, 100 endpoints in 2 regions
//!   and 2 versions, with a route decision in force (canary version shares
//!   for `canary_split`, none otherwise).
//! * Baseline in the same run: `baseline/index` (a seeded random index into
//!   the endpoint list, the least any picker does).
//!
//! Run: `cargo bench --bench client`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultline::client::{Client, ClientConfig, Endpoint, Outcome, Strategy};
use faultline::events::decision::{RouteDecision, RouteLevel, RouteStrategy, RouteWeight};
use faultline::events::Timestamp;

const ENDPOINTS: usize = 100;
const PICKS: u64 = 10_000;

fn client(strategy: Strategy) -> Client {
    let mut config = ClientConfig::new("api");
    config.strategy = strategy;
    config.local_region = Some("eu".into());
    config.seed = 1;
    let mut c = Client::new(config);
    c.set_endpoints(
        (0..ENDPOINTS)
            .map(|i| {
                Endpoint::new(format!("api-{i}"))
                    .region(if i % 2 == 0 { "eu" } else { "us" })
                    .version(if i % 10 == 0 { "v2" } else { "v1" })
                    .weight(1 + (i % 3) as u32)
            })
            .collect(),
    );
    if strategy == Strategy::CanarySplit {
        let weight = |target: &str, weight| RouteWeight {
            level: RouteLevel::Version,
            target: target.into(),
            weight,
        };
        c.apply_route(&RouteDecision {
            strategy: RouteStrategy::CanarySplit,
            weights: vec![weight("v1", 90), weight("v2", 10)],
            ejected: vec![],
            hosts: ENDPOINTS as u32,
            healthy_hosts: ENDPOINTS as u32,
            reason: String::new(),
        });
    }
    c
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::from_millis(1_767_225_600_000);
    let keys: Vec<Vec<u8>> = (0..PICKS)
        .map(|k| format!("user-{k}").into_bytes())
        .collect();
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(PICKS));
    for strategy in Strategy::ALL {
        let mut cl = client(strategy);
        g.bench_function(format!("pick/{strategy}"), |b| {
            b.iter(|| {
                for key in &keys {
                    let p = cl.pick(now, Some(key)).expect("pick");
                    cl.complete(p, now, 12.0, Outcome::Ok);
                    black_box(p);
                }
            })
        });
    }
    g.bench_function("baseline/index", |b| {
        let mut x: u64 = 1;
        b.iter(|| {
            for _ in 0..PICKS {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                black_box(((u128::from(x) * ENDPOINTS as u128) >> 64) as usize);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
