//! The report as people read it: a table for the terminal and a markdown
//! document with the charts. Both are laid out from the same rows, so
//! they always say the same thing.

use std::fmt::Write;

use super::charts::Measure;
use super::report::{ArmReport, Report};

/// A row: its label and one cell per arm.
type Row = (String, Vec<String>);

/// The summary rows, one per measure.
fn summary(r: &Report) -> Vec<Row> {
    let row = |label: &str, cell: &dyn Fn(&ArmReport) -> String| {
        (label.to_owned(), r.arms.values().map(cell).collect())
    };
    let dash = || "-".to_owned();
    let mut rows = vec![
        row("success ratio", &|a| format!("{:.4}", a.success_ratio)),
        row("failed requests", &|a| thousands(a.failed_requests)),
        row("SLO-violation minutes", &|a| {
            a.slo_violation_minutes.to_string()
        }),
        row("revenue lost", &|a| format!("{:.0}", a.revenue_lost)),
        row("bad deploys rolled back", &|a| {
            let b = &a.rollbacks;
            format!("{}/{}", b.bad_rolled_back, b.bad_deploys)
        }),
        row("good deploys rolled back", &|a| {
            let b = &a.rollbacks;
            format!("{}/{}", b.good_rolled_back, b.good_deploys)
        }),
        row("root cause top-1", &|a| {
            a.root_cause_top1
                .map_or_else(dash, |x| format!("{:.0}%", x * 100.0))
        }),
        row("prediction precision", &|a| {
            a.prediction
                .as_ref()
                .and_then(|p| p.precision)
                .map_or_else(dash, |x| format!("{:.0}%", x * 100.0))
        }),
        row("prediction recall", &|a| {
            a.prediction
                .as_ref()
                .and_then(|p| p.recall)
                .map_or_else(dash, |x| format!("{:.0}%", x * 100.0))
        }),
        row("prediction lead", &|a| {
            a.prediction
                .as_ref()
                .and_then(|p| p.lead_s)
                .map_or_else(dash, |x| format!("{x:+.0} s"))
        }),
        row("actions", &|a| thousands(a.actions as u64)),
    ];
    for (i, f) in r.faults.iter().enumerate() {
        let label = format!(
            "{} {} @{} detect/mitigate",
            f.kind,
            f.root_cause,
            clock(f.start_s)
        );
        rows.push(row(&label, &|a| {
            let o = &a.faults[i];
            let s = |x: Option<f64>| x.map_or_else(dash, |x| format!("{x:.0}s"));
            format!("{} / {}", s(o.detect_s), s(o.mitigate_s))
        }));
    }
    rows
}

/// The summary as an aligned plain-text table.
pub fn table(r: &Report) -> String {
    let rows = summary(r);
    let arms: Vec<&str> = r.arms.keys().collect();
    let first = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let width = rows
        .iter()
        .flat_map(|(_, c)| c.iter().map(String::len))
        .chain(arms.iter().map(|a| a.len()))
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = format!(
        "{} (seed {}, {} simulated)\n",
        r.scenario,
        r.seed,
        clock(r.duration_s)
    );
    let _ = write!(out, "{:first$}", "");
    for a in &arms {
        let _ = write!(out, "{a:>width$}");
    }
    out.push('\n');
    for (label, cells) in rows {
        let _ = write!(out, "{label:first$}");
        for c in cells {
            let _ = write!(out, "{c:>width$}");
        }
        out.push('\n');
    }
    out
}

/// The report as markdown, with the charts (files beside it) embedded.
pub fn markdown(r: &Report, description: &str) -> String {
    let mut out = format!("# Simulation: {}\n\n", r.scenario);
    if !description.trim().is_empty() {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let _ = writeln!(
        out,
        "Seed {}, {} simulated. Every arm saw the same traffic and the same faults; \
         only the protection policy differs.\n",
        r.seed,
        clock(r.duration_s)
    );
    out.push_str(
        "## Faults (ground truth)\n\n| kind | root cause | start | end |\n|---|---|---|---|\n",
    );
    for f in &r.faults {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            f.kind,
            f.root_cause,
            clock(f.start_s),
            clock(f.end_s)
        );
    }
    if !r.good_deploys.is_empty() {
        let _ = writeln!(out, "\nGood deploys: {}.", r.good_deploys.join("; "));
    }
    out.push_str("\n## Results\n\n| |");
    for a in r.arms.keys() {
        let _ = write!(out, " {a} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(r.arms.len()));
    out.push('\n');
    for (label, cells) in summary(r) {
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    out.push_str("\n## Over time\n\nShaded: faults. Triangles: the first traffic-changing decision of each minute, per arm.\n\n");
    for m in [Measure::ErrorRate, Measure::P99] {
        let _ = writeln!(out, "![{}]({})\n", m.file(), m.file());
    }
    out.push_str("## Decisions\n");
    for (name, a) in r.arms.iter() {
        if a.markers.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {name}\n");
        for m in a.markers.iter().take(40) {
            let _ = writeln!(out, "- {} {}", clock(m.t_s), m.label);
        }
        if a.markers.len() > 40 {
            let _ = writeln!(
                out,
                "- … {} more minutes with decisions",
                a.markers.len() - 40
            );
        }
    }
    out
}

/// Every file of the report, by name: `report.json`, `report.md` and the
/// charts it embeds.
pub fn files(r: &Report, description: &str) -> Result<Vec<(&'static str, String)>, String> {
    let json = serde_json::to_string_pretty(r).map_err(|e| format!("report.json: {e}"))?;
    let mut out = vec![
        ("report.json", json + "\n"),
        ("report.md", markdown(r, description)),
    ];
    for m in [Measure::ErrorRate, Measure::P99] {
        out.push((m.file(), super::charts::render(r, m)?));
    }
    Ok(out)
}

/// `3723.0` s as `1h02m03s`; shorter forms when they say the same.
fn clock(s: f64) -> String {
    let s = s.round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m:02}m"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_thousands_read_well() {
        assert_eq!(clock(600.0), "10m");
        assert_eq!(clock(90.0), "1m30s");
        assert_eq!(clock(3600.0), "1h");
        assert_eq!(clock(3723.0), "1h02m03s");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(123), "123");
    }
}
