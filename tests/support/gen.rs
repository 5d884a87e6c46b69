//! Proptest strategies for valid events and event streams.

#![allow(dead_code)]

use faultline::events::decision::{BreakerDecision, BreakerState, BreakerTrigger};
use faultline::events::observation::*;
use faultline::events::{Data, Event, Timestamp};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

pub fn token() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_:-]{0,12}"
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{1,20}"
}

fn latency() -> impl Strategy<Value = f64> {
    prop_oneof![0.0..1e6f64, Just(0.0), (0u32..100_000).prop_map(f64::from)]
}

fn time() -> impl Strategy<Value = Timestamp> {
    (0i64..4_000_000_000_000_000_000).prop_map(Timestamp::from_nanos)
}

fn request() -> impl Strategy<Value = Request> {
    (
        option::of(token()),
        option::of(text()),
        option::of(text()),
        option::of(token()),
        option::of(text()),
        0u16..1000,
        option::of(prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::Failure),
            Just(Outcome::Ignored)
        ]),
        option::of(latency()),
    )
        .prop_map(
            |(instance, region, version, caller, route, status, outcome, latency_ms)| Request {
                instance,
                region,
                version,
                caller,
                route,
                status: Some(status),
                outcome,
                latency_ms,
            },
        )
}

fn window() -> impl Strategy<Value = Window> {
    (
        option::of(token()),
        option::of(token()),
        1u64..1_000_000,
        0u64..10_000,
        any::<u64>(),
        option::of(any::<u64>()),
        option::of((
            option::of(latency()),
            option::of(latency()),
            option::of(latency()),
        )),
    )
        .prop_map(
            |(instance, caller, interval_ms, requests, e, s, lat)| Window {
                instance,
                caller,
                interval_ms,
                requests,
                errors: if requests == 0 { 0 } else { e % (requests + 1) },
                slow: s.map(|s| if requests == 0 { 0 } else { s % (requests + 1) }),
                latency_ms: lat.map(|(p50, p99, max)| LatencySummary {
                    p50,
                    p99,
                    max,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
}

fn command() -> impl Strategy<Value = Command> {
    (
        prop_oneof![
            Just(CommandAction::ForceOpen),
            Just(CommandAction::ForceClose),
            Just(CommandAction::Disable),
            Just(CommandAction::MetricsOnly),
            Just(CommandAction::Reset),
            Just(CommandAction::Acknowledge)
        ],
        option::of(text()),
        option::of(text()),
    )
        .prop_map(|(action, by, reason)| Command {
            action,
            scope: Some(Scope::Service),
            target: None,
            by,
            reason,
        })
}

fn breaker() -> impl Strategy<Value = BreakerDecision> {
    (token(), option::of(0.0..=100.0f64), any::<u32>(), text()).prop_map(
        |(target, rate, calls, reason)| BreakerDecision {
            scope: Scope::Service,
            target,
            from: BreakerState::Closed,
            to: BreakerState::Open,
            trigger: BreakerTrigger::FailureRate,
            failure_rate: rate,
            slow_call_rate: rate,
            calls: u64::from(calls),
            failed: u64::from(calls / 2),
            slow: 0,
            threshold: 50.0,
            permitted_calls: None,
            open_until: Some(Timestamp::from_millis(i64::from(calls))),
            reason,
        },
    )
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        request().prop_map(Data::Request),
        window().prop_map(Data::Window),
        (
            option::of(token()),
            prop_oneof![Just(HealthStatus::Healthy), Just(HealthStatus::Offline)],
            option::of(text())
        )
            .prop_map(|(instance, status, detail)| Data::Health(Health {
                instance,
                region: None,
                status,
                detail
            })),
        (
            text(),
            option::of(text()),
            option::of(0u8..=100),
            option::of(any::<bool>()),
            option::of(vec(text(), 0..3))
        )
            .prop_map(
                |(version, previous_version, canary_weight, irreversible_migration, regions)| {
                    Data::Deploy(Deploy {
                        phase: DeployPhase::Started,
                        version,
                        previous_version,
                        strategy: Some(DeployStrategy::Canary),
                        canary_weight,
                        irreversible_migration,
                        regions,
                    })
                }
            ),
        (
            vec((token(), any::<bool>()), 0..3),
            option::of(0.0..1e6f64),
            option::of(0.5..=1.0f64)
        )
            .prop_map(|(deps, revenue, avail)| Data::Topology(Topology {
                dependencies: deps
                    .into_iter()
                    .map(|(callee, critical)| Dependency { callee, critical })
                    .collect(),
                instances: vec![],
                tier: Some(Tier::High),
                revenue_per_minute: revenue,
                slo: avail.map(|a| Slo {
                    availability: Some(a),
                    latency_p99_ms: None
                }),
            })),
        (text(), option::of(text())).prop_map(|(decision_id, detail)| Data::Actuation(Actuation {
            decision_id,
            status: ActuationStatus::Failed,
            detail
        })),
        command().prop_map(Data::Command),
        Just(Data::Tick(Tick {})),
    ]
}

/// Any valid observation.
pub fn observation() -> impl Strategy<Value = Event> {
    (
        token(),
        text(),
        token(),
        time(),
        option::of(Just("application/json".to_owned())),
        data(),
    )
        .prop_map(|(id, source, subject, time, datacontenttype, data)| Event {
            id,
            source,
            subject,
            time,
            datacontenttype,
            causeseq: None,
            causeid: None,
            data,
        })
}

/// Any valid breaker decision.
pub fn decision() -> impl Strategy<Value = Event> {
    (1u64..1_000_000, token(), time(), breaker()).prop_map(|(seq, subject, time, d)| Event {
        id: format!("breaker-{seq}-0"),
        source: "faultline/breaker".into(),
        subject,
        time,
        datacontenttype: None,
        causeseq: Some(seq),
        causeid: Some(format!("e{seq}")),
        data: Data::Breaker(d),
    })
}

/// A plausible stream: a few services, mostly advancing time, some late records,
/// requests, windows, commands and ticks.
pub fn stream(max: usize) -> impl Strategy<Value = Vec<Event>> {
    let step = (
        0u8..4,
        0usize..3,
        0i64..1500,
        any::<bool>(),
        0u8..100,
        0u16..6,
        0u64..20,
        0u8..20,
    );
    vec(step, 1..max).prop_map(|steps| {
        let services = ["pay", "cart", "search"];
        let callers = ["web", "mobile"];
        let mut t = 1_767_225_600_000i64;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (kind, svc, dt, late, roll, status, req, cmd))| {
                t += dt;
                let time = Timestamp::from_millis(if late && dt > 1000 { t - 4000 } else { t });
                let data = match (kind, roll) {
                    (0 | 1, _) => Data::Request(Request {
                        status: Some([200, 200, 503, 500, 0, 404][status as usize]),
                        latency_ms: Some(f64::from(roll) * 10.0),
                        caller: Some(callers[i % 2].to_owned()),
                        instance: Some(format!("i{}", i % 3)),
                        ..Default::default()
                    }),
                    (2, _) => Data::Window(Window {
                        interval_ms: 2000,
                        requests: req,
                        errors: req.min(u64::from(roll % 8)),
                        slow: Some(req / 3),
                        ..Default::default()
                    }),
                    (_, r) if r < 10 => Data::Command(Command {
                        action: [
                            CommandAction::ForceOpen,
                            CommandAction::ForceClose,
                            CommandAction::MetricsOnly,
                            CommandAction::Reset,
                            CommandAction::Disable,
                        ][usize::from(cmd % 5)],
                        scope: Some(Scope::Service),
                        target: None,
                        by: Some("ops".into()),
                        reason: None,
                    }),
                    _ => Data::Tick(Tick {}),
                };
                Event {
                    id: format!("e{i}"),
                    source: "gen".into(),
                    subject: services[svc].to_owned(),
                    time,
                    datacontenttype: None,
                    causeseq: None,
                    causeid: None,
                    data,
                }
            })
            .collect()
    })
}
