//! `faultline publish --input FILE.jsonl`: a recorded or hand-written event
//! file into a node's log, in batches, with progress.
//!
//! Every line is decoded and validated here first, so a bad line is reported
//! with its line number and reason and skipped, instead of travelling to the
//! dead-letter queue. Ids make publishing idempotent: running the same file
//! twice reports the second run's events as duplicates.

use std::io::BufRead;
use std::time::Instant;

use anyhow::{bail, Result};

use super::target::{Outcome, Sender};
use crate::events::validate::validate_input;
use crate::events::{Codec, Event};

/// Events per request or publish burst.
pub const BATCH: usize = 500;

/// What a publish run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// What the node said, over every batch.
    pub outcome: Outcome,
    /// Lines that never left: (line number, reason).
    pub invalid: Vec<(usize, String)>,
    /// Line number of each sent event, in order (to name node rejections).
    lines: Vec<usize>,
}

impl Summary {
    /// The node's rejections with the line they came from.
    pub fn rejected_lines(&self) -> Vec<(usize, &str)> {
        (self.outcome.rejected.iter())
            .map(|(i, r)| (self.lines.get(*i).copied().unwrap_or(0), r.as_str()))
            .collect()
    }
}

/// Reads JSON lines from `input`, sends valid events in batches through
/// `sender`, calling `progress(bytes_read)` after each batch.
pub fn publish(
    input: impl BufRead,
    sender: &Sender,
    runtime: &tokio::runtime::Runtime,
    mut progress: impl FnMut(u64),
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    let mut bytes = 0u64;
    let flush = |batch: &mut Vec<Event>, summary: &mut Summary| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let offset = summary.lines.len() - batch.len();
        let outcome = runtime.block_on(sender.send(batch))?;
        summary.outcome.absorb(outcome, offset);
        batch.clear();
        Ok(())
    };
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        bytes += line.len() as u64 + 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let checked = Codec::Json
            .decode(text.as_bytes())
            .and_then(|e| validate_input(&e).map(|()| e));
        match checked {
            Ok(e) => {
                batch.push(e);
                summary.lines.push(n + 1);
            }
            Err(r) => summary.invalid.push((n + 1, r.to_string())),
        }
        if batch.len() == BATCH {
            flush(&mut batch, &mut summary)?;
            progress(bytes);
        }
    }
    flush(&mut batch, &mut summary)?;
    progress(bytes);
    Ok(summary)
}

/// Prints the summary to stderr; fails when anything was refused.
pub fn report(summary: &Summary, started: Instant) -> Result<()> {
    const SHOWN: usize = 20;
    for (line, why) in summary.invalid.iter().take(SHOWN) {
        eprintln!("line {line}: not sent: {why}");
    }
    let rejected = summary.rejected_lines();
    for (line, why) in rejected.iter().take(SHOWN) {
        eprintln!("line {line}: rejected by the node: {why}");
    }
    let o = &summary.outcome;
    let secs = started.elapsed().as_secs_f64();
    let sent = o.accepted + o.duplicates + o.rejected.len() as u64;
    eprintln!(
        "published {sent} events in {secs:.1} s ({:.0}/s): {} accepted, {} duplicates, {} rejected; {} invalid lines skipped",
        sent as f64 / secs.max(1e-9),
        o.accepted,
        o.duplicates,
        o.rejected.len(),
        summary.invalid.len()
    );
    if !summary.invalid.is_empty() || !rejected.is_empty() {
        bail!(
            "{} lines were not taken (first: line {})",
            summary.invalid.len() + rejected.len(),
            (summary.invalid.iter().map(|(l, _)| *l))
                .chain(rejected.iter().map(|(l, _)| *l))
                .min()
                .unwrap_or(0)
        );
    }
    Ok(())
}
