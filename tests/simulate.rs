//! `faultline simulate` end to end: the report files, their ground truth,
//! determinism across runs, variation across seeds, and the kept log.

use std::path::Path;
use std::process::Command;

use faultline::config::Config;
use faultline::log::{read_all, Durability, SledLog};
use faultline::simulate::arms::{run_arms, Arm, Prepared};
use faultline::simulate::{render, report, Scenario};

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("simulations")
        .join(format!("{name}.yaml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Every report file of `name` under `seed`, shortened to `minutes`.
fn files(name: &str, seed: Option<u64>, minutes: u64) -> Vec<(&'static str, String)> {
    let mut s = scenario(name);
    s.duration = faultline::simulate::Span::secs(minutes * 60);
    let description = s.description.clone();
    let p = Prepared::new(s, seed);
    let runs = run_arms(&p, &Arm::ALL, &Config::defaults(), None, &|_| {}).unwrap();
    render::files(&report::build(&p, &runs), &description).unwrap()
}

#[test]
fn the_same_scenario_and_seed_give_a_byte_identical_report_and_other_seeds_vary() {
    let a = files("canary-bad-deploy", None, 15);
    let b = files("canary-bad-deploy", None, 15);
    assert_eq!(a.len(), 4, "report.json, report.md and two charts");
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between two runs of the same seed");
    }
    let c = files("canary-bad-deploy", Some(8), 15);
    let json = |f: &[(&str, String)]| {
        f.iter()
            .find(|(n, _)| *n == "report.json")
            .unwrap()
            .1
            .clone()
    };
    assert_ne!(json(&a), json(&c), "another seed, other traffic");
}

#[test]
fn the_cli_writes_the_report_with_every_faults_ground_truth_and_keeps_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let data = dir.path().join("log");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/region-outage.yaml");
    let run = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("simulate")
        .arg(&file)
        .args(["--seed", "3", "--out"])
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stdout.contains("success ratio") && stdout.contains("faultline"),
        "{stdout}"
    );
    assert!(stdout.contains("region_outage region/eu"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["seed"], 3);
    assert_eq!(json["faults"][0]["root_cause"], "region/eu");
    for arm in ["none", "peers", "faultline"] {
        let a = &json["arms"][arm];
        for key in [
            "success_ratio",
            "failed_requests",
            "slo_violation_minutes",
            "revenue_lost",
        ] {
            assert!(a[key].is_number(), "arms.{arm}.{key} in {a}");
        }
        let f = &a["faults"][0];
        assert!(
            f.get("detect_s").is_some() && f.get("mitigate_s").is_some(),
            "{f}"
        );
    }
    assert!(
        json["arms"]["none"]["faults"][0]["detect_s"].is_null(),
        "no protection, no detection"
    );
    assert!(json["arms"]["faultline"]["faults"][0]["mitigate_s"].is_number());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("![error-rate.svg](error-rate.svg)"), "{md}");
    for chart in ["error-rate.svg", "latency-p99.svg"] {
        let svg = std::fs::read_to_string(out.join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("faultline"),
            "{chart}"
        );
    }

    // The kept log replays to the same decisions.
    let log = SledLog::open(&data, Durability::Buffered).unwrap();
    let records = read_all(&log, 1).unwrap();
    assert!(records.len() > 100, "{} records", records.len());
    let mut engine = faultline::process::engine(&Config::defaults());
    let decisions = engine.verify_replay(&records).unwrap();
    assert!(decisions > 0);
    drop(log);

    // A second run refuses to append to that log.
    let again = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("simulate")
        .arg(&file)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a log"));
}

#[test]
fn a_bad_scenario_or_arm_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nduration: 10m\nregions: [eu]\nservices:\n  a: {instances: {eu: 1}}\ntraffic:\n  a: {rps: 10}\nfaults:\n  - {kind: instance_crash, service: b, at: 1m}\n",
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["simulate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("faults[0].service") && err.contains("'b' is not a service"),
        "{err}"
    );
    let run = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["simulate", "x.yaml", "--arms", "none,hystrix"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("\"hystrix\" is not an arm"));
}

#[test]
fn arms_share_their_luck_so_once_the_fault_is_over_they_fail_the_same_requests() {
    // Common random numbers: request n draws from its own stream in every
    // arm, so the arms' failure counts differ only where their policies
    // changed a request's own path. Noisy-neighbor's fault ends at minute
    // 23; after minute 25 every arm is back to the same world.
    let p = Prepared::new(scenario("noisy-neighbor"), None);
    let runs = run_arms(&p, &Arm::ALL, &Config::defaults(), None, &|_| {}).unwrap();
    let failed = |r: &faultline::simulate::arms::ArmRun, b: usize| -> u64 {
        r.tally.users.iter().map(|u| u[b].failed).sum()
    };
    let from = runs[0].tally.bucket(25.0 * 60_000.0);
    let tail: Vec<Vec<u64>> = runs
        .iter()
        .map(|r| (from..r.tally.len()).map(|b| failed(r, b)).collect())
        .collect();
    assert!(
        tail[0].iter().sum::<u64>() > 50,
        "the tail has random failures to share"
    );
    for (r, t) in runs.iter().zip(&tail).skip(1) {
        assert_eq!(
            t,
            &tail[0],
            "{} fails other requests than none",
            r.arm.as_str()
        );
    }
    // During the fault the policies do differ.
    let during = |r: &faultline::simulate::arms::ArmRun| -> u64 {
        (runs[0].tally.bucket(8.0 * 60_000.0)..from)
            .map(|b| failed(r, b))
            .sum()
    };
    assert!(
        during(&runs[1]) < during(&runs[0]),
        "peers eject the slow host"
    );
}
