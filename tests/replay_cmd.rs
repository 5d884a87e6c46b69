//! `faultline replay` and `faultline export` as a user runs them: logs kept
//! by `process` and `simulate`, ranges, what-if, bundles, the HTML report in
//! a real headless browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use faultline::events::Timestamp;
use faultline::log::{read_all, Durability, SledLog};
use support::replay::{expect, faultline, ok, report};

mod support {
    pub mod replay;
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn policy() -> String {
    root().join("deploy/faultline.toml").display().to_string()
}

/// The demo incident through `process --data` under the sample policy.
fn process_log(dir: &Path) -> String {
    let data = dir.join("log").display().to_string();
    let input = root()
        .join("deploy/demo/incident.jsonl")
        .display()
        .to_string();
    let out = faultline(&[
        "process",
        "--input",
        &input,
        "--config",
        &policy(),
        "--data",
        &data,
        "--output",
        "-",
    ]);
    assert!(out.status.success());
    let decisions = String::from_utf8(out.stdout).unwrap().lines().count();
    assert!(decisions >= 10, "the demo makes decisions: {decisions}");
    data
}

#[test]
fn a_process_log_reproduces_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let data = process_log(dir.path());
    let log = SledLog::open(Path::new(&data), Durability::Buffered).unwrap();
    let logged = read_all(&log, 1)
        .unwrap()
        .iter()
        .filter(|(_, e)| e.event_type().is_decision())
        .count() as u64;
    drop(log);
    let r = report(&["--data", &data]);
    assert_eq!(r["fidelity"]["logged"], logged);
    assert_eq!(r["fidelity"]["reproduced"], logged);
    assert_eq!(r["fidelity"]["new"], 0);
    assert_eq!(r["counts"]["decisions"], logged);
    // The timeline explains: the incident, the breaker's reason and numbers.
    assert_eq!(r["timeline"]["incidents"][0]["id"], "inc-1015");
    let entries = r["timeline"]["entries"].as_array().unwrap();
    let open = entries
        .iter()
        .find(|e| e["what_kind"] == "breaker")
        .expect("a breaker decision");
    assert!(
        open["reason"].as_str().unwrap().contains("failure rate"),
        "{open}"
    );
    assert!(open["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n[0] == "threshold"));
    assert!(entries
        .iter()
        .any(|e| e["kind"] == "signal" && e["service"] == "payments"));
    let text = ok(&["replay", "--data", &data]);
    assert!(
        text.contains(&format!("reproduced {logged} of {logged} decisions [ok]")),
        "{text}"
    );
}

#[test]
fn a_log_replayed_under_another_policy_reports_each_divergence_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = process_log(dir.path());
    // Claim the log was written under the built-in defaults.
    SledLog::open(Path::new(&data), Durability::Buffered)
        .unwrap()
        .set_policy("")
        .unwrap();
    let out = faultline(&["replay", "--data", &data]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[DIVERGED]"), "{text}");
    assert!(
        text.contains("not reproduced") && text.contains("logged:"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fidelity check failed: reproduced") && err.contains(" of 14 decisions"),
        "{err}"
    );
}

#[test]
fn a_simulator_log_reproduces_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sim").display().to_string();
    let out_dir = dir.path().join("report").display().to_string();
    let scenario = root()
        .join("simulations/instance-crash.yaml")
        .display()
        .to_string();
    ok(&[
        "simulate",
        &scenario,
        "--arms",
        "faultline",
        "--data",
        &data,
        "--out",
        &out_dir,
    ]);
    let r = report(&["--data", &data]);
    let logged = r["fidelity"]["logged"].as_u64().unwrap();
    assert!(logged > 0, "{}", r["fidelity"]);
    assert_eq!(r["fidelity"]["reproduced"], logged);
    assert_eq!(r["fidelity"]["new"], 0);
}

#[test]
fn ranges_by_sequence_and_by_time_select_exactly_the_right_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = process_log(dir.path());
    let log = SledLog::open(Path::new(&data), Durability::Buffered).unwrap();
    let records = read_all(&log, 1).unwrap();
    drop(log);

    let r = report(&["--data", &data, "--from", "1100", "--to", "2300"]);
    let (n, d) = expect(&records, |s, e| {
        (1100..=2300).contains(&e.causeseq.unwrap_or(s))
    });
    assert_eq!(r["counts"]["selected"], n);
    assert_eq!(r["counts"]["decisions"], d);
    assert_eq!(r["fidelity"]["logged"], d);
    assert_eq!(r["fidelity"]["reproduced"], d);
    assert!(d > 0 && d < 14, "the range cuts the incident: {d}");

    let (from, to) = ("2026-03-01T12:01:10Z", "2026-03-01T12:01:40Z");
    let (tf, tt) = (
        Timestamp::parse(from).unwrap(),
        Timestamp::parse(to).unwrap(),
    );
    let r = report(&["--data", &data, "--from", from, "--to", to]);
    let (n, d) = expect(&records, |_, e| e.time >= tf && e.time <= tt);
    assert_eq!(r["counts"]["selected"], n);
    assert_eq!(r["counts"]["decisions"], d);
    assert_eq!(r["fidelity"]["reproduced"], d);
    let times = &r["counts"]["times"];
    assert!(Timestamp::parse(times[0].as_str().unwrap()).unwrap() >= tf);
    assert!(Timestamp::parse(times[1].as_str().unwrap()).unwrap() <= tt);

    let r = report(&["--data", &data, "--service", "checkout"]);
    let (n, _) = expect(&records, |_, e| e.subject == "checkout");
    assert_eq!(r["counts"]["selected"], n);

    let out = faultline(&["replay", "--data", &data, "--from", "2300", "--to", "1100"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from 2300 is after --to 1100"));
    let out = faultline(&["replay", "--data", &data, "--from", "last tuesday"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from \"last tuesday\""));
}

#[test]
fn what_if_shows_what_another_policy_would_have_done() {
    let dir = tempfile::tempdir().unwrap();
    let data = process_log(dir.path());
    // The built-in defaults have no edge breaker threshold as low as the sample's.
    let other = dir.path().join("defaults.toml");
    std::fs::write(&other, "").unwrap();
    let r = report(&["--data", &data, "--config", other.to_str().unwrap()]);
    let w = &r["what_if"];
    assert_eq!(w["counts"]["same"], 2, "{w}");
    assert_eq!(w["counts"]["not_at_all"], 12, "{w}");
    let rows = w["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["change"] == "not_at_all"));
    assert!(rows
        .iter()
        .any(|r| r["what"] == "breaker edge checkout->payments -> open"));
    let incident = &w["incidents"][0];
    assert_eq!(incident["base"]["id"], "inc-1015");
    assert!(
        incident["other"].is_null(),
        "no incident under the defaults"
    );

    // The reverse: the sample policy acts where the defaults did not.
    let dir2 = tempfile::tempdir().unwrap();
    let data2 = dir2.path().join("log").display().to_string();
    let input = root()
        .join("deploy/demo/incident.jsonl")
        .display()
        .to_string();
    ok(&[
        "process",
        "--input",
        &input,
        "--data",
        &data2,
        "--output",
        "/dev/null",
    ]);
    let r = report(&["--data", &data2, "--config", &policy()]);
    assert_eq!(r["what_if"]["counts"]["new"], 12, "{}", r["what_if"]);
}

#[test]
fn an_incident_bundle_replays_to_the_same_report_as_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = process_log(dir.path());
    let bundle = dir.path().join("inc.bundle").display().to_string();
    ok(&[
        "export",
        "--data",
        &data,
        "--incident",
        "inc-1015",
        "--out",
        &bundle,
    ]);
    let mut original = report(&["--data", &data, "--incident", "inc-1015"]);
    let mut replayed = report(&["--bundle", &bundle]);
    assert!(replayed["source"]["description"]
        .as_str()
        .unwrap()
        .contains("bundle"));
    original.as_object_mut().unwrap().remove("source");
    replayed.as_object_mut().unwrap().remove("source");
    assert_eq!(original, replayed);
    assert!(original["fidelity"]["reproduced"].as_u64().unwrap() >= 12);
    // The bundle is a slice: the lead-up starts 5 min before the incident, so
    // here (a 4-minute log) from the start; it holds no more than the log.
    let size = std::fs::metadata(&bundle).unwrap().len();
    assert!(size > 0);
    // A bundle cut short (a copy that did not finish) is a clear error, not a short report.
    let cut = dir.path().join("cut.bundle");
    let bytes = std::fs::read(&bundle).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let out = faultline(&["replay", "--bundle", cut.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cut.bundle") && err.contains("cut short"),
        "{err}"
    );
    let out = faultline(&[
        "export",
        "--data",
        &data,
        "--incident",
        "inc-9",
        "--out",
        &bundle,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("incident \"inc-9\" is not in the log; it holds inc-1015"),
        "{err}"
    );
}

/// Debian's Chromium, installed by `.ci/run`.
fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have /usr/bin/chromium (.ci/run installs it)"
    );
    eprintln!("skipping: no /usr/bin/chromium (apt-get install chromium)");
    None
}

/// Loads `page` in headless Chromium; returns the screenshot and the console messages.
fn browse(
    chrome: &Path,
    page: &Path,
    dir: &Path,
) -> (png::Decoder<std::io::BufReader<std::fs::File>>, Vec<String>) {
    let shot = dir.join("shot.png");
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let errors = log
        .lines()
        // Chromium logs every console message (any level) as `INFO:CONSOLE`;
        // the report has no scripts, so any message at all is a problem.
        .filter(|l| l.contains(":CONSOLE"))
        .chain(log.lines().filter(|l| l.contains("Uncaught")))
        .map(str::to_owned)
        .collect();
    (
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(shot).unwrap())),
        errors,
    )
}

#[test]
fn the_html_report_renders_its_timeline_in_a_headless_browser() {
    let Some(chrome) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = process_log(dir.path());
    let page = dir.path().join("report.html");
    ok(&["replay", "--data", &data, "--html", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "no scripts");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no network fetches"
    );
    assert!(html.contains("<title>") && html.contains("class=\"decision\""));

    let (decoder, errors) = browse(&chrome, &page, dir.path());
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixel = |x: u32, y: u32| {
        let i = (y as usize * info.width as usize + x as usize) * channels;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    // The payments series is the third colour (#2ca02c), breaker and hub
    // markers the second and sixth; all must be painted in the chart area.
    let count = |rgb: (u8, u8, u8)| {
        (0..info.height)
            .flat_map(|y| (0..info.width).map(move |x| (x, y)))
            .filter(|(x, y)| pixel(*x, *y) == rgb)
            .count()
    };
    assert!(
        count((0x2c, 0xa0, 0x2c)) > 200,
        "the error-rate line is drawn"
    );
    assert!(
        count((0xd6, 0x27, 0x28)) > 50,
        "series and markers are drawn"
    );

    // The check can fail: a page that logs an error is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let (_, errors) = browse(&chrome, &bad, dir.path());
    assert!(errors.iter().any(|e| e.contains("boom")), "{errors:?}");
}
