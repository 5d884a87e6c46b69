//! The deterministic engine: agents as folds over the log.
//!
//! `state_n = apply(state_{n-1}, record_n)`, and what an agent emits is a pure
//! function of that state and record. The engine has no I/O: [`Engine::ingest`]
//! takes one validated input and returns the records to append, in log order:
//!
//! 1. a `faultline.tick` for every agent deadline that the input's time passes
//!    (time = the deadline), so timers fire exactly where they fired live when
//!    the log is replayed;
//! 2. the input itself;
//! 3. the decisions, each right after the record that caused it. Decisions are
//!    records too: every agent sees every record (its own decisions included,
//!    which is how the system breaker folds service breakers' decisions).
//!
//! The log is a FIFO of work: records are applied in sequence order, and a
//! record's decisions are appended at the end of the batch, so the batch from
//! one ingest is exactly the log slice a replay will walk. Decision envelopes
//! are derived, never random: `id = <agent>-<causeseq>-<n>`, `source =
//! faultline/<agent>`, `time` = the cause's time.
//!
//! Agents are applied in the fixed order predictor, breaker, router, rollback,
//! guard, hub (those present).

mod agent;
mod replay;
mod snapshot;

pub use agent::{
    decode_state, encode_state, in_slot, map_view, services_view, slot, Agent, Proposal,
};
pub use replay::{Divergence, LiveDivergence};
pub use snapshot::{SnapshotError, SNAPSHOT_FORMAT};

use crate::events::subject::SYSTEM_SUBJECT;
use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// `source` of records the engine writes itself (ticks).
pub const ENGINE_SOURCE: &str = "faultline/engine";

/// Runs a fixed set of agents over a log.
pub struct Engine {
    agents: Vec<Box<dyn Agent>>,
    next_seq: Seq,
    config_hash: String,
    scratch: Vec<Proposal>,
}

impl Engine {
    /// An engine over `agents` (in the fixed agent order), for a log whose next
    /// sequence is 1. `config_hash` identifies the policy; snapshots carry it.
    pub fn new(agents: Vec<Box<dyn Agent>>, config_hash: impl Into<String>) -> Self {
        Self {
            agents,
            next_seq: 1,
            config_hash: config_hash.into(),
            scratch: Vec::new(),
        }
    }

    /// The sequence the next record will get.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// The named agent's view of `service` (see [`Agent::view`]); `None` when
    /// the agent is not in this engine or knows nothing of the service.
    pub fn view(&self, agent: &str, service: Option<&str>) -> Option<serde_json::Value> {
        self.agents
            .iter()
            .find(|a| a.name() == agent)
            .and_then(|a| a.view(service))
    }

    /// The earliest deadline of any agent.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.agents.iter().filter_map(|a| a.next_deadline()).min()
    }

    /// Ingests one validated input: fires due timers, applies the input, and
    /// appends to `out` every record to log (ticks, the input, decisions), in order.
    pub fn ingest(&mut self, input: Event, out: &mut Vec<Event>) {
        self.advance_to(input.time, out);
        self.run(input, out);
    }

    /// Fires every timer whose deadline is at or before `time`, as tick records.
    pub fn advance_to(&mut self, time: Timestamp, out: &mut Vec<Event>) {
        let mut last_fired: Option<Timestamp> = None;
        while let Some(deadline) = self.next_deadline().filter(|d| *d <= time) {
            if last_fired.is_some_and(|l| deadline <= l) {
                debug_assert!(
                    false,
                    "an agent kept a deadline at or before a tick it was given"
                );
                break;
            }
            last_fired = Some(deadline);
            self.run(tick(deadline), out);
        }
    }

    /// Applies `record` and, transitively, the decisions it causes.
    fn run(&mut self, record: Event, out: &mut Vec<Event>) {
        let mut i = out.len();
        out.push(record);
        while i < out.len() {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.apply_one(seq, &out[i]);
            let cause = &out[i];
            let decisions = self.envelopes(seq, cause);
            out.extend(decisions);
            i += 1;
        }
    }

    /// Applies one record to every agent, leaving proposals in `scratch`.
    fn apply_one(&mut self, seq: Seq, record: &Event) {
        self.scratch.clear();
        for agent in &mut self.agents {
            let before = self.scratch.len();
            agent.apply(seq, record, &mut self.scratch);
            for p in &mut self.scratch[before..] {
                p.agent = agent.name();
            }
        }
    }

    /// Wraps the proposals in `scratch` into decision envelopes caused by `cause`.
    fn envelopes(&mut self, seq: Seq, cause: &Event) -> Vec<Event> {
        let mut counts: Vec<(&'static str, u32)> = Vec::new();
        self.scratch
            .drain(..)
            .map(|p| {
                let n = match counts.iter_mut().find(|(a, _)| *a == p.agent) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        counts.push((p.agent, 0));
                        0
                    }
                };
                Event {
                    id: format!("{}-{seq}-{n}", p.agent),
                    source: format!("faultline/{}", p.agent),
                    subject: p.subject,
                    time: cause.time,
                    datacontenttype: None,
                    causeseq: Some(seq),
                    causeid: Some(cause.id.clone()),
                    data: p.data,
                }
            })
            .collect()
    }

    /// Passes over record `seq` without applying it (invalid input in a live
    /// log, or a record parked after crashing an agent): the next record
    /// applied is `seq + 1`, and a snapshot taken now covers `seq`.
    pub fn skip_to(&mut self, seq: Seq) {
        self.next_seq = self.next_seq.max(seq + 1);
    }

    /// Applies a record read back from the log (no ticks are invented, nothing
    /// is appended) and returns the decisions the agents make for it.
    pub fn replay_one(&mut self, seq: Seq, record: &Event) -> Vec<Event> {
        self.apply_one(seq, record);
        self.next_seq = seq + 1;
        self.envelopes(seq, record)
    }
}

/// The tick record the engine appends when time reaches `deadline`.
pub fn tick(deadline: Timestamp) -> Event {
    Event {
        id: format!("tick-{}", deadline.nanos()),
        source: ENGINE_SOURCE.to_owned(),
        subject: SYSTEM_SUBJECT.to_owned(),
        time: deadline,
        datacontenttype: None,
        causeseq: None,
        causeid: None,
        data: Data::Tick(Default::default()),
    }
}
