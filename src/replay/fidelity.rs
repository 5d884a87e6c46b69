//! The fidelity check: re-derive every decision and compare it with the log.
//!
//! Each agent runs in a lane of its own (a one-agent engine), because a
//! node's agents snapshot independently: a lane starts right after its own
//! snapshot, or at the start of the log. Every record is applied to every
//! lane that has not seen it, and the decisions the lane makes wait, by id,
//! for the logged decision with the same id; the two are compared as bytes
//! (msgpack, the log's own encoding). Comparing by id rather than position
//! holds for offline logs, where a decision follows its cause at once, and
//! for live ones, where agents write independently and inputs interleave.
//!
//! The check is pure: no I/O, no clock. The caller streams records in; what
//! it keeps is the decisions still waiting for their logged twin (a handful
//! on a faithful log) and the first [`MAX_LISTED`] divergences.

use std::collections::BTreeMap;

use serde::Serialize;

use super::range::Selection;
use crate::engine::{Engine, SnapshotError};
use crate::events::{summary, Codec, Event};
use crate::log::{Seq, Snapshot};

/// Divergences listed in full; the rest are counted.
pub const MAX_LISTED: usize = 100;

/// How a re-derived decision and the log disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceKind {
    /// Same id, different content.
    Different,
    /// The log has it; replay did not decide it.
    NotReproduced,
    /// Replay decided it; the log does not have it.
    New,
}

/// One decision that did not reproduce, with both versions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// How.
    pub kind: DivergenceKind,
    /// The decision id.
    pub id: String,
    /// Sequence of the record that caused it.
    pub cause: Seq,
    /// The logged version.
    pub logged: Option<serde_json::Value>,
    /// The re-derived version.
    pub replayed: Option<serde_json::Value>,
}

/// What the check found over the selection.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Fidelity {
    /// Logged decisions the check covered (selected, and caused after the lane's start).
    pub logged: u64,
    /// Of those, reproduced byte for byte.
    pub reproduced: u64,
    /// Decisions replay made that the log does not have.
    pub new: u64,
    /// The first divergences, in log order.
    pub divergences: Vec<Divergence>,
    /// Divergences beyond those listed.
    pub unlisted: u64,
}

impl Fidelity {
    /// `reproduced N of N` holds.
    pub fn exact(&self) -> bool {
        self.reproduced == self.logged && self.new == 0
    }
}

struct Lane {
    agent: String,
    engine: Engine,
    start: Seq,
}

struct Waiting {
    cause: Seq,
    bytes: Vec<u8>,
    event: Event,
    selected: bool,
}

/// The check in progress.
pub struct Check {
    lanes: Vec<Lane>,
    selection: Selection,
    waiting: BTreeMap<String, Waiting>,
    found: Fidelity,
    scratch: Vec<u8>,
}

impl Check {
    /// A check over `selection` with one lane per `(agent, engine)`; each
    /// engine is fresh or restored, and its next sequence is where its lane starts.
    pub fn new(lanes: Vec<(String, Engine)>, selection: Selection) -> Self {
        let lanes: Vec<Lane> = lanes
            .into_iter()
            .map(|(agent, engine)| Lane {
                start: engine.next_seq(),
                agent,
                engine,
            })
            .collect();
        Self {
            lanes,
            selection,
            waiting: BTreeMap::new(),
            found: Fidelity::default(),
            scratch: Vec::new(),
        }
    }

    /// Where each lane starts: agent and first sequence it applies.
    pub fn lanes(&self) -> Vec<(String, Seq)> {
        self.lanes
            .iter()
            .map(|l| (l.agent.clone(), l.start))
            .collect()
    }

    /// The first sequence any lane still needs.
    pub fn start(&self) -> Seq {
        self.lanes.iter().map(|l| l.start).min().unwrap_or(1)
    }

    /// Takes in the record at `seq`. `raw` is its stored msgpack, when the
    /// source has it (compared as is); otherwise the record is re-encoded.
    /// With `apply` false the record is only matched against waiting
    /// decisions (reading past the range for decisions logged late).
    pub fn record(&mut self, seq: Seq, record: &Event, raw: Option<&[u8]>, apply: bool) {
        if record.event_type().is_decision() {
            self.logged_decision(seq, record, raw);
        }
        if !apply {
            return;
        }
        for lane in &mut self.lanes {
            if lane.engine.next_seq() > seq {
                continue;
            }
            for produced in lane.engine.replay_one(seq, record) {
                let selected = self.selection.wants(seq, &produced);
                let bytes = Codec::MsgPack.encode(&produced);
                self.waiting.insert(
                    produced.id.clone(),
                    Waiting {
                        cause: seq,
                        bytes,
                        event: produced,
                        selected,
                    },
                );
            }
        }
    }

    /// Passes over a record that is not part of the log's truth (input a
    /// live node refused): no lane applies it.
    pub fn skip(&mut self, seq: Seq) {
        for lane in &mut self.lanes {
            if lane.engine.next_seq() <= seq {
                lane.engine.skip_to(seq);
            }
        }
    }

    /// Whether re-derived decisions still wait for their logged twin.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn logged_decision(&mut self, seq: Seq, logged: &Event, raw: Option<&[u8]>) {
        let selected = self.selection.wants(seq, logged);
        let cause = logged.causeseq.unwrap_or(seq);
        match self.waiting.remove(&logged.id) {
            Some(w) => {
                let bytes = match raw {
                    Some(r) => r,
                    None => {
                        self.scratch = Codec::MsgPack.encode(logged);
                        &self.scratch
                    }
                };
                let same = w.bytes == bytes;
                if selected {
                    self.found.logged += 1;
                    if same {
                        self.found.reproduced += 1;
                    } else {
                        self.diverge(Divergence {
                            kind: DivergenceKind::Different,
                            id: logged.id.clone(),
                            cause: w.cause,
                            logged: Some(json(logged)),
                            replayed: Some(json(&w.event)),
                        });
                    }
                }
            }
            None => {
                let lane = self
                    .lanes
                    .iter()
                    .find(|l| l.agent == summary::agent(logged));
                // Caused before the lane's snapshot: the lane made it before it started.
                if lane.is_some_and(|l| cause < l.start) || !selected {
                    return;
                }
                self.found.logged += 1;
                self.diverge(Divergence {
                    kind: DivergenceKind::NotReproduced,
                    id: logged.id.clone(),
                    cause,
                    logged: Some(json(logged)),
                    replayed: None,
                });
            }
        }
    }

    fn diverge(&mut self, d: Divergence) {
        if self.found.divergences.len() < MAX_LISTED {
            self.found.divergences.push(d);
        } else {
            self.found.unlisted += 1;
        }
    }

    /// Ends the check: decisions still waiting were never logged.
    pub fn finish(mut self) -> (Fidelity, Vec<(String, Engine)>) {
        let waiting = std::mem::take(&mut self.waiting);
        let mut left: Vec<Waiting> = waiting.into_values().filter(|w| w.selected).collect();
        left.sort_by_key(|w| w.cause);
        for w in left {
            self.found.new += 1;
            self.diverge(Divergence {
                kind: DivergenceKind::New,
                id: w.event.id.clone(),
                cause: w.cause,
                logged: None,
                replayed: Some(json(&w.event)),
            });
        }
        let lanes = self
            .lanes
            .into_iter()
            .map(|l| (l.agent, l.engine))
            .collect();
        (self.found, lanes)
    }

    /// Every lane's snapshot (covering everything applied so far), by agent.
    pub fn snapshots(&self) -> Vec<(String, Snapshot)> {
        self.lanes
            .iter()
            .map(|l| (l.agent.clone(), l.engine.snapshot()))
            .collect()
    }
}

/// Restores a lane's engine from `snapshot` if it was taken under the same
/// policy and covers no more than `before` (so the lane can still apply the
/// first record of interest); otherwise the engine stays fresh.
pub fn restore_lane(
    engine: &mut Engine,
    snapshot: &Snapshot,
    before: Seq,
) -> Result<bool, SnapshotError> {
    if snapshot.covers >= before {
        return Ok(false);
    }
    engine.restore(snapshot)?;
    Ok(true)
}

fn json(e: &Event) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or_default()
}
