//! The terminal summary of a [`Report`]: the answer first (does the log
//! reproduce, which incidents, what the guard blamed), then the timeline.

use std::fmt::Write;

use super::fidelity::DivergenceKind;
use super::range::Bound;
use super::timeline::Entry;
use super::Report;

/// Timeline lines printed before the rest are only counted.
pub const TERMINAL_ENTRIES: usize = 200;

fn bound(b: Option<super::range::Bound>, open: &str) -> String {
    match b {
        None => open.to_owned(),
        Some(Bound::Seq(s)) => format!("#{s}"),
        Some(Bound::Time(t)) => t.to_string(),
    }
}

fn entry_line(e: &Entry) -> String {
    let mut line = format!(
        "{} {:>8} {:<8} {:<10} {:<16} {}",
        e.time,
        if e.seq == 0 {
            "-".to_owned()
        } else {
            format!("#{}", e.seq)
        },
        e.kind,
        if e.agent.is_empty() { "-" } else { &e.agent },
        e.service,
        e.what
    );
    if !e.reason.is_empty() {
        let _ = write!(line, " | {}", e.reason);
    }
    line
}

fn at(t: Option<crate::events::Timestamp>) -> String {
    t.map_or("-".to_owned(), |t| t.to_string())
}

/// The summary as text.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "faultline replay: {} (policy {})",
        r.source.description, r.policy
    );
    let _ = write!(
        o,
        "range {} .. {}",
        bound(r.selection.from, "start"),
        bound(r.selection.to, "end")
    );
    if let Some(i) = &r.incident {
        let _ = write!(o, " (incident {i})");
    }
    if !r.selection.services.is_empty() {
        let _ = write!(o, ", services {}", r.selection.services.join(", "));
    }
    let c = &r.counts;
    let _ = writeln!(
        o,
        "\n{} records selected: {} inputs, {} decisions, {} ticks{}",
        c.selected,
        c.inputs,
        c.decisions,
        c.ticks,
        match (c.seqs, c.times) {
            (Some((a, b)), Some((t, u))) => format!(" (#{a}..#{b}, {t} .. {u})"),
            _ => String::new(),
        }
    );
    if let Some(f) = &r.fidelity {
        let verdict = if f.exact() { "ok" } else { "DIVERGED" };
        let _ = writeln!(
            o,
            "\nfidelity: reproduced {} of {} decisions{} [{verdict}]",
            f.reproduced,
            f.logged,
            if f.new > 0 {
                format!("; replay made {} the log does not have", f.new)
            } else {
                String::new()
            }
        );
        for d in &f.divergences {
            let kind = match d.kind {
                DivergenceKind::Different => "differs",
                DivergenceKind::NotReproduced => "not reproduced",
                DivergenceKind::New => "new in replay",
            };
            let _ = writeln!(o, "  {} (caused by #{}): {kind}", d.id, d.cause);
            if let Some(l) = &d.logged {
                let _ = writeln!(o, "    logged:   {l}");
            }
            if let Some(p) = &d.replayed {
                let _ = writeln!(o, "    replayed: {p}");
            }
        }
        if f.unlisted > 0 {
            let _ = writeln!(o, "  ... and {} more", f.unlisted);
        }
    }
    let t = &r.timeline;
    if !t.incidents.is_empty() {
        let _ = writeln!(o, "\nincidents:");
        for i in &t.incidents {
            let _ = writeln!(
                o,
                "  {} {:?} opened {} escalated {} resolved {}; services {}; root cause {}; impact {:.2}/min, loss {:.2}",
                i.id,
                i.severity,
                i.opened,
                at(i.escalated),
                at(i.resolved),
                i.services.join(", "),
                i.root_cause.as_deref().unwrap_or("-"),
                i.impact_per_minute,
                i.loss_estimate
            );
        }
    }
    if !t.findings.is_empty() {
        let _ = writeln!(o, "\nroot cause and blast radius (guard):");
        for f in &t.findings {
            let _ = writeln!(
                o,
                "  {} {} root {} (confidence {:.2}); affected {}; edges {}",
                f.time,
                f.action,
                f.root_cause,
                f.confidence,
                if f.affected.is_empty() {
                    "-".to_owned()
                } else {
                    f.affected.join(", ")
                },
                if f.edges.is_empty() {
                    "-".to_owned()
                } else {
                    f.edges.join(", ")
                }
            );
        }
    }
    if !t.edges.is_empty() {
        let _ = writeln!(o, "\ndependencies involved:");
        for e in &t.edges {
            let _ = writeln!(
                o,
                "  {} -> {}{} ({} calls)",
                e.caller,
                e.callee,
                if e.declared { " declared" } else { "" },
                e.calls
            );
        }
    }
    let _ = writeln!(
        o,
        "\ntimeline ({} entries):",
        t.entries.len() as u64 + t.omitted
    );
    for e in t.entries.iter().take(TERMINAL_ENTRIES) {
        let _ = writeln!(o, "  {}", entry_line(e));
    }
    let more = t.entries.len().saturating_sub(TERMINAL_ENTRIES) as u64 + t.omitted;
    if more > 0 {
        let _ = writeln!(
            o,
            "  ... {more} more (--format json or --html FILE show every entry)"
        );
    }
    if let Some(w) = &r.what_if {
        let _ = writeln!(
            o,
            "\nwhat-if: policy {} against {} (in force):",
            w.other_policy, w.base_policy
        );
        let counts: Vec<String> = w.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "  decisions: {}", counts.join(", "));
        for row in &w.rows {
            let _ = writeln!(
                o,
                "  {:<10} {:<10} {:<16} {:<40} in force {} / other {}{}",
                row.change.name(),
                row.agent,
                row.service,
                row.what,
                at(row.base_time),
                at(row.other_time),
                row.shift_ms
                    .map_or(String::new(), |s| format!(" ({s:+} ms)"))
            );
        }
        for (n, i) in w.incidents.iter().enumerate() {
            let side = |x: &Option<super::timeline::Incident>| {
                x.as_ref().map_or("none".to_owned(), |i| {
                    format!(
                        "{} opened {} resolved {} loss {:.2}",
                        i.id,
                        i.opened,
                        i.resolved.map_or("-".to_owned(), |t| t.to_string()),
                        i.loss_estimate
                    )
                })
            };
            let _ = writeln!(
                o,
                "  incident {}: in force {} | other {}{}",
                n + 1,
                side(&i.base),
                side(&i.other),
                i.opened_shift_ms
                    .map_or(String::new(), |s| format!(" (opened {s:+} ms)"))
            );
        }
    }
    o
}
