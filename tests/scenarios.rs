//! Behaviour scenarios as data, run by one harness.
//!
//! Each folder under `tests/scenarios/<agent>/` is one behaviour:
//!
//! * `config.toml`: the policy (its first comment line says what is shown);
//! * `input.jsonl`: observations, one CloudEvent per line;
//! * `expected.jsonl`: the decisions, one per line, in order. Each line is a
//!   JSON object that must be a *subset* of the decision produced at that
//!   position (nested objects compared key by key; arrays must have the same
//!   length and each element is compared the same way), and there must be
//!   exactly as many decisions as lines.
//!
//! A folder with `expected_errors.txt` instead is a configuration rejection:
//! loading `config.toml` must fail, and every non-empty line of the file must
//! appear in the error report.
//!
//! Every scenario also runs twice to prove the output is byte-identical, and
//! through the real `faultline process` binary to prove the CLI agrees.

use std::path::{Path, PathBuf};
use std::process::Command;

use faultline::config::Config;
use faultline::process::{self, Processor};
use serde_json::Value;

fn scenario_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut dirs = Vec::new();
    for agent in std::fs::read_dir(&root).unwrap() {
        for s in std::fs::read_dir(agent.unwrap().path()).unwrap() {
            let p = s.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    dirs
}

fn run(dir: &Path, config: &Config) -> (Vec<u8>, u64) {
    let input = std::fs::read(dir.join("input.jsonl")).unwrap();
    let mut out = Vec::new();
    let mut p = Processor::new(process::engine(config), None, &mut out);
    process::json_lines(&mut p, &input[..], |_, _| {}).unwrap();
    let (_, stats) = p.finish().unwrap();
    (out, stats.rejected)
}

/// Whether `want` is contained in `got`.
fn subset(want: &Value, got: &Value, path: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().try_for_each(|(k, v)| match g.get(k) {
            Some(gv) => subset(v, gv, &format!("{path}.{k}")),
            None => Err(format!("{path}.{k}: missing")),
        }),
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .try_for_each(|(i, (w, g))| subset(w, g, &format!("{path}[{i}]"))),
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
        _ if want == got => Ok(()),
        _ => Err(format!("{path}: expected {want}, got {got}")),
    }
}

fn check(dir: &Path) -> Result<(), String> {
    let config_path = dir.join("config.toml");
    let errors_path = dir.join("expected_errors.txt");
    if errors_path.exists() {
        let err = match Config::load(&config_path) {
            Ok(_) => return Err("config was accepted; expected a rejection".into()),
            Err(e) => e.to_string(),
        };
        for line in std::fs::read_to_string(&errors_path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            if !err.contains(line.trim()) {
                return Err(format!("error report lacks {line:?}; it says:\n{err}"));
            }
        }
        return Ok(());
    }
    let config = Config::load(&config_path).map_err(|e| e.to_string())?;
    let (out, _) = run(dir, &config);
    let (again, _) = run(dir, &config);
    if out != again {
        return Err("two runs gave different bytes".into());
    }
    let got: Vec<Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let want: Vec<Value> = std::fs::read_to_string(dir.join("expected.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("expected.jsonl: {e}: {l}")))
        .collect::<Result<_, _>>()?;
    let show = |v: &[Value]| {
        v.iter()
            .map(|d| format!("  {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if got.len() != want.len() {
        return Err(format!(
            "{} decisions, expected {}; got:\n{}",
            got.len(),
            want.len(),
            show(&got)
        ));
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        subset(w, g, "").map_err(|e| format!("decision {}: {e}\n got: {g}", i + 1))?;
    }
    Ok(())
}

#[test]
fn every_scenario_behaves_as_written() {
    let dirs = scenario_dirs();
    assert!(dirs.len() >= 30, "only {} scenarios", dirs.len());
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| check(d).err().map(|e| format!("{}: {e}", d.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_cli_agrees_with_the_library_on_every_scenario() {
    let bin = env!("CARGO_BIN_EXE_faultline");
    for dir in scenario_dirs()
        .iter()
        .filter(|d| d.join("input.jsonl").exists())
    {
        let config = Config::load(&dir.join("config.toml")).unwrap();
        let (expected, rejected) = run(dir, &config);
        let out = Command::new(bin)
            .args(["process", "--input"])
            .arg(dir.join("input.jsonl"))
            .arg("--config")
            .arg(dir.join("config.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, expected, "{}", dir.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("rejected {rejected},")),
            "{}: {stderr}",
            dir.display()
        );
    }
}
