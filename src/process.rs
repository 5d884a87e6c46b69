//! Offline processing: the engine with no network, over a file or stdin.
//!
//! `faultline process` reads observations (JSON lines, or a msgpack stream),
//! appends each to the log (in memory, or a sled directory with `--data`),
//! runs the agents to quiescence and writes every decision as a JSON line in
//! log order. Same input and config, byte-identical output. A bad record is
//! reported with its line (or record) number and skipped; it never gets a
//! sequence number.

mod msgpack_stream;

use std::io::{BufRead, Read, Write};
use std::sync::Arc;

pub use msgpack_stream::frame_len;

use crate::actors::breaker::BreakerAgent;
use crate::actors::guard::GuardAgent;
use crate::actors::hub::HubAgent;
use crate::actors::predictor::PredictorAgent;
use crate::actors::rollback::RollbackAgent;
use crate::actors::router::RouterAgent;
use crate::config::Config;
use crate::engine::{Agent, Engine};
use crate::events::{decode_input, Codec, Event, Rejection};
use crate::log::{EventLog, LogError};

/// Counts reported at the end of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records read (non-blank lines, or msgpack values).
    pub read: u64,
    /// Accepted into the log.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Decisions written.
    pub decisions: u64,
    /// Ticks the engine appended for timers.
    pub ticks: u64,
}

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Reading input or writing output failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A msgpack stream lost its framing; nothing after this point can be read.
    #[error("msgpack record {record} at byte {offset}: {message}; the rest of the stream cannot be framed")]
    Framing {
        /// 1-based record number.
        record: u64,
        /// Byte offset of the record.
        offset: usize,
        /// What was wrong.
        message: String,
    },
}

/// The agents `config` enables, in the fixed order.
pub fn agents(config: &Config) -> Vec<Box<dyn Agent>> {
    config
        .agents
        .iter()
        .map(|name| make_agent(config, name))
        .collect()
}

/// A fresh agent named `name` (one of [`crate::config::AGENTS`]) under `config`.
pub fn make_agent(config: &Config, name: &str) -> Box<dyn Agent> {
    match name {
        "predictor" => Box::new(PredictorAgent::new(Arc::new(config.predictor.clone()))),
        "breaker" => Box::new(BreakerAgent::new(Arc::new(config.breaker.clone()))),
        "router" => Box::new(RouterAgent::new(Arc::new(config.router.clone()))),
        "rollback" => Box::new(RollbackAgent::new(Arc::new(config.rollback.clone()))),
        "guard" => Box::new(GuardAgent::new(Arc::new(config.guard.clone()))),
        "hub" => Box::new(HubAgent::new(Arc::new(config.hub.clone()))),
        other => panic!("{other:?} is not an agent (config validation lists them)"),
    }
}

/// An engine with the agents `config` enables.
pub fn engine(config: &Config) -> Engine {
    Engine::new(agents(config), config.hash())
}

/// Runs records through the engine, logging and writing decisions.
pub struct Processor<'a, W: Write> {
    engine: Engine,
    log: Option<&'a mut dyn EventLog>,
    out: W,
    batch: Vec<Event>,
    /// Counts so far.
    pub stats: Stats,
}

impl<'a, W: Write> Processor<'a, W> {
    /// A processor writing decisions to `out` and, if given, records to `log`.
    /// With a log that already holds records, the engine must have been restored to its end.
    pub fn new(engine: Engine, log: Option<&'a mut dyn EventLog>, out: W) -> Self {
        Self {
            engine,
            log,
            out,
            batch: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Handles one encoded record; a rejection is returned (and counted), not fatal.
    pub fn handle(
        &mut self,
        codec: Codec,
        bytes: &[u8],
    ) -> Result<Option<Rejection>, ProcessError> {
        self.stats.read += 1;
        match decode_input(codec, bytes) {
            Ok(event) => {
                self.ingest(event)?;
                Ok(None)
            }
            Err(r) => {
                self.stats.rejected += 1;
                Ok(Some(r))
            }
        }
    }

    /// Ingests one validated event.
    pub fn ingest(&mut self, event: Event) -> Result<(), ProcessError> {
        self.stats.accepted += 1;
        self.batch.clear();
        self.engine.ingest(event, &mut self.batch);
        if let Some(log) = self.log.as_deref_mut() {
            log.append(&self.batch)?;
        }
        for e in &self.batch {
            if e.event_type().is_decision() {
                self.stats.decisions += 1;
                serde_json::to_writer(&mut self.out, e).map_err(std::io::Error::from)?;
                self.out.write_all(b"\n")?;
            } else if e.source == crate::engine::ENGINE_SOURCE {
                self.stats.ticks += 1;
            }
        }
        Ok(())
    }

    /// Flushes output and log; returns the engine and counts.
    pub fn finish(mut self) -> Result<(Engine, Stats), ProcessError> {
        self.out.flush()?;
        if let Some(log) = self.log.as_deref_mut() {
            log.flush()?;
        }
        Ok((self.engine, self.stats))
    }
}

/// Processes JSON lines from `input`; `report(line, rejection)` hears every bad line.
pub fn json_lines<R: BufRead, W: Write>(
    p: &mut Processor<'_, W>,
    mut input: R,
    mut report: impl FnMut(u64, &Rejection),
) -> Result<(), ProcessError> {
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(r) = p.handle(Codec::Json, &line)? {
            report(number, &r);
        }
    }
}

/// Processes a msgpack stream from `input`; `report(record, rejection)` hears every bad record.
pub fn msgpack<R: Read, W: Write>(
    p: &mut Processor<'_, W>,
    mut input: R,
    mut report: impl FnMut(u64, &Rejection),
) -> Result<(), ProcessError> {
    let mut buf = Vec::new();
    input.read_to_end(&mut buf)?;
    let mut offset = 0;
    let mut record = 0u64;
    while offset < buf.len() {
        record += 1;
        let len = frame_len(&buf[offset..]).map_err(|message| ProcessError::Framing {
            record,
            offset,
            message,
        })?;
        if let Some(r) = p.handle(Codec::MsgPack, &buf[offset..offset + len])? {
            report(record, &r);
        }
        offset += len;
    }
    Ok(())
}
