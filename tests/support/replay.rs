//! Running `faultline replay` as a user does, and counting what a range
//! should select from records read straight from the log.

#![allow(dead_code)]

use std::process::{Command, Output};

use faultline::events::Event;
use faultline::log::Seq;
use serde_json::Value;

/// Runs the binary with `args`.
pub fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `faultline` with `args`; returns stdout, panicking with stderr on failure.
pub fn ok(args: &[&str]) -> String {
    let out = faultline(args);
    assert!(
        out.status.success(),
        "faultline {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `faultline replay --format json ARGS`, parsed.
pub fn report(args: &[&str]) -> Value {
    let mut all = vec!["replay", "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&all)).unwrap()
}

/// (records `keep` selects, decisions among them).
pub fn expect(records: &[(Seq, Event)], keep: impl Fn(Seq, &Event) -> bool) -> (u64, u64) {
    let chosen: Vec<_> = records.iter().filter(|(s, e)| keep(*s, e)).collect();
    let decisions = chosen
        .iter()
        .filter(|(_, e)| e.event_type().is_decision())
        .count();
    (chosen.len() as u64, decisions as u64)
}
