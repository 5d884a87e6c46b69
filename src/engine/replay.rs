//! Replay verification: a log through fresh agents must reproduce every
//! logged decision byte for byte.

use super::Engine;
use crate::events::{Codec, Event};
use crate::log::Seq;

/// Where a replay first disagreed with the log.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Divergence {
    /// The agents made a decision the log does not have at that point.
    #[error("record {cause}: replay decided {produced}, the log has {logged}")]
    Different {
        /// Sequence of the cause.
        cause: Seq,
        /// What replay produced (JSON).
        produced: String,
        /// What the log holds there (JSON), or "nothing".
        logged: String,
    },
    /// The log holds decisions the agents did not make again.
    #[error("the log holds {count} decision(s) replay did not make, first: {first}")]
    Missing {
        /// How many.
        count: usize,
        /// The first (JSON).
        first: String,
    },
}

impl Engine {
    /// Applies log records without checking anything (e.g. to rebuild state).
    pub fn apply_log(&mut self, records: &[(Seq, Event)]) {
        for (seq, record) in records {
            self.replay_one(*seq, record);
        }
    }

    /// Replays `records` (a log slice starting where this engine stands) and
    /// checks each decision the agents make against the decisions logged, in
    /// order. Decisions in the slice caused by records before it (the engine
    /// already made those before its snapshot) are not expected again.
    /// Returns how many decisions matched.
    pub fn verify_replay(&mut self, records: &[(Seq, Event)]) -> Result<usize, Divergence> {
        let start = records.first().map_or(0, |(seq, _)| *seq);
        let mut logged = records.iter().filter(|(_, e)| {
            e.event_type().is_decision() && e.causeseq.is_some_and(|c| c >= start)
        });
        let mut matched = 0;
        for (seq, record) in records {
            for produced in self.replay_one(*seq, record) {
                let want = logged.next();
                let same = want.is_some_and(|(_, w)| {
                    Codec::MsgPack.encode(w) == Codec::MsgPack.encode(&produced)
                });
                if !same {
                    return Err(Divergence::Different {
                        cause: *seq,
                        produced: json(&produced),
                        logged: want.map_or_else(|| "nothing".to_owned(), |(_, w)| json(w)),
                    });
                }
                matched += 1;
            }
        }
        let rest: Vec<_> = logged.collect();
        if let Some((_, first)) = rest.first() {
            return Err(Divergence::Missing {
                count: rest.len(),
                first: json(first),
            });
        }
        Ok(matched)
    }
}

fn json(e: &Event) -> String {
    String::from_utf8(Codec::Json.encode(e)).expect("JSON is UTF-8")
}
