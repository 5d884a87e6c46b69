//! The log is the truth: (a) replaying it through fresh agents reproduces
//! every logged decision byte for byte; (b) a snapshot at any point plus the
//! tail gives the same state and decisions as a replay from the start.

#[path = "support/gen.rs"]
mod gen;

use faultline::config::Config;
use faultline::engine::Engine;
use faultline::events::validate::validate_input;
use faultline::events::{Codec, Event, EventType};
use faultline::log::{EventLog, MemoryLog, Seq};
use faultline::process;
use proptest::prelude::*;

const POLICY: &str = r#"
[breaker]
scopes = ["service", "edge", "instance", "system"]
[breaker.default]
sliding_window_size = 6
minimum_number_of_calls = 4
wait_duration_in_open_state_ms = 2000
wait_duration_multiplier = 2.0
max_wait_duration_in_open_state_ms = 10000
permitted_number_of_calls_in_half_open_state = 3
max_wait_duration_in_half_open_state_ms = 5000
slow_call_duration_threshold_ms = 500
consecutive_failures_threshold = 5
[breaker.service.cart]
sliding_window_type = "time"
sliding_window_size = 5
adaptive = { warmup_samples = 2 }
[breaker.system]
minimum_services = 2
"#;

fn config() -> Config {
    Config::from_toml(POLICY, "replay test").unwrap()
}

/// Runs inputs through the engine into a memory log, as `process` does.
fn record(inputs: Vec<Event>) -> MemoryLog {
    record_with(&config(), inputs)
}

/// [`record`] under another policy.
fn record_with(config: &Config, inputs: Vec<Event>) -> MemoryLog {
    let mut engine = process::engine(config);
    let mut log = MemoryLog::new();
    let mut batch = Vec::new();
    for e in inputs {
        batch.clear();
        engine.ingest(e, &mut batch);
        log.append(&batch).unwrap();
    }
    log
}

fn numbered(log: &MemoryLog) -> Vec<(Seq, Event)> {
    log.records()
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, e)| (i as Seq + 1, e))
        .collect()
}

fn decisions(log: &MemoryLog) -> usize {
    log.records()
        .iter()
        .filter(|e| e.event_type().is_decision())
        .count()
}

fn fresh() -> Engine {
    process::engine(&config())
}

#[test]
fn a_known_incident_replays_exactly() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let inputs =
        proptest::strategy::ValueTree::current(&gen::stream(400).new_tree(&mut runner).unwrap());
    let log = record(inputs);
    let n = decisions(&log);
    assert!(
        n > 5,
        "the generated incident should produce decisions, got {n}"
    );
    assert!(log
        .records()
        .iter()
        .any(|e| e.event_type() == EventType::Tick && e.source == "faultline/engine"));
    assert_eq!(fresh().verify_replay(&numbered(&log)), Ok(n));
}

#[test]
fn a_tampered_log_is_detected() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let inputs =
        proptest::strategy::ValueTree::current(&gen::stream(400).new_tree(&mut runner).unwrap());
    let log = record(inputs);
    let mut records = numbered(&log);
    let i = records
        .iter()
        .position(|(_, e)| e.event_type().is_decision())
        .unwrap();
    records[i].1.time = records[i].1.time.plus_millis(1);
    assert!(fresh().verify_replay(&records).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn replay_reproduces_every_decision(inputs in gen::stream(300)) {
        let log = record(inputs);
        prop_assert_eq!(fresh().verify_replay(&numbered(&log)), Ok(decisions(&log)));
    }

    #[test]
    fn snapshot_plus_tail_equals_full_replay(inputs in gen::stream(300), cut in 0.0..=1.0f64) {
        let log = record(inputs);
        let records = numbered(&log);
        let k = ((records.len() as f64) * cut) as usize;

        let mut full = fresh();
        full.verify_replay(&records).unwrap();

        let mut head = fresh();
        head.apply_log(&records[..k]);
        let snap = head.snapshot();
        prop_assert_eq!(snap.covers, k as Seq);

        let mut restored = fresh();
        restored.restore(&snap).unwrap();
        restored.verify_replay(&records[k..]).unwrap();
        prop_assert_eq!(restored.snapshot().bytes, full.snapshot().bytes);
        prop_assert_eq!(restored.next_deadline(), full.next_deadline());
    }
}

#[test]
fn a_snapshot_from_another_policy_is_refused() {
    let snap = fresh().snapshot();
    let other =
        Config::from_toml("[breaker.default]\nminimum_number_of_calls = 7\n", "other").unwrap();
    let err = process::engine(&other).restore(&snap).unwrap_err();
    assert!(err.to_string().contains("replay the log instead"), "{err}");
}

/// Every behaviour scenario's log (rollbacks with acknowledgements, router
/// splits, breakers, predictions) replays exactly, and a snapshot taken at
/// any record plus the tail gives the state of the full replay.
#[test]
fn every_scenario_log_replays_and_restores_at_any_cut() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut checked = 0;
    for agent in ["rollback", "router", "breaker", "guard", "hub"] {
        let mut dirs: Vec<_> = std::fs::read_dir(root.join(agent))
            .unwrap()
            .map(|d| d.unwrap().path())
            .filter(|p| p.join("expected.jsonl").exists())
            .collect();
        dirs.sort();
        for dir in dirs {
            let config = Config::load(&dir.join("config.toml")).unwrap();
            let inputs: Vec<Event> = std::fs::read_to_string(dir.join("input.jsonl"))
                .unwrap()
                .lines()
                // Some scenarios feed bad input on purpose: it never reaches the log.
                .filter_map(|l| Codec::Json.decode(l.as_bytes()).ok())
                .filter(|e| validate_input(e).is_ok())
                .collect();
            let log = record_with(&config, inputs);
            let records = numbered(&log);
            let mut full = process::engine(&config);
            assert_eq!(
                full.verify_replay(&records),
                Ok(decisions(&log)),
                "{}",
                dir.display()
            );
            for k in (0..records.len()).step_by(5) {
                let mut head = process::engine(&config);
                head.apply_log(&records[..k]);
                let mut restored = process::engine(&config);
                restored.restore(&head.snapshot()).unwrap();
                restored
                    .verify_replay(&records[k..])
                    .unwrap_or_else(|e| panic!("{} cut at {k}: {e:?}", dir.display()));
                assert_eq!(
                    restored.snapshot().bytes,
                    full.snapshot().bytes,
                    "{} cut at {k}",
                    dir.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} scenarios found");
}
