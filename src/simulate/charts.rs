//! The report's charts: user-facing error rate and p99 latency per minute,
//! one line per arm, faults shaded, each arm's traffic-changing decisions
//! marked beneath its line. SVG, drawn with plotters; text is left to the
//! viewer's fonts, so no font stack is built in and the output is the same
//! on every machine.

use plotters::prelude::*;

use super::report::{ArmReport, Report};

/// Size of a chart, px.
const SIZE: (u32, u32) = (960, 420);

/// What a chart plots from each minute.
#[derive(Clone, Copy, Debug)]
pub enum Measure {
    /// Failed / requests, in percent.
    ErrorRate,
    /// p99 latency, ms.
    P99,
}

impl Measure {
    /// File name of its chart.
    pub fn file(self) -> &'static str {
        match self {
            Measure::ErrorRate => "error-rate.svg",
            Measure::P99 => "latency-p99.svg",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Measure::ErrorRate => "user-facing error rate (%) per minute",
            Measure::P99 => "user-facing p99 latency (ms) per minute",
        }
    }

    fn value(self, a: &ArmReport, m: usize) -> f64 {
        match self {
            Measure::ErrorRate => a.minutes[m].error_ratio * 100.0,
            Measure::P99 => a.minutes[m].p99_ms,
        }
    }
}

/// Colour of an arm's line.
fn colour(arm: &str) -> RGBColor {
    match arm {
        "none" => RGBColor(130, 130, 130),
        "peers" => RGBColor(230, 120, 20),
        _ => RGBColor(30, 90, 200),
    }
}

/// The chart of `measure` for `report`, as SVG.
pub fn render(report: &Report, measure: Measure) -> Result<String, String> {
    let mut svg = String::new();
    draw(report, measure, &mut svg).map_err(|e| format!("drawing {}: {e}", measure.file()))?;
    Ok(svg)
}

fn draw(
    report: &Report,
    measure: Measure,
    svg: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let minutes = report
        .arms
        .values()
        .map(|a| a.minutes.len())
        .max()
        .unwrap_or(0);
    let top = report
        .arms
        .values()
        .flat_map(|a| (0..a.minutes.len()).map(move |m| measure.value(a, m)))
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let x_end = minutes.max(1) as f64;
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: {}", report.scenario, measure.title()),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("minute")
        .light_line_style(WHITE)
        .draw()?;
    let shade = RGBColor(250, 215, 215).mix(0.6);
    for f in &report.faults {
        let (a, b) = (f.start_s / 60.0, (f.end_s / 60.0).min(x_end));
        chart.draw_series(std::iter::once(Rectangle::new(
            [(a, 0.0), (b, top)],
            shade.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{} {}", f.kind, f.root_cause),
            (a, top * 0.98),
            ("sans-serif", 12),
        )))?;
    }
    for (k, (name, arm)) in report.arms.iter().enumerate() {
        let c = colour(name);
        chart
            .draw_series(LineSeries::new(
                (0..arm.minutes.len()).map(|m| (m as f64 + 0.5, measure.value(arm, m))),
                c.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        // Decisions: a tick per minute with one, in a strip per arm.
        let y = top * (0.04 + 0.04 * k as f64);
        chart.draw_series(
            arm.markers
                .iter()
                .map(|m| TriangleMarker::new((m.t_s / 60.0, y), 4, c.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
