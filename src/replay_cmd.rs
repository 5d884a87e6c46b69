//! `faultline replay` and `faultline export`: the shell around
//! [`crate::replay`]. Sources (a sled log, a JetStream stream, a bundle),
//! the policy in force, snapshots, the progress bar and the output files are
//! here; the analysis is pure.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use async_nats::jetstream;

use crate::config::Config;
use crate::events::{Codec, Event};
use crate::log::{Durability, Seq, SledLog, Snapshot};
use crate::node::jetstream::{decode, last_config, snapshot_value, JsReader, RawMsg};
use crate::node::settings::{NodeSettings, RawNode};
use crate::replay::range::{Bound, Selection};
use crate::replay::{bundle, html, render, IncidentFinder, Options, Replay, Report};

/// sled's page cache while reading a log once through: enough for its
/// read-ahead, and memory stays flat however long the log.
const SCAN_CACHE: u64 = 16 << 20;

/// Where the log is read from.
#[derive(Debug, Clone)]
pub enum From {
    /// A sled data directory.
    Sled(PathBuf),
    /// A JetStream stream: URL, stream, prefix, snapshot bucket.
    Nats(Box<NodeSettings>),
    /// A bundle file.
    Bundle(PathBuf),
}

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A terminal summary.
    Text,
    /// The whole report as one JSON document.
    Json,
}

/// What `faultline replay` was asked.
#[derive(Debug)]
pub struct ReplayArgs {
    /// The log.
    pub from_log: From,
    /// `--from`, `--to` as given.
    pub range: (Option<String>, Option<String>),
    /// Only these services.
    pub services: Vec<String>,
    /// One incident.
    pub incident: Option<String>,
    /// What-if policy.
    pub what_if: Option<PathBuf>,
    /// Skip the fidelity check.
    pub no_check: bool,
    /// Output format.
    pub format: ReportFormat,
    /// Where the summary or JSON goes (`-`: stdout).
    pub output: PathBuf,
    /// Also write the HTML report here.
    pub html: Option<PathBuf>,
}

/// One record as a source stores it. Sources only read; records are
/// decoded by the reader of [`Source::each`], on the analysis side.
enum Raw {
    /// Msgpack from a sled log.
    Sled(Seq, sled::IVec),
    /// Msgpack from a bundle, or `None` for input the node refused.
    Bundle(Seq, Option<Vec<u8>>),
    /// A stream message.
    Nats(RawMsg),
}

/// One record, decoded.
struct Item<'a> {
    seq: Seq,
    event: Result<Event, String>,
    /// The stored msgpack, when the source has it.
    raw: Option<&'a [u8]>,
}

impl Raw {
    /// Decodes the record; `origin` names the log in errors, `prefix` is the
    /// stream's subject prefix. Input a node refused is an `Err` event; a
    /// stored record that does not decode stops the replay.
    fn decode<'a>(&'a self, origin: &str, prefix: &str) -> Result<Item<'a>> {
        let stored = |seq: Seq, raw: &'a [u8]| {
            let event = Codec::MsgPack
                .decode(raw)
                .map_err(|e| anyhow!("record {seq} in {origin} does not decode: {e}"))?;
            anyhow::Ok(Item {
                seq,
                event: Ok(event),
                raw: Some(raw),
            })
        };
        match self {
            Raw::Sled(seq, raw) => stored(*seq, raw),
            Raw::Bundle(seq, Some(raw)) => stored(*seq, raw),
            Raw::Bundle(seq, None) => Ok(Item {
                seq: *seq,
                event: Err("refused by the node".to_owned()),
                raw: None,
            }),
            Raw::Nats(m) => {
                let decision = m.subject[prefix.len()..].starts_with(".out.");
                Ok(Item {
                    seq: m.seq,
                    event: decode(prefix, m).map_err(|r| r.to_string()),
                    raw: decision.then_some(&m.payload[..]),
                })
            }
        }
    }
}

/// A log to read.
enum Source {
    Sled {
        log: SledLog,
        dir: PathBuf,
        next: Seq,
        buf: VecDeque<(Seq, sled::IVec)>,
    },
    Nats(Box<Nats>),
    Bundle {
        path: PathBuf,
        reader: bundle::Reader<BufReader<File>>,
    },
}

struct Nats {
    rt: tokio::runtime::Runtime,
    settings: NodeSettings,
    stream: jetstream::stream::Stream,
    js: jetstream::Context,
    reader: Option<JsReader>,
    buf: VecDeque<RawMsg>,
    end: Seq,
}

impl Source {
    fn open(from: &From) -> Result<Self> {
        Ok(match from {
            From::Sled(dir) => {
                if !dir.join("db").exists() && !dir.join("conf").exists() {
                    bail!(
                        "{} is not a faultline data directory (no sled database in it)",
                        dir.display()
                    );
                }
                let log = SledLog::open_with_cache(dir, Durability::Buffered, SCAN_CACHE)
                    .with_context(|| {
                        format!(
                            "cannot open the log in {} (is a node running on it?)",
                            dir.display()
                        )
                    })?;
                Source::Sled {
                    log,
                    dir: dir.clone(),
                    next: 1,
                    buf: VecDeque::new(),
                }
            }
            From::Bundle(path) => {
                let f = File::open(path)
                    .with_context(|| format!("cannot open bundle {}", path.display()))?;
                let reader = bundle::Reader::open(BufReader::with_capacity(1 << 16, f))
                    .with_context(|| format!("cannot read bundle {}", path.display()))?;
                Source::Bundle {
                    path: path.clone(),
                    reader,
                }
            }
            From::Nats(settings) => Source::Nats(Box::new(Nats::open(settings)?)),
        })
    }

    fn describe(&self) -> String {
        match self {
            Source::Sled { dir, .. } => format!("sled log {}", dir.display()),
            Source::Nats(n) => format!(
                "JetStream stream {} at {}",
                n.settings.stream,
                n.settings.nats_url.as_deref().unwrap_or("")
            ),
            Source::Bundle { path, reader } => {
                format!(
                    "bundle {} (cut from {})",
                    path.display(),
                    reader.header.source
                )
            }
        }
    }

    fn last_seq(&self) -> Seq {
        match self {
            Source::Sled { log, .. } => crate::log::EventLog::last_seq(log),
            Source::Nats(n) => n.end,
            Source::Bundle { .. } => 0,
        }
    }

    /// The policy text in force, if the log says.
    fn policy(&mut self) -> Result<Option<String>> {
        match self {
            Source::Sled { log, .. } => Ok(log.policy()?),
            Source::Nats(n) => n.policy(),
            Source::Bundle { reader, .. } => Ok(Some(reader.header.policy.clone())),
        }
    }

    fn snapshots(&mut self, agents: &[&str]) -> Result<Vec<(String, Snapshot)>> {
        if let Source::Bundle { reader, .. } = self {
            return Ok(reader.snapshots.clone());
        }
        let mut out = Vec::new();
        for a in agents {
            let s = match self {
                Source::Sled { log, .. } => crate::log::EventLog::get_snapshot(log, a)?,
                Source::Nats(n) => n.snapshot(a)?,
                Source::Bundle { .. } => unreachable!("answered above"),
            };
            if let Some(s) = s {
                out.push(((*a).to_owned(), s));
            }
        }
        Ok(out)
    }

    /// Positions the source at `seq` (a bundle reads once, from its start).
    fn seek(&mut self, seq: Seq) -> Result<()> {
        match self {
            Source::Sled { next, buf, .. } => {
                *next = seq.max(1);
                buf.clear();
            }
            Source::Nats(n) => n.seek(seq)?,
            Source::Bundle { .. } => {}
        }
        Ok(())
    }

    /// Reads from `seq` on, handing each record to `each` until it returns
    /// `false` or the log ends. Reading runs on a thread of its own, a few
    /// batches ahead, so that it overlaps the analysis; records are decoded
    /// and handed over one at a time, in log order, on the calling thread
    /// (decoding there also frees each event on the thread that made it).
    fn each(&mut self, seq: Seq, mut each: impl FnMut(Item<'_>) -> Result<bool>) -> Result<()> {
        const BATCH: usize = 1024;
        self.seek(seq)?;
        let origin = match self {
            Source::Bundle { path, .. } => format!("bundle {}", path.display()),
            _ => "the log".to_owned(),
        };
        let prefix = match self {
            Source::Nats(n) => n.settings.prefix.clone(),
            _ => String::new(),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Raw>>>(8);
        std::thread::scope(|scope| {
            scope.spawn(move || loop {
                let mut batch = Vec::with_capacity(BATCH);
                let read = self.fill(&mut batch, BATCH);
                let more = read.is_ok() && batch.len() == BATCH;
                // A send fails once the reader stopped listening: stop too.
                if !batch.is_empty() && tx.send(Ok(batch)).is_err() {
                    return;
                }
                if let Err(e) = read {
                    let _ = tx.send(Err(e));
                }
                if !more {
                    return;
                }
            });
            for batch in rx {
                for raw in &batch? {
                    if !each(raw.decode(&origin, &prefix)?)? {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    }

    /// Reads up to `max` records into `batch` (fewer at the end of the log).
    fn fill(&mut self, batch: &mut Vec<Raw>, max: usize) -> Result<()> {
        while batch.len() < max {
            match self.next()? {
                Some(raw) => batch.push(raw),
                None => break,
            }
        }
        Ok(())
    }

    /// The next stored record, not decoded.
    fn next(&mut self) -> Result<Option<Raw>> {
        match self {
            Source::Sled { log, next, buf, .. } => {
                if buf.is_empty() {
                    buf.extend(log.read_raw_from(*next, 4096)?);
                }
                let Some((seq, raw)) = buf.pop_front() else {
                    return Ok(None);
                };
                *next = seq + 1;
                Ok(Some(Raw::Sled(seq, raw)))
            }
            Source::Nats(n) => Ok(n.next()?.map(Raw::Nats)),
            Source::Bundle { reader, path } => Ok(reader
                .next_record()
                .with_context(|| format!("reading bundle {}", path.display()))?
                .map(|(seq, raw)| Raw::Bundle(seq, raw))),
        }
    }
}

impl Drop for Nats {
    /// The consumer's drop talks to its runtime: it must happen inside it.
    fn drop(&mut self) {
        let _inside = self.rt.enter();
        self.reader.take();
    }
}

impl Nats {
    fn open(settings: &NodeSettings) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let url = settings.nats_url.clone().unwrap_or_default();
        let (js, stream) = rt.block_on(async {
            let client = crate::tools::target::nats_connect(&url).await?;
            let js = jetstream::new(client);
            let stream = js.get_stream(&settings.stream).await.map_err(|e| {
                anyhow!(
                    "no stream {} at {url} ({e}); is this a faultline node's server?",
                    settings.stream
                )
            })?;
            anyhow::Ok((js, stream))
        })?;
        let end = stream.cached_info().state.last_sequence;
        Ok(Self {
            rt,
            settings: settings.clone(),
            stream,
            js,
            reader: None,
            buf: VecDeque::new(),
            end,
        })
    }

    fn policy(&mut self) -> Result<Option<String>> {
        Ok(self
            .rt
            .block_on(last_config(&self.stream, &self.settings.prefix))
            .map(|c| c.content))
    }

    fn snapshot(&mut self, agent: &str) -> Result<Option<Snapshot>> {
        let bucket = self.settings.snapshot_bucket.clone();
        self.rt.block_on(async {
            let Ok(kv) = self.js.get_key_value(bucket).await else {
                return Ok(None);
            };
            let v = kv
                .get(agent)
                .await
                .map_err(|e| anyhow!("reading {agent}'s snapshot: {e}"))?;
            Ok(v.and_then(|v| snapshot_value(&v)))
        })
    }

    fn seek(&mut self, seq: Seq) -> Result<()> {
        let reader = self.rt.block_on(JsReader::attach(
            &self.stream,
            &self.settings.prefix,
            seq,
            String::new(),
        ))?;
        self.reader = Some(reader);
        self.buf.clear();
        Ok(())
    }

    fn next(&mut self) -> Result<Option<RawMsg>> {
        let reader = self
            .reader
            .as_mut()
            .ok_or_else(|| anyhow!("not positioned"))?;
        if self.buf.is_empty() {
            if reader.position >= self.end {
                return Ok(None);
            }
            let batch = self
                .rt
                .block_on(reader.raw_batch(1000, Duration::from_secs(10)))?;
            if batch.is_empty() {
                bail!(
                    "no records from the stream within 10 s (read up to {} of {})",
                    reader.position,
                    self.end
                );
            }
            self.buf.extend(batch);
        }
        let m = self.buf.pop_front().expect("filled above");
        Ok((m.seq <= self.end).then_some(m))
    }
}

/// The policy in force: the log's own, or the built-in defaults (with a note).
fn policy_in_force(source: &mut Source) -> Result<(Config, Option<String>)> {
    match source.policy()? {
        Some(text) if !text.trim().is_empty() => Ok((
            Config::from_toml(&text, "the policy recorded in the log")
                .map_err(|e| anyhow!("{e}"))?,
            Some(text),
        )),
        Some(_) => Ok((Config::defaults(), Some(String::new()))),
        None => Ok((Config::defaults(), None)),
    }
}

/// Resolves `--from`/`--to`/`--service`/`--incident` into a selection (one
/// pass over the log to find an incident).
fn selection(
    source: &mut Source,
    range: &(Option<String>, Option<String>),
    services: &[String],
    incident: Option<&str>,
) -> Result<Selection> {
    if let Source::Bundle { reader, .. } = source {
        if range.0.is_some() || range.1.is_some() || incident.is_some() || !services.is_empty() {
            bail!("a bundle replays the range it was cut for; leave out --from, --to, --service and --incident");
        }
        return Ok(reader.header.selection.clone());
    }
    if let Some(id) = incident {
        if range.0.is_some() || range.1.is_some() {
            bail!("--incident sets the range itself; leave out --from and --to");
        }
        let mut finder = IncidentFinder::new(id);
        let bar = crate::tools::cmd::bar(
            source.last_seq(),
            "{spinner} finding the incident [{bar:30}] {pos}/{len} records, eta {eta}",
        );
        source.each(1, |item| {
            if let Ok(e) = &item.event {
                finder.record(e);
            }
            if let Some(b) = bar.as_ref().filter(|_| item.seq % 4096 == 0) {
                b.set_position(item.seq);
            }
            Ok(true)
        })?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let mut s = finder.selection().map_err(|e| anyhow!(e))?;
        if !services.is_empty() {
            s.services.retain(|x| services.contains(x));
        }
        return Ok(s);
    }
    let now = crate::node::wall_now();
    let s = Selection {
        from: range
            .0
            .as_deref()
            .map(|t| Bound::parse("--from", t, now))
            .transpose()?,
        to: range
            .1
            .as_deref()
            .map(|t| Bound::parse("--to", t, now))
            .transpose()?,
        services: services.to_vec(),
    };
    s.validate()?;
    Ok(s)
}

/// One engine per agent, and notes on snapshots not used.
type Lanes = (Vec<(String, crate::engine::Engine)>, Vec<String>);

/// Builds the lanes: snapshots help only when the range starts at a sequence.
fn lanes_for(source: &mut Source, config: &Config, selection: &Selection) -> Result<Lanes> {
    let agents: Vec<&str> = config.agents.clone();
    let bundle = matches!(source, Source::Bundle { .. });
    let before = match selection.from {
        Some(Bound::Seq(s)) => s,
        _ if bundle => Seq::MAX,
        _ => 1,
    };
    let snapshots = if before > 1 {
        source.snapshots(&agents)?
    } else {
        Vec::new()
    };
    let (lanes, notes) = crate::replay::lanes(config, &snapshots, before);
    if bundle && !notes.is_empty() {
        bail!(
            "the bundle's snapshots do not restore: {}",
            notes.join("; ")
        );
    }
    Ok((lanes, notes))
}

/// Runs a replay over `source`; returns the report.
fn run(source: &mut Source, config: &Config, options: Options) -> Result<Report> {
    let (lanes, notes) = lanes_for(source, config, &options.selection)?;
    for n in notes {
        eprintln!("faultline replay: {n}");
    }
    let mut replay = Replay::new(config, lanes, options);
    let start = replay.start();
    let last = source.last_seq();
    let bar = crate::tools::cmd::bar(
        last.saturating_sub(start) + 1,
        "{spinner} replaying [{bar:30}] {pos}/{len} records, {per_sec}, eta {eta}",
    );
    let mut n = 0u64;
    source.each(start, |item| {
        replay.record(item.seq, item.event.as_ref().map_err(|_| ()), item.raw);
        n += 1;
        if let Some(b) = bar.as_ref().filter(|_| n % 4096 == 0) {
            b.set_position(item.seq.saturating_sub(start) + 1);
        }
        Ok(replay.wants_after(item.seq))
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(replay.finish(source.describe()))
}

fn load_policy(path: &Path) -> Result<Config> {
    Config::load(path).map_err(|e| anyhow!("{e}"))
}

/// `faultline replay`.
pub fn replay(args: &ReplayArgs) -> Result<()> {
    let mut source = Source::open(&args.from_log)?;
    let (config, recorded) = policy_in_force(&mut source)?;
    if recorded.is_none() {
        eprintln!(
            "faultline replay: the log does not record its policy; assuming the built-in defaults (decisions made under another policy will not reproduce)"
        );
    }
    let what_if = args.what_if.as_deref().map(load_policy).transpose()?;
    let selection = selection(
        &mut source,
        &args.range,
        &args.services,
        args.incident.as_deref(),
    )?;
    let incident = match &source {
        Source::Bundle { reader, .. } => reader.header.incident.clone(),
        _ => args.incident.clone(),
    };
    let report = run(
        &mut source,
        &config,
        Options {
            selection,
            incident,
            check: !args.no_check,
            what_if,
        },
    )?;
    let text = match args.format {
        ReportFormat::Text => render::text(&report),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    if args.output == Path::new("-") {
        std::io::stdout().lock().write_all(text.as_bytes())?;
    } else {
        std::fs::write(&args.output, text)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html::page(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("faultline replay: HTML report in {}", path.display());
    }
    if let Some(f) = &report.fidelity {
        if !f.exact() {
            bail!(
                "fidelity check failed: reproduced {} of {} decisions, {} new in replay",
                f.reproduced,
                f.logged,
                f.new
            );
        }
    }
    Ok(())
}

/// What `faultline export` was asked.
#[derive(Debug)]
pub struct ExportArgs {
    /// The log (sled or JetStream).
    pub from_log: From,
    /// `--from`, `--to` as given.
    pub range: (Option<String>, Option<String>),
    /// Only these services.
    pub services: Vec<String>,
    /// One incident.
    pub incident: Option<String>,
    /// The bundle file.
    pub out: PathBuf,
}

/// `faultline export`: replays up to the first record of the range, stores
/// every agent's state there, then copies the records from there to the
/// last one in range (decisions a live node logged late included).
pub fn export(args: &ExportArgs) -> Result<()> {
    if matches!(args.from_log, From::Bundle(_)) {
        bail!("export reads a log (--data or --nats), not a bundle");
    }
    if args.incident.is_none() && args.range.0.is_none() && args.range.1.is_none() {
        bail!("say what to export: --incident ID, or --from/--to");
    }
    let mut source = Source::open(&args.from_log)?;
    let (config, recorded) = policy_in_force(&mut source)?;
    let policy_text = recorded.unwrap_or_default();
    let selection = selection(
        &mut source,
        &args.range,
        &args.services,
        args.incident.as_deref(),
    )?;
    let (lanes, _) = lanes_for(&mut source, &config, &selection)?;
    let mut check = crate::replay::fidelity::Check::new(lanes, selection.clone());
    let mut file = Some(
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?,
    );
    let mut writer: Option<bundle::Writer<File>> = None;
    let to = selection.last_seq();
    let mut past = 0u64;
    let mut kept = 0u64;
    let bar = crate::tools::cmd::bar(
        source.last_seq(),
        "{spinner} exporting [{bar:30}] {pos}/{len} records, eta {eta}",
    );
    let described = source.describe();
    source.each(check.start(), |item| {
        let seq = item.seq;
        let selected = match &item.event {
            Ok(e) => selection.in_range(e.causeseq.unwrap_or(seq), e.time),
            Err(_) => false,
        };
        if writer.is_none() && selected {
            let header = bundle::Header {
                source: described.clone(),
                policy: policy_text.clone(),
                policy_hash: config.hash(),
                selection: selection.clone(),
                incident: args.incident.clone(),
                first_seq: seq,
                lanes: check
                    .snapshots()
                    .iter()
                    .map(|(a, s)| (a.clone(), s.covers))
                    .collect(),
            };
            let snaps = check.snapshots();
            writer = Some(bundle::Writer::new(
                file.take().expect("one file"),
                &header,
                &snaps,
            )?);
        }
        match &mut writer {
            None => match &item.event {
                Ok(e) => check.record(seq, e, item.raw, true),
                Err(_) => check.skip(seq),
            },
            Some(w) => {
                let raw = match (&item.event, &item.raw) {
                    (Err(_), _) => None,
                    (Ok(_), Some(r)) => Some(r.to_vec()),
                    (Ok(e), None) => Some(Codec::MsgPack.encode(e)),
                };
                w.record(seq, raw.as_deref())?;
                if selected {
                    w.mark();
                    kept = seq;
                }
            }
        }
        if let Some(b) = &bar {
            if seq % 4096 == 0 {
                b.set_position(seq);
            }
        }
        if to.is_some_and(|t| seq > t) {
            past += 1;
            if past > crate::replay::SETTLE_LIMIT {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let Some(w) = writer else {
        let _ = std::fs::remove_file(&args.out);
        bail!("nothing in the log falls in the range; no bundle written");
    };
    let len = w.finish(|f, len| f.set_len(len))?;
    eprintln!(
        "faultline export: {} (records up to #{kept}, {len} bytes, policy {})",
        args.out.display(),
        config.hash()
    );
    Ok(())
}

/// JetStream settings from `--nats` and the optional stream, prefix and bucket names.
pub fn nats_settings(
    url: &str,
    stream: Option<&str>,
    prefix: Option<&str>,
) -> Result<NodeSettings> {
    let mut raw = RawNode::default();
    let mut problems = crate::config::Problems::default();
    raw.set("nats_url", url, "--nats", &mut problems);
    if let Some(s) = stream {
        raw.set("stream", s, "--stream", &mut problems);
    }
    if let Some(p) = prefix {
        raw.set("prefix", p, "--prefix", &mut problems);
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    NodeSettings::from_layers(&RawNode::default(), &env, &raw).map_err(|e| anyhow!("{e}"))
}
