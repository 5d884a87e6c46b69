//! `faultline detect` and `faultline eval-detect`: the predictor's detector
//! ensemble on a single metric series.
//!
//! `detect` reads a CSV with a header naming `timestamp` and `value` columns
//! (others are ignored), in any unit and at any sampling interval, and
//! writes `timestamp,value,anomaly_score` for every row in order, streaming
//! (constant memory). The ensemble, its defaults and the score scale are
//! exactly the predictor's ([`crate::actors::predictor::ensemble`]); there is
//! nothing to tune per file. A score of 0.5 or more is what the predictor
//! would alarm on. A row whose timestamp or value cannot be read is echoed
//! with score 0 and reported; it never stops the run.

pub mod eval;
pub mod synth;

use std::io::{Read, Write};

use crate::actors::predictor::alarm::{Alarm, Edge, Hysteresis};
use crate::actors::predictor::ensemble::{DetectorConfig, Ensemble, GENERIC};
use crate::events::Timestamp;

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The CSV could not be read or written.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// The header lacks a required column.
    #[error("the header must name a `timestamp` and a `value` column; found {found:?}")]
    Header {
        /// The header's columns.
        found: Vec<String>,
    },
    /// Writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Data rows read.
    pub rows: u64,
    /// Rows scored.
    pub scored: u64,
    /// Rows echoed with score 0 because a field could not be read.
    pub unreadable: u64,
    /// Alarms the predictor would have raised (score ≥ 0.5, with hysteresis).
    pub alarms: u64,
}

/// Parses `YYYY-MM-DD HH:MM:SS[.fff]` (taken as UTC) or RFC 3339.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(t) = Timestamp::parse(text) {
        return Some(t);
    }
    let b = text.as_bytes();
    if b.len() >= 19
        && b[10] == b' '
        && !text.contains(['Z', 'z', '+'])
        && text[11..].matches('-').count() == 0
    {
        return Timestamp::parse(&format!("{}T{}Z", &text[..10], &text[11..])).ok();
    }
    None
}

fn column(headers: &csv::StringRecord, name: &str) -> Option<usize> {
    headers.iter().position(|h| {
        h.trim()
            .trim_start_matches('\u{feff}')
            .eq_ignore_ascii_case(name)
    })
}

/// Scores every row of `input` into `output`. `progress` is called with the
/// bytes read so far every few thousand rows; `report` with the 1-based line
/// number and a message for each unreadable row.
pub fn run<R: Read, W: Write>(
    input: R,
    output: W,
    config: &DetectorConfig,
    mut progress: impl FnMut(u64),
    mut report: impl FnMut(u64, String),
) -> Result<DetectStats, DetectError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader.headers()?.clone();
    let (Some(ts_col), Some(value_col)) =
        (column(&headers, "timestamp"), column(&headers, "value"))
    else {
        return Err(DetectError::Header {
            found: headers.iter().map(str::to_owned).collect(),
        });
    };
    let mut writer = csv::WriterBuilder::new().from_writer(output);
    writer.write_record(["timestamp", "value", "anomaly_score"])?;

    let mut ensemble = Ensemble::new(config);
    let mut alarm = Alarm::default();
    let hysteresis = Hysteresis::default();
    let mut stats = DetectStats::default();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        stats.rows += 1;
        let line = record.position().map_or(stats.rows + 1, |p| p.line());
        let ts = record.get(ts_col).unwrap_or("");
        let raw = record.get(value_col).unwrap_or("");
        let time = parse_timestamp(ts);
        let value = raw.parse::<f64>().ok().filter(|v| v.is_finite());
        let score = match (time, value) {
            (Some(t), Some(v)) => {
                stats.scored += 1;
                let a = ensemble.update(t.nanos(), v, config, &GENERIC);
                if alarm.update(a.score, &hysteresis) == Some(Edge::Raised) {
                    stats.alarms += 1;
                }
                a.score
            }
            (None, _) => {
                stats.unreadable += 1;
                report(
                    line,
                    format!(
                        "timestamp {ts:?} is neither `YYYY-MM-DD HH:MM:SS` nor RFC 3339; scored 0"
                    ),
                );
                0.0
            }
            (_, None) => {
                stats.unreadable += 1;
                let what = if raw.is_empty() {
                    "missing".to_owned()
                } else {
                    format!("{raw:?} is not a finite number")
                };
                report(line, format!("value {what}; scored 0"));
                0.0
            }
        };
        let score = format!("{:.6}", score);
        writer.write_record([ts, raw, score.as_str()])?;
        if stats.rows % 4096 == 0 {
            progress(record.position().map_or(0, |p| p.byte()));
        }
    }
    writer.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(csv: &str) -> (String, DetectStats, Vec<(u64, String)>) {
        let mut out = Vec::new();
        let mut reports = Vec::new();
        let stats = run(
            csv.as_bytes(),
            &mut out,
            &DetectorConfig::default(),
            |_| {},
            |l, m| reports.push((l, m)),
        )
        .unwrap();
        (String::from_utf8(out).unwrap(), stats, reports)
    }

    #[test]
    fn timestamps_in_both_formats() {
        let a = parse_timestamp("2014-04-01 00:05:00").unwrap();
        let b = parse_timestamp("2014-04-01T00:05:00Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_timestamp("2014-04-01 00:05:00.5").is_some());
        assert!(parse_timestamp("2014-04-01T02:05:00+02:00").is_some());
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("2014-04-01").is_none());
    }

    #[test]
    fn echoes_every_row_and_scores_unreadable_ones_zero() {
        let mut csv = String::from("timestamp,value,label\n");
        for i in 0..300 {
            let v = if i == 250 {
                "1000".to_owned()
            } else {
                format!("{}", 10 + i % 3)
            };
            csv.push_str(&format!(
                "2020-01-01 {:02}:{:02}:00,{v},0\n",
                i / 60,
                i % 60
            ));
        }
        csv.push_str("2020-01-01 05:00:00,,0\n2020-01-01 05:01:00,abc,0\nnot a time,3,0\n");
        let (out, stats, reports) = detect(&csv);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "timestamp,value,anomaly_score");
        assert_eq!(lines.len(), 304);
        assert_eq!(stats.rows, 303);
        assert_eq!(stats.unreadable, 3);
        assert_eq!(lines[1], "2020-01-01 00:00:00,10,0.000000");
        let spike: f64 = lines[251].rsplit(',').next().unwrap().parse().unwrap();
        assert!(spike >= 0.5, "{}", lines[251]);
        assert!(lines[302].ends_with(",abc,0.000000"));
        assert_eq!(reports.len(), 3);
        assert_eq!(reports[0].0, 302);
        assert!(reports[1].1.contains("\"abc\""), "{:?}", reports[1]);
        assert!(reports[2].1.contains("not a time"));
        assert_eq!(stats.alarms, 1);
        for l in &lines[1..] {
            let s: f64 = l.rsplit(',').next().unwrap().parse().unwrap();
            assert!((0.0..=1.0).contains(&s));
        }
    }

    #[test]
    fn a_header_without_the_columns_is_an_error() {
        let err = run(
            "time,v\n1,2\n".as_bytes(),
            Vec::new(),
            &DetectorConfig::default(),
            |_| {},
            |_, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("[\"time\", \"v\"]"), "{err}");
    }
}
