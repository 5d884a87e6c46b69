//! A fixed observation stream for node tests, and the checks every node test
//! makes on the log a node wrote.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};

use faultline::config::Config;
use faultline::events::{Event, Timestamp};
use faultline::log::Seq;
use faultline::process::{self, Processor};

/// Policy used by node tests: agents whose input-caused decisions do not
/// depend on where other decisions land in a live log, and an open wait
/// longer than any stream here, so that no timer comes due within one.
pub const POLICY: &str = "agents = [\"predictor\", \"breaker\"]\n[breaker.default]\nsliding_window_type = \"count\"\nwait_duration_in_open_state_ms = 600000\n";

pub fn config() -> Config {
    Config::from_toml(POLICY, "test policy").unwrap()
}

/// `n` events 100 ms apart from `base`: requests for three services, and
/// every tenth an operator command alternately forcing `audit`'s breaker open
/// and resetting it, so decisions are made all along the stream (a crash
/// between writing one and the next snapshot is likely). `pay` fails every
/// call in the second half, so its breaker opens before the end; no timer
/// comes due within the stream (no timer-sensitive gaps).
pub fn events(base: Timestamp, n: usize) -> Vec<String> {
    let services = ["pay", "cart", "search"];
    (0..n)
        .map(|i| {
            let t = Timestamp::from_nanos(base.nanos() + i as i64 * 100_000_000);
            if i % 10 == 5 {
                let action = if i % 20 == 5 { "force_open" } else { "reset" };
                return format!(
                    r#"{{"specversion":"1.0","id":"ev-{i}","source":"test","type":"faultline.command","subject":"audit","time":"{t}","data":{{"action":"{action}","by":"test"}}}}"#
                );
            }
            let svc = services[i % 3];
            let failing = svc == "pay" && i >= n / 2;
            let status = if failing || (i * 7919) % 23 == 0 { 500 } else { 200 };
            format!(
                r#"{{"specversion":"1.0","id":"ev-{i}","source":"test","type":"faultline.request","subject":"{svc}","time":"{t}","data":{{"status":{status},"latency_ms":{}}}}}"#,
                20 + (i * 37) % 50
            )
        })
        .collect()
}

/// Event times safely ahead of the wall clock, so no deadline passes during a
/// test (nodes under test run with a raised `max_ahead_s`).
pub fn future_base() -> Timestamp {
    let now = faultline::node::wall_now();
    Timestamp::from_nanos((now.nanos() / 1_000_000_000 + 1800) * 1_000_000_000)
}

/// What `faultline process` decides for `lines`.
pub fn offline(lines: &[String]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut p = Processor::new(process::engine(&config()), None, &mut out);
    let input = lines.join("\n");
    process::json_lines(&mut p, input.as_bytes(), |n, r| panic!("line {n}: {r}")).unwrap();
    p.finish().unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Decisions caused directly by inputs, per input id: (source, subject, data JSON).
pub fn per_input(decisions: &[Event], inputs: &HashSet<String>) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in decisions {
        let cause = d.causeid.clone().unwrap_or_default();
        if inputs.contains(&cause) {
            let mut v = serde_json::to_value(d).unwrap();
            for derived in ["id", "causeseq", "causeid"] {
                v.as_object_mut().unwrap().remove(derived);
            }
            m.entry(cause).or_default().push(v.to_string());
        }
    }
    m
}

/// The checks of the crash tests on a node's final log:
/// 1. replaying it through fresh agents reproduces its decisions exactly
///    (each once, none missing, byte for byte);
/// 2. every input is in it exactly once;
/// 3. the decisions per input equal `faultline process` on the same input.
pub fn check_log(records: &[(Seq, Event)], lines: &[String]) {
    let ids = check_replay(records, lines);
    per_input_as_offline(records, lines, &ids);
}

/// Checks 1 and 2 of [`check_log`] (for streams long enough that timers
/// fire, where live and offline attribute timer decisions differently);
/// returns the input ids.
pub fn check_replay(records: &[(Seq, Event)], lines: &[String]) -> HashSet<String> {
    let matched = process::engine(&config())
        .verify_live(records)
        .unwrap_or_else(|problems| {
            panic!(
                "{} divergence(s), first: {}",
                problems.len(),
                problems
                    .iter()
                    .take(5)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    let inputs: Vec<&Event> = records
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.id.starts_with("ev-"))
        .collect();
    let ids: HashSet<String> = inputs.iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        inputs.len(),
        lines.len(),
        "every input once (had {} distinct)",
        ids.len()
    );
    assert_eq!(ids.len(), lines.len());
    assert!(matched > 0, "the log holds decisions");
    ids
}

/// Check 3 of [`check_log`].
fn per_input_as_offline(records: &[(Seq, Event)], lines: &[String], ids: &HashSet<String>) {
    let live: Vec<Event> = records
        .iter()
        .map(|(_, e)| e.clone())
        .filter(|e| e.event_type().is_decision())
        .collect();
    let expected = offline(lines);
    assert!(
        expected.iter().any(|d| d.source == "faultline/breaker"),
        "the stream must make the breaker decide something"
    );
    let (a, b) = (per_input(&live, ids), per_input(&expected, ids));
    assert_eq!(
        a.len(),
        b.len(),
        "inputs with decisions: live {a:#?}\nvs offline {b:#?}"
    );
    for (id, want) in &b {
        assert_eq!(a.get(id), Some(want), "decisions caused by {id}");
    }
}
