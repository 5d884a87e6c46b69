//! The tool commands' shells: runtime, progress bars, exit status.

use std::io::{BufReader, IsTerminal};
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Result};

use super::load::{self, Generator, Profile};
use super::publish;
use super::tail::{self, TailArgs};
use super::target::Target;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the runtime: {e}"))
}

pub(crate) fn bar(len: u64, template: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
    Some(bar)
}

/// `faultline publish`.
pub fn publish_cmd(input: &Path, target: &Target) -> Result<()> {
    let (reader, size) = crate::cli::open_input(input)?;
    let rt = runtime()?;
    let sender = rt.block_on(target.sender())?;
    let bar = size.and_then(|s| {
        bar(
            s,
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
    });
    let started = Instant::now();
    let summary = publish::publish(
        BufReader::with_capacity(1 << 16, reader),
        &sender,
        &rt,
        |b| {
            if let Some(bar) = &bar {
                bar.set_position(b);
            }
        },
    )?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    publish::report(&summary, started)
}

/// `faultline tail`.
pub fn tail_cmd(target: &Target, args: &TailArgs) -> Result<()> {
    let rt = runtime()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    rt.block_on(tail::tail(target, args, &mut out))
}

/// What `faultline load` was asked for.
pub struct LoadArgs {
    /// Profile name.
    pub profile: String,
    /// Override the profile's service count.
    pub services: Option<usize>,
    /// Override its length, seconds.
    pub duration_s: Option<u64>,
    /// Stop after this many events.
    pub max_events: u64,
    /// Seed.
    pub seed: u64,
}

/// `faultline load`.
pub fn load_cmd(target: &Target, args: &LoadArgs) -> Result<()> {
    let mut profile = Profile::named(&args.profile)?;
    if let Some(n) = args.services {
        if !(2..=500).contains(&n) {
            return Err(anyhow!("--services {n}: choose 2 to 500"));
        }
        profile.services = n;
    }
    let length = args.duration_s.unwrap_or(profile.duration_s);
    if !(1..=86_400).contains(&length) {
        return Err(anyhow!("--duration {length}: choose 1 to 86400 seconds"));
    }
    let rt = runtime()?;
    let sender = rt.block_on(target.sender())?;
    let generator = Generator::new(profile, args.seed, crate::node::wall_now(), length);
    eprintln!(
        "load: profile {} — {} services ({}), {} s, at most {} events, seed {}",
        profile.name,
        generator.services().len(),
        generator.services()[..generator.services().len().min(4)].join(", ")
            + if generator.services().len() > 4 {
                ", ..."
            } else {
                ""
            },
        length,
        args.max_events,
        args.seed
    );
    let bar = bar(length, "{bar:40} {pos}/{len} s {msg}");
    let started = Instant::now();
    let summary = rt.block_on(load::run(
        generator,
        &sender,
        length,
        args.max_events,
        |s, sent| {
            if let Some(b) = &bar {
                b.set_position(s);
                b.set_message(format!("{sent} events"));
            }
        },
    ))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let o = &summary.outcome;
    eprintln!(
        "load: sent {} events in {secs:.1} s ({:.0}/s): {} accepted, {} duplicates, {} rejected{}",
        summary.sent,
        summary.sent as f64 / secs.max(1e-9),
        o.accepted,
        o.duplicates,
        o.rejected.len(),
        if summary.behind > 0 {
            format!("; fell behind the clock in {} seconds (the node or network is slower than the profile)", summary.behind)
        } else {
            String::new()
        }
    );
    Ok(())
}
