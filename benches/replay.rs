//! Replay speed on a sled log, beside what it is measured against, in one run:
//!
//! 1. **log**: N observations of the `stress` load profile (20 services,
//!    a fault ramping in and out, and an operator command every second)
//!    written as a msgpack stream, then
//!    `faultline process --data` over it: the sled log to replay (inputs,
//!    decisions and ticks). Its record count is what every rate below is
//!    divided by;
//! 2. **read + decode**: every record of that log read from sled in
//!    batches and decoded from msgpack, nothing else (the ceiling);
//! 3. **process**: `faultline process` over the same msgpack input with the
//!    log in memory, the same agents deriving the same decisions;
//! 4. **replay**: `faultline replay --data` over the log with the fidelity
//!    check (every agent re-run, every decision compared) and the report
//!    (timeline, signals, incidents) written as JSON;
//! 5. **replay --no-check**: the report alone, to show what the check costs.
//!
//! Steps 2 to 5 alternate for several rounds and the medians are compared:
//! on a shared two-core machine one run differs from the next by ±10 %.
//! Every command runs as the real binary, as a user would run it.
//!
//! `cargo bench --bench replay` (N = 1 000 000 observations;
//! `FAULTLINE_BENCH_EVENTS` to change it; `FAULTLINE_BENCH_ROUNDS` rounds,
//! default 3). The goal: replay with the check at ≥ 70 % of `process`.

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use faultline::events::{Codec, Event, Timestamp};
use faultline::log::{Durability, EventLog, SledLog};
use faultline::tools::load::{Generator, Profile};

/// Runs the binary with `args`; panics with its stderr if it fails.
fn faultline(args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("faultline starts");
    let s = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "faultline {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

/// Writes `n` observations of the stress profile as one msgpack stream.
fn inputs(path: &Path, n: usize) -> usize {
    let profile = Profile::named("stress").expect("a built-in profile");
    let per_second = profile.services * (profile.instances + profile.samples);
    let length = n.div_ceil(per_second) as u64;
    let start = Timestamp::parse("2026-03-01T12:00:00Z").expect("a valid time");
    let mut generator = Generator::new(profile, 1, start, length);
    let mut out = BufWriter::new(std::fs::File::create(path).expect("a temporary file"));
    let mut written = 0;
    for e in generator.topology() {
        out.write_all(&Codec::MsgPack.encode(&e)).unwrap();
        written += 1;
    }
    let services = generator.services().to_vec();
    for k in 0..length {
        for e in generator.second(k) {
            out.write_all(&Codec::MsgPack.encode(&e)).unwrap();
            written += 1;
        }
        // Beside the fault (which guard and hub act on), an operator forces
        // one breaker open or resets it every second, so that every log has
        // decisions all along it to re-derive and compare.
        let action = if k % 2 == 0 { "force_open" } else { "reset" };
        let e = command(
            k,
            &services[(k / 2) as usize % services.len()],
            action,
            start,
        );
        out.write_all(&Codec::MsgPack.encode(&e)).unwrap();
        written += 1;
    }
    out.flush().unwrap();
    written
}

fn command(k: u64, service: &str, action: &str, start: Timestamp) -> Event {
    let time = Timestamp::from_nanos(start.nanos() + (k as i64 + 1) * 1_000_000_000);
    serde_json::from_value(serde_json::json!({
        "specversion": "1.0", "id": format!("bench-command-{k}"), "source": "bench",
        "type": "faultline.command", "subject": service, "time": time,
        "data": {"action": action, "by": "bench"},
    }))
    .expect("a valid command")
}

/// Reads and decodes every record of the sled log in `dir`; returns (records, seconds).
fn read_decode(dir: &Path) -> (u64, f64) {
    let t = Instant::now();
    let log = SledLog::open(dir, Durability::Buffered).expect("the log opens");
    let mut next = 1;
    let mut n = 0u64;
    loop {
        let batch = log.read_raw_from(next, 4096).expect("the log reads");
        let Some((last, _)) = batch.last() else { break };
        next = last + 1;
        for (_, raw) in &batch {
            std::hint::black_box(Codec::MsgPack.decode(raw).expect("records decode"));
            n += 1;
        }
    }
    assert_eq!(n, log.last_seq(), "every record read");
    (n, t.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it, as a quick smoke run of the same code.
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("FAULTLINE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 5_000 });
    let rounds: usize = std::env::var("FAULTLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 3 } else { 1 })
        .max(1);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let input = tmp.path().join("inputs.msgpack");
    let data = tmp.path().join("log");
    let report = tmp.path().join("report.json");
    let (input_s, data_s, report_s) = (
        input.display().to_string(),
        data.display().to_string(),
        report.display().to_string(),
    );

    eprintln!("writing {n} observations of the stress profile …");
    let observations = inputs(&input, n);
    let process = [
        "process",
        "--input",
        &input_s,
        "--input-format",
        "msgpack",
        "--output",
        "/dev/null",
    ];
    let mut with_data = process.to_vec();
    with_data.extend(["--data", &data_s]);
    let build_s = faultline(&with_data);
    let records = SledLog::open(&data, Durability::Buffered)
        .expect("the log opens")
        .last_seq();
    eprintln!("log: {records} records from {observations} observations ({build_s:.1} s with sled)");

    let replay = [
        "replay", "--data", &data_s, "--format", "json", "--output", &report_s,
    ];
    let mut unchecked = replay.to_vec();
    unchecked.push("--no-check");
    let (mut raw, mut proc, mut rep, mut rep_nc) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let (read, s) = read_decode(&data);
        assert_eq!(read, records);
        raw.push(s);
        proc.push(faultline(&process));
        rep.push(faultline(&replay));
        let text = std::fs::read_to_string(&report).expect("the report");
        let r: serde_json::Value = serde_json::from_str(&text).expect("a JSON report");
        let f = &r["fidelity"];
        assert_eq!(f["reproduced"], f["logged"], "every decision reproduced");
        rep_nc.push(faultline(&unchecked));
        eprintln!(
            "round {round}: read+decode {:.2} s, process {:.2} s, replay {:.2} s, replay --no-check {:.2} s ({} decisions checked)",
            raw[round - 1],
            proc[round - 1],
            rep[round - 1],
            rep_nc[round - 1],
            f["logged"]
        );
    }
    let rate = |s: f64| records as f64 / s;
    let (raw, proc, rep, rep_nc) = (median(raw), median(proc), median(rep), median(rep_nc));
    println!("replay of a {records}-record sled log ({observations} observations), medians of {rounds} rounds:");
    println!(
        "  read + decode (ceiling)   {:>10.0} records/s  {raw:>7.2} s",
        rate(raw)
    );
    println!(
        "  process (in-memory log)   {:>10.0} records/s  {proc:>7.2} s",
        rate(proc)
    );
    println!(
        "  replay with check         {:>10.0} records/s  {rep:>7.2} s  {:>5.1} % of process (goal ≥ 70 %)",
        rate(rep),
        100.0 * proc / rep
    );
    println!(
        "  replay --no-check         {:>10.0} records/s  {rep_nc:>7.2} s  {:>5.1} % of process",
        rate(rep_nc),
        100.0 * proc / rep_nc
    );
}
