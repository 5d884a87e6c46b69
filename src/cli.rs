//! Command-line interface. Flags mean the same in every command: `--data DIR`
//! a sled data directory, `--config FILE` the policy file, `--output FILE` a
//! file (`-` for stdout), `--out DIR` a directory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::events::EventType;
use crate::log::{read_all, Durability, EventLog, SledLog};
use crate::process::{self, Processor};
use crate::schema;

/// faultline: event-sourced error orchestration.
#[derive(Parser, Debug)]
#[command(name = "faultline", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// One CloudEvents JSON object per line.
    Json,
    /// Concatenated msgpack events (named fields).
    Msgpack,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agents over recorded events and print every decision as a JSON line.
    Process {
        /// Input file, or `-` for stdin.
        #[arg(long)]
        input: PathBuf,
        /// Input encoding.
        #[arg(long, value_enum, default_value = "json")]
        input_format: Format,
        /// Policy file (TOML); built-in defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where decisions go: a file, or `-` for stdout.
        #[arg(long, default_value = "-")]
        output: PathBuf,
        /// Keep the log in this sled directory (continuing a log already there).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Score every point of a metric exported as CSV (`timestamp,value`) with the predictor's detectors.
    Detect {
        /// CSV file with a header naming `timestamp` and `value` columns, or `-` for stdin.
        #[arg(long)]
        input: PathBuf,
        /// Where `timestamp,value,anomaly_score` goes: a file, or `-` for stdout.
        #[arg(long, default_value = "-")]
        output: PathBuf,
        /// Policy file (TOML) whose `[predictor.detector]` section to use.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Score the detector ensemble on the labelled synthetic corpus.
    EvalDetect {
        /// Corpus seeds: `N`, `A..=B`, `A..B` or a comma list of those.
        #[arg(long, default_value = "1..=16", value_parser = crate::detect::eval::parse_seeds)]
        seeds: ::std::vec::Vec<u64>,
        /// Policy file (TOML) whose `[predictor]` section to evaluate.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also write `detect-eval.md` and `detect-eval.json` into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a node: the agents over a live log, with HTTP ingest, health and metrics.
    ///
    /// Embedded on a sled log by default; on NATS JetStream with `--nats`.
    /// Settings come from the `[node]` table of `--config`, then `FAULTLINE_*`
    /// environment variables, then these flags (later wins).
    Run {
        /// Policy file (TOML), optionally with a `[node]` table.
        #[arg(long)]
        config: Option<PathBuf>,
        /// NATS server URL (JetStream mode), e.g. nats://127.0.0.1:4222.
        #[arg(long)]
        nats: Option<String>,
        /// Sled data directory (embedded mode).
        #[arg(long)]
        data: Option<PathBuf>,
        /// HTTP listen address.
        #[arg(long)]
        http: Option<String>,
        /// Log format: text or json.
        #[arg(long)]
        log_format: Option<String>,
        /// Any `[node]` setting, as KEY=VALUE (repeatable), e.g. --set snapshot_every=500.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Publish a JSON-lines event file to a node (JetStream or HTTP ingest), with progress.
    Publish {
        /// JSON-lines file of CloudEvents, or `-` for stdin.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        to: NodeTarget,
    },
    /// Follow decisions as the node makes them, one readable line each.
    Tail {
        #[command(flatten)]
        from: NodeTarget,
        /// Only this agent's decisions (breaker, router, ...).
        #[arg(long)]
        agent: Option<String>,
        /// Only decisions about this service.
        #[arg(long)]
        service: Option<String>,
        /// Print JSON lines instead.
        #[arg(long)]
        json: bool,
        /// Stop after this many decisions.
        #[arg(long)]
        count: Option<u64>,
        /// (--http) Start after this log sequence instead of now.
        #[arg(long)]
        after: Option<u64>,
    },
    /// Publish realistic observation traffic for a set of services, bounded in time and count.
    Load {
        /// minimal (3 services), baseline (8), stress (20, with a fault mid-run).
        #[arg(long, default_value = "baseline")]
        profile: String,
        #[command(flatten)]
        to: NodeTarget,
        /// Services (overrides the profile).
        #[arg(long)]
        services: Option<usize>,
        /// Seconds of traffic (overrides the profile).
        #[arg(long)]
        duration: Option<u64>,
        /// Stop after this many events.
        #[arg(long, default_value_t = 1_000_000)]
        max_events: u64,
        /// Seed of the traffic.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Simulate a failure scenario under no protection, the peers' default
    /// policies and faultline, side by side; print the table and write the report.
    Simulate {
        /// Scenario file (YAML; see simulations/README.md).
        file: PathBuf,
        /// Seed instead of the file's.
        #[arg(long)]
        seed: Option<u64>,
        /// Arms to run, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "none,peers,faultline")]
        arms: Vec<crate::simulate::arms::Arm>,
        /// Report directory: report.json, report.md and SVG charts (default faultline-sim/<scenario>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep the faultline arm's log in this (new) sled directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// faultline's policy file (TOML); built-in defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Analyse a range of the log: timeline, fidelity check, what-if under another policy.
    ///
    /// Reads a sled log (`--data`: a node's data directory, or one kept by
    /// `process`/`simulate`), a JetStream stream (`--nats`) or an incident
    /// bundle (`--bundle`). Exits non-zero when a logged decision does not reproduce.
    Replay {
        #[command(flatten)]
        log: LogSource,
        /// An incident bundle written by `faultline export`.
        #[arg(long, conflicts_with_all = ["data", "nats"])]
        bundle: Option<PathBuf>,
        #[command(flatten)]
        range: RangeArgs,
        /// Re-derive decisions under this policy too and show what changes.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Skip the fidelity check (timeline only).
        #[arg(long)]
        no_check: bool,
        /// Terminal summary or the whole report as JSON.
        #[arg(long, value_enum, default_value = "text")]
        format: crate::replay_cmd::ReportFormat,
        /// Where the summary or JSON goes: a file, or `-` for stdout.
        #[arg(long, default_value = "-")]
        output: PathBuf,
        /// Also write a self-contained HTML report (SVG timeline, tables).
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Write an incident bundle: the log slice, the policy in force and the
    /// agents' state before it, replayable anywhere with `replay --bundle`.
    Export {
        #[command(flatten)]
        log: LogSource,
        #[command(flatten)]
        range: RangeArgs,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the JSON Schema of every event type, or write them to a directory.
    Schema {
        /// Write one file per type into this directory instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only this type (e.g. `faultline.request`).
        #[arg(long = "type")]
        kind: Option<String>,
    },
}

/// Which log to read.
#[derive(clap::Args, Debug)]
struct LogSource {
    /// Sled data directory (a node's, or one kept by process/simulate).
    #[arg(long, conflicts_with = "nats")]
    data: Option<PathBuf>,
    /// NATS server URL of a JetStream node; credentials from FAULTLINE_NATS_* variables.
    #[arg(long)]
    nats: Option<String>,
    /// (--nats) Stream name (default as the node's).
    #[arg(long)]
    stream: Option<String>,
    /// (--nats) Subject prefix.
    #[arg(long)]
    prefix: Option<String>,
}

impl LogSource {
    fn resolve(self, bundle: Option<PathBuf>) -> Result<crate::replay_cmd::From> {
        use crate::replay_cmd::From;
        Ok(match (self.data, self.nats, bundle) {
            (Some(d), None, None) => From::Sled(d),
            (None, Some(url), None) => From::Nats(Box::new(crate::replay_cmd::nats_settings(
                &url,
                self.stream.as_deref(),
                self.prefix.as_deref(),
            )?)),
            (None, None, Some(b)) => From::Bundle(b),
            _ => bail!("say where the log is: --data DIR, --nats URL or --bundle FILE"),
        })
    }
}

/// Which part of the log.
#[derive(clap::Args, Debug)]
struct RangeArgs {
    /// Start: a log sequence (1200), an RFC 3339 time, or a time before now (-2h).
    #[arg(long, allow_hyphen_values = true)]
    from: Option<String>,
    /// End (inclusive), written like --from.
    #[arg(long, allow_hyphen_values = true)]
    to: Option<String>,
    /// Only records and decisions about this service (repeatable).
    #[arg(long)]
    service: Vec<String>,
    /// One incident: from 5 min before its first decision to 1 min after its resolution.
    #[arg(long)]
    incident: Option<String>,
}

/// Where a tool reaches the node.
#[derive(clap::Args, Debug)]
struct NodeTarget {
    /// NATS server URL (JetStream node); credentials from FAULTLINE_NATS_* variables.
    #[arg(long)]
    nats: Option<String>,
    /// HTTP base URL of an embedded node, e.g. http://127.0.0.1:7070.
    #[arg(long)]
    http: Option<String>,
    /// Bearer token for --http (default: FAULTLINE_HTTP_TOKEN).
    #[arg(long)]
    token: Option<String>,
    /// Subject prefix (--nats).
    #[arg(long, default_value = "faultline")]
    prefix: String,
}

impl NodeTarget {
    fn resolve(self) -> Result<crate::tools::target::Target> {
        crate::tools::target::Target::from_flags(self.nats, self.http, self.prefix, self.token)
    }
}

/// Runs the CLI; returns the process exit code.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Process {
            input,
            input_format,
            config,
            output,
            data,
        } => process_cmd(
            &input,
            input_format,
            config.as_deref(),
            &output,
            data.as_deref(),
        ),
        Command::Detect {
            input,
            output,
            config,
        } => detect_cmd(&input, &output, config.as_deref()),
        Command::EvalDetect { seeds, config, out } => {
            eval_detect_cmd(&seeds, config.as_deref(), out.as_deref())
        }
        Command::Schema { out, kind } => schema_cmd(out.as_deref(), kind.as_deref()),
        Command::Replay {
            log,
            bundle,
            range,
            config,
            no_check,
            format,
            output,
            html,
        } => crate::replay_cmd::replay(&crate::replay_cmd::ReplayArgs {
            from_log: log.resolve(bundle)?,
            range: (range.from, range.to),
            services: range.service,
            incident: range.incident,
            what_if: config,
            no_check,
            format,
            output,
            html,
        }),
        Command::Export { log, range, out } => {
            crate::replay_cmd::export(&crate::replay_cmd::ExportArgs {
                from_log: log.resolve(None)?,
                range: (range.from, range.to),
                services: range.service,
                incident: range.incident,
                out,
            })
        }
        Command::Simulate {
            file,
            seed,
            arms,
            out,
            data,
            config,
        } => {
            let policy = load_config(config.as_deref())?;
            crate::simulate_cmd::simulate(
                &crate::simulate_cmd::Args {
                    file,
                    seed,
                    arms,
                    out,
                    data,
                },
                &policy,
            )
        }
        Command::Run {
            config,
            nats,
            data,
            http,
            log_format,
            set,
        } => {
            let mut flags = Vec::new();
            let mut push = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    flags.push((k.to_owned(), v));
                }
            };
            push("nats_url", nats);
            push("data", data.map(|d| d.display().to_string()));
            push("http", http);
            push("log_format", log_format);
            for kv in set {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!("--set {kv:?}: expected KEY=VALUE");
                };
                flags.push((k.trim().to_owned(), v.to_owned()));
            }
            crate::run_cmd::run(config.as_deref(), &flags)
        }
        Command::Publish { input, to } => crate::tools::cmd::publish_cmd(&input, &to.resolve()?),
        Command::Tail {
            from,
            agent,
            service,
            json,
            count,
            after,
        } => crate::tools::cmd::tail_cmd(
            &from.resolve()?,
            &crate::tools::tail::TailArgs {
                agent,
                service,
                json,
                count,
                after,
            },
        ),
        Command::Load {
            profile,
            to,
            services,
            duration,
            max_events,
            seed,
        } => crate::tools::cmd::load_cmd(
            &to.resolve()?,
            &crate::tools::cmd::LoadArgs {
                profile,
                services,
                duration_s: duration,
                max_events,
                seed,
            },
        ),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("{e}")),
        None => Ok(Config::defaults()),
    }
}

/// `-` is stdin; a file also reports its size (for progress).
pub(crate) fn open_input(input: &Path) -> Result<(Box<dyn Read>, Option<u64>)> {
    if input == Path::new("-") {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let f = File::open(input).with_context(|| format!("cannot open input {}", input.display()))?;
    let size = f.metadata().ok().map(|m| m.len());
    Ok((Box::new(f), size))
}

/// `-` is stdout.
fn open_output(output: &Path) -> Result<Box<dyn Write>> {
    if output == Path::new("-") {
        return Ok(Box::new(io::stdout().lock()));
    }
    let f = File::create(output)
        .with_context(|| format!("cannot create output {}", output.display()))?;
    Ok(Box::new(f))
}

fn process_cmd(
    input: &Path,
    format: Format,
    config: Option<&Path>,
    output: &Path,
    data: Option<&Path>,
) -> Result<()> {
    let config = load_config(config)?;
    let (reader, _) = open_input(input)?;
    let writer = open_output(output)?;
    let mut engine = process::engine(&config);
    let mut sled = match data {
        Some(dir) => Some(
            SledLog::open(dir, Durability::Buffered)
                .with_context(|| format!("cannot open data directory {}", dir.display()))?,
        ),
        None => None,
    };
    if let Some(log) = &sled {
        if log.last_seq() > 0 {
            let records = read_all(log, 1)?;
            let n = engine.verify_replay(&records).with_context(|| {
                format!(
                    "the log in {} does not replay under this config",
                    data.unwrap().display()
                )
            })?;
            eprintln!(
                "faultline process: continuing a log of {} records ({n} decisions replayed)",
                records.len()
            );
        }
    }
    if let Some(log) = &mut sled {
        log.set_policy(&config.source_text)?;
    }
    let log = sled.as_mut().map(|l| l as &mut dyn EventLog);
    let mut p = Processor::new(engine, log, BufWriter::with_capacity(1 << 16, writer));
    let report = |n: u64, r: &crate::events::Rejection| {
        let unit = if matches!(format, Format::Json) {
            "line"
        } else {
            "record"
        };
        eprintln!(
            "{}:{unit} {n}: rejected ({}): {r}",
            input.display(),
            r.reason()
        );
    };
    match format {
        Format::Json => {
            process::json_lines(&mut p, BufReader::with_capacity(1 << 16, reader), report)?
        }
        Format::Msgpack => process::msgpack(&mut p, reader, report)?,
    }
    let (_, s) = p.finish()?;
    eprintln!(
        "faultline process: read {}, accepted {}, rejected {}, decisions {}, ticks {}",
        s.read, s.accepted, s.rejected, s.decisions, s.ticks
    );
    Ok(())
}

/// Unreadable rows reported one by one before the rest are only counted.
const DETECT_REPORT_LIMIT: u64 = 20;

fn detect_cmd(input: &Path, output: &Path, config: Option<&Path>) -> Result<()> {
    use std::io::IsTerminal;

    let config = load_config(config)?;
    let (reader, size) = open_input(input)?;
    let writer = open_output(output)?;
    let bar = match size {
        Some(len) if io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("a valid template"),
            );
            Some(bar)
        }
        _ => None,
    };
    let mut reported = 0u64;
    let name = input.display().to_string();
    let stats = crate::detect::run(
        BufReader::with_capacity(1 << 16, reader),
        BufWriter::with_capacity(1 << 16, writer),
        &config.predictor.detector,
        |bytes| {
            if let Some(b) = &bar {
                b.set_position(bytes);
            }
        },
        |line, message| {
            reported += 1;
            if reported <= DETECT_REPORT_LIMIT {
                let text = format!("{name}:{line}: {message}");
                match &bar {
                    Some(b) => b.println(text),
                    None => eprintln!("{text}"),
                }
            }
        },
    )
    .with_context(|| format!("cannot score {name}"))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if reported > DETECT_REPORT_LIMIT {
        eprintln!(
            "{name}: {} more unreadable rows not shown",
            reported - DETECT_REPORT_LIMIT
        );
    }
    eprintln!(
        "faultline detect: {} rows, {} scored, {} unreadable (scored 0), {} alarms at score >= {}",
        stats.rows, stats.scored, stats.unreadable, stats.alarms, config.predictor.hysteresis.raise
    );
    Ok(())
}

fn eval_detect_cmd(seeds: &[u64], config: Option<&Path>, out: Option<&Path>) -> Result<()> {
    let config = load_config(config)?;
    let report = crate::detect::eval::evaluate(
        seeds,
        &config.predictor.detector,
        &config.predictor.hysteresis,
    );
    let md = report.markdown();
    print!("{md}");
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("detect-eval.md");
        std::fs::write(&path, &md).with_context(|| format!("cannot write {}", path.display()))?;
        let path = dir.join("detect-eval.json");
        let json = serde_json::to_string_pretty(&report)? + "\n";
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn schema_cmd(out: Option<&Path>, kind: Option<&str>) -> Result<()> {
    let mut schemas = schema::all();
    if let Some(k) = kind {
        let Some(t) = EventType::from_name(k) else {
            let names: Vec<_> = EventType::ALL.iter().map(|t| t.name()).collect();
            bail!("unknown type {k:?}; expected one of {}", names.join(", "));
        };
        schemas.retain(|(name, _)| name == &format!("{}.json", t.name()));
    }
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, s) in &schemas {
                let path = dir.join(name);
                std::fs::write(&path, schema::file_text(s))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            eprintln!("wrote {} schemas to {}", schemas.len(), dir.display());
        }
        None => {
            let mut stdout = io::stdout().lock();
            for (_, s) in &schemas {
                stdout.write_all(schema::file_text(s).as_bytes())?;
            }
        }
    }
    Ok(())
}
