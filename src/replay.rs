//! Replay-based incident analysis (`faultline replay`, `faultline export`).
//!
//! The log holds every input and every decision, so a range of it answers
//! four questions exactly: what happened and in what order (the
//! [`timeline`]), why faultline did what it did (each decision's reason and
//! numbers, the guard's root cause and blast radius), whether the agents
//! would do it again ([`fidelity`]: every decision re-derived and compared
//! byte for byte), and what another policy would have done ([`whatif`]).
//!
//! [`Replay`] is the pure core: records go in one at a time, in log order,
//! from whatever source (a sled log, a JetStream stream, a bundle); it keeps
//! bounded state and returns a [`Report`]. Sources, progress and files are
//! the shell's (`replay_cmd.rs`).

pub mod bundle;
pub mod fidelity;
pub mod html;
pub mod range;
pub mod render;
pub mod signals;
pub mod timeline;
pub mod whatif;

use serde::Serialize;

use crate::config::Config;
use crate::engine::Engine;
use crate::events::{Data, Event, Timestamp};
use crate::log::{Seq, Snapshot};
use fidelity::{Check, Fidelity};
use range::{Bound, Selection};
use timeline::{Collector, Timeline};
use whatif::{Run, WhatIf};

/// Records read past the end of a sequence range for decisions logged
/// late (a live node writes a decision after inputs that arrived meanwhile).
pub const SETTLE_LIMIT: u64 = 100_000;

/// How far before an incident's first decision its replay starts (its lead-up).
pub const INCIDENT_LEAD_MS: u64 = 5 * 60 * 1000;
/// How far after its last decision its replay ends.
pub const INCIDENT_TRAIL_MS: u64 = 60 * 1000;

/// What to replay and check.
pub struct Options {
    /// Which records to report on.
    pub selection: Selection,
    /// The incident the selection was derived from, if any.
    pub incident: Option<String>,
    /// Run the fidelity check.
    pub check: bool,
    /// Re-derive under this policy too.
    pub what_if: Option<Config>,
}

/// Where the records came from and how much was read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Source {
    /// The log, stream or bundle.
    pub description: String,
    /// Records read (including warm-up before the range).
    pub read: u64,
    /// Where each agent's lane started (after its snapshot, or 1).
    pub lanes: Vec<(String, Seq)>,
    /// Records read that a live node refused (invalid input: in the stream,
    /// not part of the log's truth).
    pub refused: u64,
}

/// What the selected records held.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Selected records.
    pub selected: u64,
    /// Of those, inputs.
    pub inputs: u64,
    /// Decisions.
    pub decisions: u64,
    /// Ticks.
    pub ticks: u64,
    /// First and last selected sequence.
    pub seqs: Option<(Seq, Seq)>,
    /// Earliest and latest selected event time.
    pub times: Option<(Timestamp, Timestamp)>,
}

/// The analysis of a range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Where from (differs between a log and its bundle; the rest does not).
    pub source: Source,
    /// The range and services.
    pub selection: Selection,
    /// The incident the range was derived from.
    pub incident: Option<String>,
    /// The policy in force (hash).
    pub policy: String,
    /// What the range held.
    pub counts: Counts,
    /// The fidelity check, when run.
    pub fidelity: Option<Fidelity>,
    /// What happened.
    pub timeline: Timeline,
    /// The other policy's decisions side by side, when asked.
    pub what_if: Option<WhatIf>,
}

/// A replay in progress.
pub struct Replay {
    selection: Selection,
    incident: Option<String>,
    policy: String,
    check: Option<Check>,
    lanes: Vec<(String, Seq)>,
    collector: Collector,
    runs: Option<(Run, Run, String)>,
    counts: Counts,
    read: u64,
    refused: u64,
    settled: u64,
}

/// One engine per enabled agent, each restored from its snapshot when that
/// snapshot was taken under `config` and covers less than `before`.
/// Returns the lanes and a note for every snapshot not used.
pub fn lanes(
    config: &Config,
    snapshots: &[(String, Snapshot)],
    before: Seq,
) -> (Vec<(String, Engine)>, Vec<String>) {
    let mut notes = Vec::new();
    let lanes = config
        .agents
        .iter()
        .map(|name| {
            let mut engine = Engine::new(
                vec![crate::process::make_agent(config, name)],
                config.hash(),
            );
            if let Some((_, snap)) = snapshots.iter().find(|(a, _)| a == name) {
                match fidelity::restore_lane(&mut engine, snap, before) {
                    Ok(true) => {}
                    Ok(false) => notes.push(format!(
                        "{name}: snapshot covers {} (not before {before}); replaying from the start",
                        snap.covers
                    )),
                    Err(e) => {
                        notes.push(format!("{name}: snapshot not used ({e}); replaying from the start"));
                        engine = Engine::new(
                            vec![crate::process::make_agent(config, name)],
                            config.hash(),
                        );
                    }
                }
            }
            ((*name).to_owned(), engine)
        })
        .collect();
    (lanes, notes)
}

impl Replay {
    /// A replay of the log written under `config` (the policy in force), with
    /// lanes already built (see [`lanes`]).
    pub fn new(config: &Config, lanes: Vec<(String, Engine)>, options: Options) -> Self {
        let check = Check::new(lanes, options.selection.clone());
        let lane_starts = check.lanes();
        let runs = options.what_if.as_ref().map(|other| {
            (
                Run::new(crate::process::engine(config)),
                Run::new(crate::process::engine(other)),
                other.hash(),
            )
        });
        Self {
            check: options.check.then_some(check),
            lanes: lane_starts,
            selection: options.selection,
            incident: options.incident,
            policy: config.hash(),
            collector: Collector::new(),
            runs,
            counts: Counts::default(),
            read: 0,
            refused: 0,
            settled: 0,
        }
    }

    /// The first sequence the source must deliver.
    pub fn start(&self) -> Seq {
        if self.runs.is_some() {
            return 1;
        }
        match &self.check {
            Some(c) => c.start().min(self.selection.first_seq()),
            None => self.selection.first_seq(),
        }
    }

    /// Whether records after `seq` are still needed. Past a range that ends by
    /// sequence, reading goes on only while re-derived decisions wait for
    /// their logged twin, and at most [`SETTLE_LIMIT`] records.
    pub fn wants_after(&self, seq: Seq) -> bool {
        match self.selection.last_seq() {
            Some(to) if seq >= to => {
                self.check.as_ref().is_some_and(|c| c.waiting() > 0) && self.settled < SETTLE_LIMIT
            }
            _ => true,
        }
    }

    /// Takes the record at `seq`: `Ok` with its stored msgpack when the source
    /// has it, or `Err` for a record a live node refused.
    pub fn record(&mut self, seq: Seq, record: Result<&Event, ()>, raw: Option<&[u8]>) {
        self.read += 1;
        let Ok(e) = record else {
            if let Some(c) = &mut self.check {
                c.skip(seq);
            }
            self.refused += 1;
            return;
        };
        let past = self.selection.last_seq().is_some_and(|to| seq > to);
        if let Some(c) = &mut self.check {
            c.record(seq, e, raw, !past);
        }
        if past {
            self.settled += 1;
        } else if let Some((base, other, _)) = &mut self.runs {
            base.record(seq, e, &self.selection);
            other.record(seq, e, &self.selection);
        }
        if !self.selection.wants(seq, e) {
            return;
        }
        let c = &mut self.counts;
        c.selected += 1;
        if e.event_type().is_decision() {
            c.decisions += 1;
        } else if matches!(e.data, Data::Tick(_)) {
            c.ticks += 1;
        } else {
            c.inputs += 1;
        }
        c.seqs = Some(c.seqs.map_or((seq, seq), |(a, b)| (a.min(seq), b.max(seq))));
        c.times = Some(
            c.times
                .map_or((e.time, e.time), |(a, b)| (a.min(e.time), b.max(e.time))),
        );
        self.collector.observe(seq, e);
    }

    /// Every lane's snapshot now (for bundles: taken just before the range).
    pub fn snapshots(&self) -> Vec<(String, Snapshot)> {
        self.check
            .as_ref()
            .map(Check::snapshots)
            .unwrap_or_default()
    }

    /// Ends the replay.
    pub fn finish(self, source: String) -> Report {
        let fidelity = self.check.map(|c| c.finish().0);
        let what_if = self
            .runs
            .map(|(base, other, hash)| whatif::compare(base, other, self.policy.clone(), hash));
        Report {
            source: Source {
                description: source,
                read: self.read,
                lanes: self.lanes,
                refused: self.refused,
            },
            selection: self.selection,
            incident: self.incident,
            policy: self.policy,
            counts: self.counts,
            fidelity,
            timeline: self.collector.finish(),
            what_if,
        }
    }
}

/// Finds an incident's extent: feed it every record, then ask for the selection.
#[derive(Default)]
pub struct IncidentFinder {
    id: String,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    services: std::collections::BTreeSet<String>,
    resolved: bool,
    known: std::collections::BTreeSet<String>,
}

impl IncidentFinder {
    /// Looks for incident `id`.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ..Self::default()
        }
    }

    /// Takes a record.
    pub fn record(&mut self, e: &Event) {
        let Data::Incident(d) = &e.data else { return };
        if d.incident_id != self.id {
            if self.known.len() < 20 {
                self.known.insert(d.incident_id.clone());
            }
            return;
        }
        self.first = Some(self.first.map_or(e.time, |f| f.min(e.time)));
        self.last = Some(self.last.map_or(e.time, |l| l.max(e.time)));
        self.services.extend(d.services.iter().cloned());
        self.services.extend(d.root_cause.iter().cloned());
        self.services.insert(e.subject.clone());
        self.resolved = d.phase == crate::events::decision::IncidentPhase::Resolved;
    }

    /// The selection: from [`INCIDENT_LEAD_MS`] before its first decision to
    /// [`INCIDENT_TRAIL_MS`] after its resolution (to the end of the log
    /// while it is unresolved), about its services and the system scope. An error names some incidents the log does have.
    pub fn selection(self) -> Result<Selection, String> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            let known: Vec<String> = self.known.into_iter().collect();
            return Err(if known.is_empty() {
                format!(
                    "incident {:?} is not in the log, which holds no incidents",
                    self.id
                )
            } else {
                format!(
                    "incident {:?} is not in the log; it holds {}",
                    self.id,
                    known.join(", ")
                )
            });
        };
        let mut services = self.services;
        services.insert(crate::events::subject::SYSTEM_SUBJECT.to_owned());
        Ok(Selection {
            from: Some(Bound::Time(Timestamp::from_nanos(
                first.nanos() - INCIDENT_LEAD_MS as i64 * 1_000_000,
            ))),
            to: self
                .resolved
                .then(|| Bound::Time(last.plus_millis(INCIDENT_TRAIL_MS))),
            services: services.into_iter().collect(),
        })
    }
}
