//! `faultline` as a user runs it: the real binary, real files.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use faultline::events::Codec;
use faultline::log::{read_all, Durability, EventLog, SledLog};

fn faultline(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // A run that stops before reading its input (a bad config) may close
    // stdin first: that is the behaviour under test, not a failure.
    if let Err(e) = pipe.write_all(stdin.unwrap_or_default()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn demo() -> (String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    (
        root.join("deploy/demo/incident.jsonl")
            .display()
            .to_string(),
        root.join("deploy/faultline.toml").display().to_string(),
    )
}

const GOOD: &str = r#"{"specversion":"1.0","id":"e1","source":"t","type":"faultline.request","subject":"pay","time":"2026-01-01T00:00:00Z","data":{"status":500}}"#;

#[test]
fn bad_lines_are_reported_with_their_number_and_skipped() {
    let input = format!(
        "{GOOD}\nnot json\n\n{}\n{}\n",
        GOOD.replace("\"pay\"", "\"p.ay\""),
        GOOD.replace("e1", "e2")
    );
    let out = faultline(&["process", "--input", "-"], Some(input.as_bytes()));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-:line 2: rejected (malformed)"), "{err}");
    assert!(
        err.contains("-:line 4: rejected (invalid): subject = \"p.ay\""),
        "{err}"
    );
    assert!(
        err.contains("read 4, accepted 2, rejected 2, decisions 0"),
        "{err}"
    );
}

#[test]
fn msgpack_input_gives_the_same_decisions_as_json() {
    let (input, config) = demo();
    let json = faultline(&["process", "--input", &input, "--config", &config], None);
    assert!(json.status.success());
    assert!(!json.stdout.is_empty());
    let mut packed = Vec::new();
    for line in std::fs::read_to_string(&input).unwrap().lines() {
        packed.extend(Codec::MsgPack.encode(&Codec::Json.decode(line.as_bytes()).unwrap()));
    }
    // One record that is msgpack but not an event: reported and skipped.
    packed.extend(rmp_serde::to_vec_named(&serde_json::json!({"hello": 1})).unwrap());
    let mp = faultline(
        &[
            "process",
            "--input",
            "-",
            "--input-format",
            "msgpack",
            "--config",
            &config,
        ],
        Some(&packed),
    );
    assert!(
        mp.status.success(),
        "{}",
        String::from_utf8_lossy(&mp.stderr)
    );
    assert_eq!(mp.stdout, json.stdout);
    assert!(String::from_utf8_lossy(&mp.stderr).contains("-:record 3845: rejected (malformed)"));
}

#[test]
fn output_is_byte_identical_across_runs_and_files() {
    let (input, config) = demo();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    for path in [&a, &b] {
        let out = faultline(
            &[
                "process",
                "--input",
                &input,
                "--config",
                &config,
                "--output",
                path.to_str().unwrap(),
            ],
            None,
        );
        assert!(out.status.success());
    }
    let a = std::fs::read(a).unwrap();
    assert!(a.len() > 1000);
    assert_eq!(a, std::fs::read(b).unwrap());
}

#[test]
fn a_data_directory_keeps_the_log_and_continues_it() {
    let (input, config) = demo();
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let whole = faultline(&["process", "--input", &input, "--config", &config], None);
    let one = faultline(
        &[
            "process", "--input", "-", "--config", &config, "--data", data,
        ],
        Some(first.join("\n").as_bytes()),
    );
    let two = faultline(
        &[
            "process", "--input", "-", "--config", &config, "--data", data,
        ],
        Some(second.join("\n").as_bytes()),
    );
    assert!(
        two.status.success(),
        "{}",
        String::from_utf8_lossy(&two.stderr)
    );
    assert!(String::from_utf8_lossy(&two.stderr).contains("continuing a log of"));
    let mut joined = one.stdout.clone();
    joined.extend(&two.stdout);
    assert_eq!(joined, whole.stdout, "split run must equal the whole run");
    let log = SledLog::open(Path::new(data), Durability::Buffered).unwrap();
    let records = read_all(&log, 1).unwrap();
    assert_eq!(records.len() as u64, log.last_seq());
    assert!(records.len() > lines.len());
}

#[test]
fn a_bad_config_stops_before_reading_input_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[breaker.default]\nfailure_rate_threshold = 120.0\npermitted_number_of_calls_in_half_open_state = 0\n").unwrap();
    let out = faultline(
        &[
            "process",
            "--input",
            "-",
            "--config",
            path.to_str().unwrap(),
        ],
        Some(GOOD.as_bytes()),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has 2 problem(s)"), "{err}");
    assert!(
        err.contains("breaker.default.failure_rate_threshold: 120 is not a percentage in (0, 100]"),
        "{err}"
    );
    assert!(
        err.contains(
            "breaker.default.permitted_number_of_calls_in_half_open_state: 0 must be at least 1"
        ),
        "{err}"
    );
}

#[test]
fn schema_prints_and_rejects_unknown_types() {
    let out = faultline(&["schema", "--type", "faultline.window"], None);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "faultline.window");
    let out = faultline(&["schema", "--type", "faultline.nope"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown type \"faultline.nope\""));
}

#[test]
fn detect_scores_every_row_of_a_csv_and_reports_unreadable_ones() {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..400 {
        let v = if i == 300 {
            "500".to_owned()
        } else {
            format!("{}", 100 + i % 5)
        };
        csv.push_str(&format!("2024-05-01 {:02}:{:02}:00,{v}\n", i / 60, i % 60));
    }
    csv.push_str("2024-05-01 07:00:00,n/a\n");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("metric.csv");
    let output = dir.path().join("scored.csv");
    std::fs::write(&input, &csv).unwrap();
    let out = faultline(
        &[
            "detect",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let scored = std::fs::read_to_string(&output).unwrap();
    let rows: Vec<&str> = scored.lines().collect();
    assert_eq!(rows.len(), 402);
    assert_eq!(rows[0], "timestamp,value,anomaly_score");
    assert!(rows[301].starts_with("2024-05-01 05:00:00,500,"));
    let spike: f64 = rows[301].rsplit(',').next().unwrap().parse().unwrap();
    assert!(spike >= 0.5, "{}", rows[301]);
    assert!(rows[401].ends_with(",n/a,0.000000"));
    assert!(
        stderr.contains("metric.csv:402: value \"n/a\" is not a finite number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("401 rows, 400 scored, 1 unreadable"),
        "{stderr}"
    );

    let missing = faultline(&["detect", "--input", "-"], Some(b"time,v\n1,2\n"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("`timestamp` and a `value` column"));
}

#[test]
fn run_reports_every_bad_setting_at_once_and_does_not_start() {
    let out = faultline(
        &[
            "run",
            "--set",
            "replicas=2",
            "--set",
            "prefix=a.b",
            "--http",
            "nowhere",
            "--set",
            "snapshot_every=often",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "node.replicas: 2 must be 1 or 3",
        "node.prefix: \"a.b\" must be one NATS token",
        "node.http: \"nowhere\" is not an address",
        "\"often\" from flag --set snapshot_every is not a whole number",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
}

#[test]
fn run_refuses_a_nats_server_it_cannot_reach() {
    let out = faultline(
        &[
            "run",
            "--nats",
            "nats://127.0.0.1:1",
            "--http",
            "127.0.0.1:0",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connecting to nats://127.0.0.1:1"), "{err}");
}
