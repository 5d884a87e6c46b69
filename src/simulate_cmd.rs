//! `faultline simulate`: runs a scenario's arms side by side, prints the
//! table and writes the report. The shell around [`crate::simulate`]: files,
//! the progress bar and the optional sled log are here, the simulation and
//! the report are pure.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::log::{Durability, EventLog, SledLog};
use crate::simulate::arms::{run_arms, Arm, Prepared};
use crate::simulate::{render, report, Scenario};

/// What `faultline simulate` was asked.
#[derive(Debug)]
pub struct Args {
    /// The scenario file.
    pub file: PathBuf,
    /// Seed instead of the file's.
    pub seed: Option<u64>,
    /// Arms to run, in report order.
    pub arms: Vec<Arm>,
    /// Report directory (default `faultline-sim/<scenario>`).
    pub out: Option<PathBuf>,
    /// Keep the faultline arm's log in this sled directory.
    pub data: Option<PathBuf>,
}

/// Runs `args` with faultline under `config`; the table goes to stdout, progress and file names to stderr.
pub fn simulate(args: &Args, config: &Config) -> Result<()> {
    let scenario = Scenario::load(&args.file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let description = scenario.description.clone();
    let mut arms = args.arms.clone();
    arms.sort();
    arms.dedup();
    if arms.is_empty() {
        bail!("--arms is empty: name one or more of none, peers, faultline");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("faultline-sim").join(&scenario.name));
    let mut log = match &args.data {
        Some(dir) => {
            if !arms.contains(&Arm::Faultline) {
                bail!("--data keeps the faultline arm's log, but --arms leaves that arm out");
            }
            let mut log = SledLog::open(dir, Durability::Buffered)
                .with_context(|| format!("cannot open data directory {}", dir.display()))?;
            if log.last_seq() > 0 {
                bail!(
                    "{} already holds a log of {} records: give --data an empty or new directory",
                    dir.display(),
                    log.last_seq()
                );
            }
            log.set_policy(&config.source_text)
                .context("recording the policy in the data directory")?;
            Some(log)
        }
        None => None,
    };
    let p = Prepared::new(scenario, args.seed);
    let total = p.scenario.duration.ms() * arms.len() as u64;
    let bar = crate::tools::cmd::bar(
        total / 1000,
        "{spinner} simulating [{bar:30}] {percent}% of simulated time, {elapsed} elapsed, eta {eta}",
    );
    let progress = |done_ms: u64| {
        if let Some(b) = &bar {
            b.set_position(done_ms / 1000);
        }
    };
    let runs = run_arms(
        &p,
        &arms,
        config,
        log.as_mut().map(|l| l as &mut (dyn EventLog + Send)),
        &progress,
    )
    .context("keeping the faultline arm's log")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(mut log) = log {
        log.flush().context("flushing the faultline arm's log")?;
        eprintln!(
            "faultline simulate: kept the faultline arm's log ({} records) in {}",
            log.last_seq(),
            args.data.as_ref().expect("a data directory").display()
        );
    }
    let report = report::build(&p, &runs);
    print!("{}", render::table(&report));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create report directory {}", out.display()))?;
    for (name, text) in render::files(&report, &description).map_err(anyhow::Error::msg)? {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "faultline simulate: report in {} (report.md, report.json, charts)",
        out.display()
    );
    Ok(())
}
