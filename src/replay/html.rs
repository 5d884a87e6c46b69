//! `--html FILE`: one self-contained page (no scripts, no fonts, no network
//! fetches) with an SVG timeline chart and the report's tables.
//!
//! The chart draws each service's error rate (solid) and p99 latency
//! (dashed, its own scale) per bucket, deploys as vertical lines and
//! decisions as markers in one row per agent; every marker carries its
//! decision as hover text (SVG `<title>`), so the page needs no JavaScript.

use std::fmt::Write;

use super::timeline::Entry;
use super::Report;
use crate::events::Timestamp;

/// Services drawn in the chart (those with the most calls).
pub const CHART_SERVICES: usize = 8;
/// Markers drawn; the tables list every decision.
pub const CHART_MARKERS: usize = 2_000;

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];
const AGENTS: [&str; 6] = ["predictor", "breaker", "router", "rollback", "guard", "hub"];

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const W: f64 = 1100.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 60.0;
const SIGNAL_H: f64 = 220.0;
const LANE_H: f64 = 22.0;

/// The chart alone (an `<svg>` element).
pub fn chart(r: &Report) -> String {
    let t = &r.timeline;
    let mut times: Vec<i64> = t
        .signals
        .values()
        .flatten()
        .map(|p| p.time.nanos())
        .chain(t.entries.iter().map(|e| e.time.nanos()))
        .collect();
    times.sort_unstable();
    let (Some(&t0), Some(&t1)) = (times.first(), times.last()) else {
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1100\" height=\"40\" id=\"timeline\"><text x=\"10\" y=\"25\">Nothing in range.</text></svg>".to_owned();
    };
    let t1 = t1 + t.bucket_ms * 1_000_000;
    let span = (t1 - t0).max(1) as f64;
    let x = |ts: Timestamp| LEFT + (W - LEFT - RIGHT) * (ts.nanos() - t0) as f64 / span;
    let mut services: Vec<(&String, u64)> = t
        .signals
        .iter()
        .map(|(s, p)| (s, p.iter().map(|p| p.calls).sum()))
        .collect();
    services.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    services.truncate(CHART_SERVICES);
    let max_err = t
        .signals
        .values()
        .flatten()
        .map(|p| p.error_rate)
        .fold(1.0f64, f64::max);
    let max_lat = t
        .signals
        .values()
        .flatten()
        .filter_map(|p| p.p99_ms)
        .fold(1.0f64, f64::max);
    let lanes_top = SIGNAL_H + 40.0;
    let h = lanes_top + LANE_H * AGENTS.len() as f64 + 60.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = write!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{h}\" fill=\"#ffffff\"/>"
    );
    // Axes and scales.
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{SIGNAL_H}\" x2=\"{}\" y2=\"{SIGNAL_H}\" stroke=\"#888\"/>",
        W - RIGHT
    );
    let _ = write!(
        s,
        "<text x=\"4\" y=\"14\">errors % (max {max_err:.1})</text>"
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"14\" text-anchor=\"end\">p99 ms, dashed (max {max_lat:.0})</text>",
        W - 4.0
    );
    let y_err = |v: f64| SIGNAL_H - (SIGNAL_H - 24.0) * v / max_err;
    let y_lat = |v: f64| SIGNAL_H - (SIGNAL_H - 24.0) * v / max_lat;
    for (i, (service, _)) in services.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points = &t.signals[*service];
        let err: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.time), y_err(p.error_rate)))
            .collect();
        let _ = write!(
            s,
            "<polyline class=\"signal\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"><title>{} error rate</title></polyline>",
            err.join(" "),
            esc(service)
        );
        let lat: Vec<String> = points
            .iter()
            .filter_map(|p| {
                p.p99_ms
                    .map(|v| format!("{:.1},{:.1}", x(p.time), y_lat(v)))
            })
            .collect();
        if !lat.is_empty() {
            let _ = write!(
                s,
                "<polyline class=\"signal\" fill=\"none\" stroke=\"{color}\" stroke-dasharray=\"4 3\" points=\"{}\"><title>{} p99 latency</title></polyline>",
                lat.join(" "),
                esc(service)
            );
        }
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            LEFT + 130.0 * i as f64,
            h - 30.0,
            LEFT + 14.0 + 130.0 * i as f64,
            h - 21.0,
            esc(service)
        );
    }
    for e in t.entries.iter().filter(|e| e.kind == "deploy") {
        let _ = write!(
            s,
            "<line class=\"deploy\" x1=\"{0:.1}\" y1=\"20\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#555\" stroke-dasharray=\"2 2\"><title>{2}</title></line>",
            x(e.time),
            lanes_top + LANE_H * AGENTS.len() as f64,
            esc(&hover(e))
        );
    }
    for (i, agent) in AGENTS.iter().enumerate() {
        let y = lanes_top + LANE_H * i as f64;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\">{agent}</text><line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#eee\"/>",
            y + 15.0,
            W - RIGHT
        );
    }
    for e in t
        .entries
        .iter()
        .filter(|e| e.kind == "decision")
        .take(CHART_MARKERS)
    {
        let lane = AGENTS.iter().position(|a| *a == e.agent).unwrap_or(0);
        let color = PALETTE[lane % PALETTE.len()];
        let _ = write!(
            s,
            "<circle class=\"decision\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{color}\" fill-opacity=\"0.8\"><title>{}</title></circle>",
            x(e.time),
            lanes_top + LANE_H * lane as f64 + 11.0,
            esc(&hover(e))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        SIGNAL_H + 16.0,
        Timestamp::from_nanos(t0),
        W - RIGHT,
        SIGNAL_H + 16.0,
        Timestamp::from_nanos(t1)
    );
    s.push_str("</svg>");
    s
}

fn hover(e: &Entry) -> String {
    let mut h = format!(
        "{} {} {} {}: {}",
        e.time, e.agent, e.service, e.what_kind, e.what
    );
    if !e.reason.is_empty() {
        let _ = write!(h, " | {}", e.reason);
    }
    h
}

fn row(cells: &[String]) -> String {
    let mut r = String::from("<tr>");
    for c in cells {
        let _ = write!(r, "<td>{}</td>", esc(c));
    }
    r.push_str("</tr>");
    r
}

fn table(head: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut t = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(t, "<th>{}</th>", esc(h));
    }
    t.push_str("</tr></thead><tbody>");
    for r in rows {
        t.push_str(&row(&r));
    }
    t.push_str("</tbody></table>");
    t
}

fn at(t: Option<Timestamp>) -> String {
    t.map_or("-".to_owned(), |t| t.to_string())
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:left;vertical-align:top}th{background:#f3f3f3}.ok{color:#2a7d2a}.bad{color:#b00020}";

/// The whole page.
pub fn page(r: &Report) -> String {
    let mut b = String::new();
    let title = match &r.incident {
        Some(i) => format!("faultline replay: incident {i}"),
        None => "faultline replay".to_owned(),
    };
    let _ = write!(
        b,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title),
    );

    let _ = write!(b, "<h1>{}</h1>", esc(&title));
    let _ = write!(
        b,
        "<p>{} &middot; policy {} &middot; {} records selected ({} inputs, {} decisions, {} ticks)</p>",
        esc(&r.source.description),
        esc(&r.policy),
        r.counts.selected,
        r.counts.inputs,
        r.counts.decisions,
        r.counts.ticks
    );
    if let Some(f) = &r.fidelity {
        let (class, verdict) = if f.exact() {
            ("ok", "ok")
        } else {
            ("bad", "diverged")
        };
        let _ = write!(
            b,
            "<h2>Fidelity</h2><p id=\"fidelity\" class=\"{class}\">reproduced {} of {} decisions; {} new in replay ({verdict})</p>",
            f.reproduced, f.logged, f.new
        );
        if !f.divergences.is_empty() {
            b.push_str(&table(
                &["decision", "cause", "kind", "logged", "replayed"],
                f.divergences.iter().map(|d| {
                    vec![
                        d.id.clone(),
                        format!("#{}", d.cause),
                        format!("{:?}", d.kind),
                        d.logged.as_ref().map_or("-".into(), |v| v.to_string()),
                        d.replayed.as_ref().map_or("-".into(), |v| v.to_string()),
                    ]
                }),
            ));
        }
    }
    b.push_str("<h2>Timeline</h2>");
    b.push_str(&chart(r));
    let t = &r.timeline;
    if !t.incidents.is_empty() {
        b.push_str("<h2>Incidents</h2>");
        b.push_str(&table(
            &[
                "incident",
                "severity",
                "opened",
                "escalated",
                "mitigated",
                "resolved",
                "services",
                "root cause",
                "impact/min",
                "loss",
            ],
            t.incidents.iter().map(|i| {
                vec![
                    i.id.clone(),
                    format!("{:?}", i.severity),
                    i.opened.to_string(),
                    at(i.escalated),
                    at(i.mitigated),
                    at(i.resolved),
                    i.services.join(", "),
                    i.root_cause.clone().unwrap_or_else(|| "-".into()),
                    format!("{:.2}", i.impact_per_minute),
                    format!("{:.2}", i.loss_estimate),
                ]
            }),
        ));
    }
    if !t.findings.is_empty() {
        b.push_str("<h2>Root cause and blast radius (guard)</h2>");
        b.push_str(&table(
            &[
                "time",
                "action",
                "root cause",
                "confidence",
                "candidates",
                "affected",
                "edges",
                "reason",
            ],
            t.findings.iter().map(|f| {
                vec![
                    f.time.to_string(),
                    f.action.clone(),
                    f.root_cause.clone(),
                    format!("{:.2}", f.confidence),
                    f.candidates
                        .iter()
                        .map(|(s, v)| format!("{s} {v:.2}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    f.affected.join(", "),
                    f.edges.join(", "),
                    f.reason.clone(),
                ]
            }),
        ));
    }
    if !t.edges.is_empty() {
        b.push_str("<h2>Dependencies involved</h2>");
        b.push_str(&table(
            &["caller", "callee", "declared", "calls"],
            t.edges.iter().map(|e| {
                vec![
                    e.caller.clone(),
                    e.callee.clone(),
                    if e.declared {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    e.calls.to_string(),
                ]
            }),
        ));
    }
    b.push_str("<h2>Decisions and signal changes</h2>");
    b.push_str(&table(
        &[
            "time", "cause", "kind", "agent", "service", "what", "reason", "numbers",
        ],
        t.entries.iter().map(|e| {
            vec![
                e.time.to_string(),
                if e.seq == 0 {
                    "-".into()
                } else {
                    format!("#{}", e.seq)
                },
                e.kind.to_owned(),
                e.agent.clone(),
                e.service.clone(),
                e.what.clone(),
                e.reason.clone(),
                e.numbers
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        }),
    ));
    if t.omitted > 0 {
        let _ = write!(b, "<p>{} more entries not kept.</p>", t.omitted);
    }
    if let Some(w) = &r.what_if {
        let _ = write!(
            b,
            "<h2>What-if: policy {} against {} (in force)</h2><p>{}</p>",
            esc(&w.other_policy),
            esc(&w.base_policy),
            esc(&w
                .counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "))
        );
        b.push_str(&table(
            &[
                "change", "agent", "service", "decision", "in force", "other", "shift ms", "reason",
            ],
            w.rows.iter().map(|r| {
                vec![
                    r.change.name().to_owned(),
                    r.agent.clone(),
                    r.service.clone(),
                    r.what.clone(),
                    at(r.base_time),
                    at(r.other_time),
                    r.shift_ms.map_or("-".into(), |s| s.to_string()),
                    r.reason.clone(),
                ]
            }),
        ));
        b.push_str(&table(
            &[
                "in force",
                "opened",
                "resolved",
                "loss",
                "other",
                "opened",
                "resolved",
                "loss",
                "opened shift ms",
            ],
            w.incidents.iter().map(|i| {
                let side = |x: &Option<super::timeline::Incident>| match x {
                    Some(i) => vec![
                        i.id.clone(),
                        i.opened.to_string(),
                        at(i.resolved),
                        format!("{:.2}", i.loss_estimate),
                    ],
                    None => vec!["none".into(), "-".into(), "-".into(), "-".into()],
                };
                let mut cells = side(&i.base);
                cells.extend(side(&i.other));
                cells.push(i.opened_shift_ms.map_or("-".into(), |s| s.to_string()));
                cells
            }),
        ));
    }
    b.push_str("</body></html>\n");
    b
}
