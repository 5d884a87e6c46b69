//! `faultline::client` through its public interface: every strategy's
//! distribution over 100,000 seeded picks, the breaker gate, route
//! decisions (ejections, region and version shares), adaptive throttling,
//! failure accrual and determinism.

use faultline::client::{Client, ClientConfig, Endpoint, Outcome, Pick, Refusal, Strategy};
use faultline::events::decision::{
    BreakerDecision, BreakerState, BreakerTrigger, Ejection, EjectionTrigger, RouteDecision,
    RouteLevel, RouteStrategy, RouteWeight,
};
use faultline::events::observation::Scope;
use faultline::events::Timestamp;

const PICKS: usize = 100_000;
const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn client(strategy: Strategy, endpoints: Vec<Endpoint>) -> Client {
    let mut config = ClientConfig::new("api");
    // Picks here are not all completed; throttling has its own test.
    config.throttle = None;
    config.strategy = strategy;
    config.seed = 7;
    let mut c = Client::new(config);
    c.set_endpoints(endpoints);
    c
}

fn plain(n: usize) -> Vec<Endpoint> {
    (0..n).map(|i| Endpoint::new(format!("api-{i}"))).collect()
}

/// Picks (completing each at once) and counts per endpoint id index.
fn shares(c: &mut Client, n: usize, key: impl Fn(usize) -> Option<Vec<u8>>) -> Vec<usize> {
    let ids: Vec<String> = c.endpoints().map(|e| e.id.clone()).collect();
    let mut counts = vec![0; ids.len()];
    for k in 0..n {
        let p = c.pick(T0, key(k).as_deref()).expect("a pick");
        let id = &c.endpoint(p).id;
        counts[ids.iter().position(|i| i == id).unwrap()] += 1;
        c.complete(p, T0, 10.0, Outcome::Ok);
    }
    counts
}

fn id(c: &mut Client, now: Timestamp, key: Option<&[u8]>) -> String {
    let p = c.pick(now, key).expect("a pick");
    c.endpoint(p).id.clone()
}

fn assert_share(count: usize, expected: f64, what: &str) {
    let share = count as f64 / PICKS as f64;
    assert!(
        (share - expected).abs() < 0.01,
        "{what}: share {share:.4}, expected {expected:.4}"
    );
}

fn breaker(
    scope: Scope,
    target: &str,
    to: BreakerState,
    permitted: Option<u32>,
) -> BreakerDecision {
    BreakerDecision {
        scope,
        target: target.into(),
        from: BreakerState::Closed,
        to,
        trigger: BreakerTrigger::FailureRate,
        failure_rate: Some(60.0),
        slow_call_rate: Some(0.0),
        calls: 100,
        failed: 60,
        slow: 0,
        threshold: 50.0,
        permitted_calls: permitted,
        open_until: None,
        reason: String::new(),
    }
}

fn route(weights: &[(RouteLevel, &str, u32)], ejected: Vec<Ejection>) -> RouteDecision {
    RouteDecision {
        strategy: RouteStrategy::Weighted,
        weights: weights
            .iter()
            .map(|&(level, target, weight)| RouteWeight {
                level,
                target: target.into(),
                weight,
            })
            .collect(),
        ejected,
        hosts: 0,
        healthy_hosts: 0,
        reason: String::new(),
    }
}

#[test]
fn round_robin_visits_each_endpoint_in_turn() {
    let mut c = client(Strategy::RoundRobin, plain(7));
    let first: Vec<String> = (0..14).map(|_| id(&mut c, T0, None)).collect();
    assert_eq!(first[..7], first[7..]);
    let counts = shares(&mut c, 7 * 1000, |_| None);
    assert!(counts.iter().all(|&n| n == 1000), "{counts:?}");
}

#[test]
fn weighted_shares_follow_weights() {
    let endpoints = vec![
        Endpoint::new("a").weight(5),
        Endpoint::new("b").weight(3),
        Endpoint::new("c").weight(2),
    ];
    let mut c = client(Strategy::Weighted, endpoints);
    let counts = shares(&mut c, PICKS, |_| None);
    for (n, w) in counts.iter().zip([0.5, 0.3, 0.2]) {
        assert_share(*n, w, "weighted");
    }
    // A route decision's instance weights win over the endpoints' own.
    c.apply_route(&route(
        &[
            (RouteLevel::Instance, "a", 1),
            (RouteLevel::Instance, "b", 1),
            (RouteLevel::Instance, "c", 2),
        ],
        vec![],
    ));
    let counts = shares(&mut c, PICKS, |_| None);
    for (n, w) in counts.iter().zip([0.25, 0.25, 0.5]) {
        assert_share(*n, w, "route instance weights");
    }
}

#[test]
fn weights_too_long_to_precompute_still_share_exactly() {
    // 40,000 + 30,001 has no common factor: a period of 70,001 picks, longer
    // than the precomputed cycle, so every pick runs smooth WRR live.
    let endpoints = vec![
        Endpoint::new("a").weight(40_000),
        Endpoint::new("b").weight(30_001),
    ];
    let mut c = client(Strategy::Weighted, endpoints);
    let counts = shares(&mut c, 70_001, |_| None);
    assert_eq!(counts, vec![40_000, 30_001]);
}

#[test]
fn random_is_uniform_and_seeded() {
    let mut c = client(Strategy::Random, plain(10));
    let counts = shares(&mut c, PICKS, |_| None);
    for n in &counts {
        assert_share(*n, 0.1, "random");
    }
    let mut again = client(Strategy::Random, plain(10));
    assert_eq!(shares(&mut again, PICKS, |_| None), counts);
}

/// Leaves endpoint `i` with exactly `i` requests in flight.
fn staircase(c: &mut Client, n: usize) -> Vec<Pick> {
    let mut held: Vec<Pick> = (0..2 * n * n).map(|_| c.pick(T0, None).unwrap()).collect();
    let mut kept = Vec::new();
    let mut per = vec![0; n];
    for p in held.drain(..) {
        let i: usize = c.endpoint(p).id[4..].parse().unwrap();
        if per[i] < i {
            per[i] += 1;
            kept.push(p);
        } else {
            c.complete(p, T0, 10.0, Outcome::Ok);
        }
    }
    assert_eq!(per, (0..n).collect::<Vec<_>>(), "not enough load to shape");
    for i in 0..n {
        assert_eq!(c.in_flight(&format!("api-{i}")), Some(i as u32));
    }
    kept
}

#[test]
fn least_request_never_picks_the_more_loaded_of_two() {
    let n = 10;
    let mut c = client(Strategy::LeastRequest, plain(n));
    let _held = staircase(&mut c, n);
    let counts = shares(&mut c, PICKS, |_| None);
    assert_power_of_two_choices(&counts, "least_request");
}

/// With distinct costs (rank k = k-th cheapest) the costliest endpoint
/// loses every comparison, and rank k wins 2(n−1−k) of the n(n−1) ordered
/// pairs of distinct candidates.
fn assert_power_of_two_choices(counts: &[usize], what: &str) {
    let n = counts.len();
    assert_eq!(counts[n - 1], 0, "{what}: {counts:?}");
    for (k, &count) in counts.iter().enumerate() {
        let expected = 2.0 * (n - 1 - k) as f64 / (n * (n - 1)) as f64;
        assert_share(count, expected, &format!("{what} rank {k}"));
    }
}

#[test]
fn latency_ewma_prefers_fast_endpoints_and_never_the_costlier_of_two() {
    let n = 4;
    let mut c = client(Strategy::LatencyEwma, plain(n));
    // Teach each endpoint its latency: api-i answers in 10·(i+1) ms.
    for _ in 0..200 {
        let p = c.pick(T0, None).unwrap();
        let i: f64 = c.endpoint(p).id[4..].parse().unwrap();
        c.complete(p, T0, 10.0 * (i + 1.0), Outcome::Ok);
    }
    let mut counts = vec![0; n];
    for _ in 0..PICKS {
        let p = c.pick(T0, None).unwrap();
        let i: usize = c.endpoint(p).id[4..].parse().unwrap();
        counts[i] += 1;
        c.complete(p, T0, 10.0 * (i as f64 + 1.0), Outcome::Ok);
    }
    assert_power_of_two_choices(&counts, "latency_ewma");
}

#[test]
fn ring_hash_is_sticky_and_ejection_moves_only_the_ejected_keys() {
    let mut c = client(Strategy::RingHash, plain(10));
    let key = |k: usize| Some(format!("user-{k}").into_bytes());
    let before: Vec<String> = (0..20_000)
        .map(|k| id(&mut c, T0, key(k).as_deref()))
        .collect();
    let counts = shares(&mut c, PICKS, key);
    for n in &counts {
        assert!((7_000..13_000).contains(n), "{counts:?}");
    }
    c.apply_route(&route(
        &[],
        vec![Ejection {
            instance: "api-3".into(),
            trigger: EjectionTrigger::Consecutive5xx,
            until: Some(T0.plus_millis(30_000)),
            ejections: 1,
            observed: 5.0,
            threshold: 5.0,
        }],
    ));
    for (k, was) in before.iter().enumerate() {
        let now = id(&mut c, T0, key(k).as_deref());
        if was == "api-3" {
            assert_ne!(now, "api-3");
        } else {
            assert_eq!(&now, was, "key {k} moved");
        }
    }
    // The ejection ends on time and the keys come home.
    let later = T0.plus_millis(30_000);
    for (k, was) in before.iter().enumerate().take(2_000) {
        assert_eq!(&id(&mut c, later, key(k).as_deref()), was);
    }
}

fn regional(local_healthy: usize, local: usize, remote: usize) -> Client {
    let mut endpoints = Vec::new();
    for i in 0..local {
        endpoints.push(Endpoint::new(format!("eu-{i}")).region("eu-west-1"));
    }
    for i in 0..remote {
        endpoints.push(Endpoint::new(format!("us-{i}")).region("us-east-1"));
    }
    let mut config = ClientConfig::new("api");
    // Picks here are not all completed; throttling has its own test.
    config.throttle = None;
    config.strategy = Strategy::LocalityPriority;
    config.local_region = Some("eu-west-1".into());
    let mut c = Client::new(config);
    c.set_endpoints(endpoints);
    for i in local_healthy..local {
        c.set_health(&format!("eu-{i}"), false);
    }
    c
}

fn local_share(c: &mut Client) -> f64 {
    let local = (0..PICKS)
        .filter(|_| id(c, T0, None).starts_with("eu-"))
        .count();
    local as f64 / PICKS as f64
}

#[test]
fn locality_priority_fails_over_by_envoy_priority_levels() {
    // 50 % healthy × 1.4 = 70 % stays local.
    let mut c = regional(5, 10, 10);
    assert!((local_share(&mut c) - 0.70).abs() < 0.01);
    // 72 % healthy × 1.4 ≥ 100 %: no failover.
    let mut c = regional(18, 25, 10);
    assert_eq!(local_share(&mut c), 1.0);
    // Unhealthy endpoints never get traffic outside panic.
    let mut c = regional(5, 10, 10);
    for _ in 0..10_000 {
        let id = id(&mut c, T0, None);
        assert!(
            !matches!(id.as_str(), "eu-5" | "eu-6" | "eu-7" | "eu-8" | "eu-9"),
            "{id}"
        );
    }
}

#[test]
fn panic_mode_spreads_over_every_endpoint() {
    // 2 of 10 healthy locally, no remote: 20 % < 50 %, so all ten share.
    let mut c = regional(2, 10, 0);
    let counts = shares(&mut c, PICKS, |_| None);
    for n in &counts {
        assert_share(*n, 0.1, "panic");
    }
}

#[test]
fn canary_split_follows_version_weights() {
    let mut endpoints: Vec<Endpoint> = (0..9)
        .map(|i| Endpoint::new(format!("api-{i}")).version("v1"))
        .collect();
    endpoints.push(Endpoint::new("api-9").version("v2"));
    let mut c = client(Strategy::CanarySplit, endpoints);
    c.apply_route(&route(
        &[
            (RouteLevel::Version, "v1", 80),
            (RouteLevel::Version, "v2", 20),
        ],
        vec![],
    ));
    let counts = shares(&mut c, PICKS, |_| None);
    assert_share(counts[9], 0.20, "canary");
    assert_share(counts[..9].iter().sum(), 0.80, "stable");
}

#[test]
fn region_weights_from_the_router_win() {
    let mut c = regional(10, 10, 10);
    c.apply_route(&route(
        &[
            (RouteLevel::Region, "eu-west-1", 30),
            (RouteLevel::Region, "us-east-1", 70),
        ],
        vec![],
    ));
    assert!((local_share(&mut c) - 0.30).abs() < 0.01);
}

#[test]
fn service_breaker_refuses_when_open_and_admits_exactly_the_probes() {
    let mut c = client(Strategy::RoundRobin, plain(3));
    c.apply_breaker(&breaker(Scope::Service, "api", BreakerState::Open, None));
    let e = c.pick(T0, None).unwrap_err();
    assert!(
        matches!(
            e,
            Refusal::Breaker {
                scope: Scope::Service,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("open"), "{e}");
    c.apply_breaker(&breaker(
        Scope::Service,
        "api",
        BreakerState::HalfOpen,
        Some(4),
    ));
    let results: Vec<_> = (0..10).map(|_| c.pick(T0, None)).collect();
    assert!(results[..4]
        .iter()
        .all(|r| r.as_ref().is_ok_and(|p| p.probe)));
    assert!(results[4..].iter().all(Result::is_err));
    c.apply_breaker(&breaker(Scope::Service, "api", BreakerState::Closed, None));
    assert!(c.pick(T0, None).is_ok_and(|p| !p.probe));
    // Another service's breaker is none of this client's business.
    c.apply_breaker(&breaker(Scope::Service, "db", BreakerState::Open, None));
    assert!(c.pick(T0, None).is_ok());
}

#[test]
fn instance_and_edge_breakers() {
    let mut config = ClientConfig::new("api");
    // Picks here are not all completed; throttling has its own test.
    config.throttle = None;
    config.caller = Some("web".into());
    let mut c = Client::new(config);
    c.set_endpoints(plain(3));
    c.apply_breaker(&breaker(
        Scope::Instance,
        "api/api-1",
        BreakerState::Open,
        None,
    ));
    for _ in 0..30 {
        assert_ne!(id(&mut c, T0, None), "api-1");
    }
    // Half-open instance: exactly its probes reach it.
    c.apply_breaker(&breaker(
        Scope::Instance,
        "api/api-1",
        BreakerState::HalfOpen,
        Some(2),
    ));
    let probes = (0..60).filter(|_| c.pick(T0, None).unwrap().probe).count();
    assert_eq!(probes, 2);
    // An edge breaker applies to its caller only.
    c.apply_breaker(&breaker(
        Scope::Edge,
        "mobile->api",
        BreakerState::Open,
        None,
    ));
    assert!(c.pick(T0, None).is_ok());
    c.apply_breaker(&breaker(Scope::Edge, "web->api", BreakerState::Open, None));
    assert!(matches!(
        c.pick(T0, None),
        Err(Refusal::Breaker {
            scope: Scope::Edge,
            ..
        })
    ));
}

#[test]
fn no_endpoints_is_a_clear_refusal() {
    let mut c = client(Strategy::RoundRobin, vec![]);
    let e = c.pick(T0, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no endpoint of api can take the call (0 known)"
    );
}

#[test]
fn the_system_breaker_gates_only_when_forced_open() {
    let mut c = client(Strategy::RoundRobin, plain(3));
    let system = faultline::events::subject::SYSTEM_SUBJECT;
    // Opened by the share of tripped services: a signal, calls go on.
    c.apply_breaker(&breaker(Scope::System, system, BreakerState::Open, None));
    assert!(c.pick(T0, None).is_ok());
    // The service's own breaker still gates.
    c.apply_breaker(&breaker(Scope::Service, "api", BreakerState::Open, None));
    assert!(matches!(
        c.pick(T0, None).unwrap_err(),
        Refusal::Breaker {
            scope: Scope::Service,
            ..
        }
    ));
    c.apply_breaker(&breaker(Scope::Service, "api", BreakerState::Closed, None));
    // Forced open by an operator: the kill switch refuses everything.
    c.apply_breaker(&breaker(
        Scope::System,
        system,
        BreakerState::ForcedOpen,
        None,
    ));
    assert!(matches!(
        c.pick(T0, None).unwrap_err(),
        Refusal::Breaker {
            scope: Scope::System,
            ..
        }
    ));
}

#[test]
fn an_overloaded_upstream_is_throttled_not_cut_off_and_errors_do_not_throttle() {
    let mut c = Client::new(ClientConfig::new("api"));
    c.set_endpoints(plain(3));
    let second = |s: i64| T0.plus_millis(s as u64 * 1000);
    // Each second 100 calls; the upstream refuses all but the first 20 it gets.
    let (mut sent, mut throttled) = (0, 0);
    for s in 0..60 {
        let mut got = 0;
        for _ in 0..100 {
            match c.pick(second(s), None) {
                Ok(p) => {
                    got += 1;
                    let outcome = if got <= 20 {
                        Outcome::Ok
                    } else {
                        Outcome::Rejected
                    };
                    c.complete(p, second(s), 5.0, outcome);
                    if s >= 30 {
                        sent += 1;
                    }
                }
                Err(Refusal::Throttled { service, percent }) => {
                    assert_eq!(service, "api");
                    assert!(percent > 0.0 && percent < 100.0, "{percent}");
                    if s >= 30 {
                        throttled += 1;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    // About K = 2 times what it accepts, not nothing and not everything.
    let per_second = f64::from(sent) / 30.0;
    assert!((35.0..=45.0).contains(&per_second), "{per_second} a second");
    assert_eq!(sent + throttled, 3000);
    // An upstream failing 70 % of calls with errors, answered in time, is
    // not overloaded: nothing is throttled.
    let mut c = Client::new(ClientConfig::new("api"));
    c.set_endpoints(plain(3));
    for s in 0..30 {
        for k in 0..100 {
            let p = c.pick(second(s), None).expect("never throttled");
            let outcome = if k % 10 < 7 {
                Outcome::Failed
            } else {
                Outcome::Ok
            };
            c.complete(p, second(s), 5.0, outcome);
        }
    }
}

/// Picks at `now` and completes with `outcome_of(id)`; returns the id.
fn call(c: &mut Client, now: Timestamp, outcome_of: impl Fn(&str) -> Outcome) -> String {
    let p = c.pick(now, None).expect("a pick");
    let id = c.endpoint(p).id.clone();
    c.complete(p, now, 5.0, outcome_of(&id));
    id
}

#[test]
fn a_host_that_keeps_refusing_leaves_the_rotation_at_once_and_returns_on_probation() {
    let mut c = client(Strategy::RoundRobin, plain(6));
    let bad = |id: &str| {
        if id == "api-4" {
            Outcome::Rejected
        } else {
            Outcome::Ok
        }
    };
    let at = |ms: u64| T0.plus_millis(ms);
    let picked = |c: &mut Client, now: Timestamp, n: usize| {
        (0..n).filter(|_| call(c, now, bad) == "api-4").count()
    };
    // Five refusals in a row and it is out: no sixth call.
    assert_eq!(picked(&mut c, T0, 600), 5);
    // Out for 0.5–1 s (1 s less up to half, seeded); back after it.
    assert_eq!(picked(&mut c, at(499), 60), 0);
    assert_eq!(picked(&mut c, at(1_000), 6), 1, "back, on probation");
    // On probation one refusal is enough, and it is out for 1–2 s.
    assert_eq!(picked(&mut c, at(1_000), 600), 0);
    assert_eq!(picked(&mut c, at(1_999), 60), 0);
    assert_eq!(picked(&mut c, at(3_000), 6), 1);
    // Errors answered in time are not refusals: a host failing every call
    // with a 500 stays in (the router's success-rate test judges it).
    let mut c = client(Strategy::RoundRobin, plain(6));
    let failing = |id: &str| {
        if id == "api-4" {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    };
    let n = (0..600)
        .filter(|_| call(&mut c, T0, failing) == "api-4")
        .count();
    assert_eq!(n, 100);
}

#[test]
fn an_overload_everywhere_takes_no_host_out_and_only_one_of_two_bad_hosts_is_out() {
    // Every host refuses every other call: the service is overloaded, no
    // host is an outlier, and all keep their share.
    let mut c = client(Strategy::RoundRobin, plain(6));
    let mut k = 0;
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..6_000 {
        let p = c.pick(T0, None).expect("a pick");
        *counts.entry(c.endpoint(p).id.clone()).or_insert(0) += 1;
        k += 1;
        let outcome = if (k / 6) % 2 == 0 {
            Outcome::Rejected
        } else {
            Outcome::Ok
        };
        c.complete(p, T0, 5.0, outcome);
    }
    assert!(counts.values().all(|&n| n == 1_000), "{counts:?}");
    // Two hosts of six refuse everything: each is an outlier, but at most
    // 10 % (at least one) are out at once, so the other keeps its share.
    let mut c = client(Strategy::RoundRobin, plain(6));
    let two_bad = |id: &str| {
        if id == "api-1" || id == "api-4" {
            Outcome::Rejected
        } else {
            Outcome::Ok
        }
    };
    let ids: Vec<String> = (0..500).map(|_| call(&mut c, T0, two_bad)).collect();
    let n = |id: &str| ids.iter().filter(|x| *x == id).count();
    assert_eq!(n("api-1").min(n("api-4")), 5, "the first out after five");
    let other = n("api-1").max(n("api-4"));
    assert!(
        (95..=100).contains(&other),
        "the other stays: about 500 / 5, got {other}"
    );
}

#[test]
fn latency_ewma_does_not_prefer_a_host_that_refuses_fast_and_retries_a_slow_one_later() {
    let mut config = ClientConfig::new("api");
    config.strategy = Strategy::LatencyEwma;
    config.throttle = None;
    config.accrual = None;
    // Unmeasured endpoints look fast, so both are tried.
    config.default_rtt_ms = 1.0;
    let mut c = Client::new(config);
    c.set_endpoints(plain(2));
    // api-0 refuses within 1 ms; api-1 answers in 20 ms.
    for _ in 0..10 {
        let p = c.pick(T0, None).unwrap();
        let refusing = c.endpoint(p).id == "api-0";
        let (ms, outcome) = if refusing {
            (1.0, Outcome::Rejected)
        } else {
            (20.0, Outcome::Ok)
        };
        c.complete(p, T0, ms, outcome);
    }
    let zero = (0..1_000)
        .filter(|_| {
            let p = c.pick(T0, None).unwrap();
            let id = c.endpoint(p).id.clone();
            c.complete(p, T0, 20.0, Outcome::Ok);
            id == "api-0"
        })
        .count();
    assert_eq!(zero, 0, "a refusal costs as much as a 1 s call, not 1 ms");
    // api-0 lost every comparison, so it was not measured again; its
    // estimate fades (τ = 10 s) until it is tried again, about 40 s on.
    let mut first_retry = None;
    for k in 1..=900u64 {
        let now = T0.plus_millis(k * 100);
        let p = c.pick(now, None).unwrap();
        if c.endpoint(p).id == "api-0" && first_retry.is_none() {
            first_retry = Some(k * 100);
        }
        c.complete(p, now, 20.0, Outcome::Ok);
    }
    let at = first_retry.expect("tried again");
    assert!((30_000..=50_000).contains(&at), "tried again after {at} ms");
}
