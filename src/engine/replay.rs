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

/// One way a live log disagrees with its replay.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LiveDivergence {
    /// A decision id appears more than once in the log.
    #[error("decision {id} is in the log {count} times")]
    Duplicate {
        /// The id.
        id: String,
        /// How often.
        count: usize,
    },
    /// Replay made a decision the log does not have.
    #[error("replay decided {produced}; the log does not have it")]
    Missing {
        /// What replay produced (JSON).
        produced: String,
    },
    /// The log has a decision replay did not make.
    #[error("the log has {logged}; replay did not decide it")]
    Unexpected {
        /// What the log holds (JSON).
        logged: String,
    },
    /// Same id, different content.
    #[error("decision {id}: replay decided {produced}, the log has {logged}")]
    Different {
        /// The id.
        id: String,
        /// Replay's (JSON).
        produced: String,
        /// The log's (JSON).
        logged: String,
    },
}

impl Engine {
    /// Replays a live node's log from the start (fresh agents) and checks
    /// that the decisions in it are exactly those the agents make again:
    /// each once, none missing, byte for byte. In a live log, agents write
    /// independently, so decisions are compared by id rather than position.
    /// Returns how many decisions matched, or every divergence found.
    pub fn verify_live(&mut self, records: &[(Seq, Event)]) -> Result<usize, Vec<LiveDivergence>> {
        use std::collections::BTreeMap;
        let mut logged: BTreeMap<&str, (usize, &Event)> = BTreeMap::new();
        for (_, e) in records.iter().filter(|(_, e)| e.event_type().is_decision()) {
            logged.entry(e.id.as_str()).or_insert((0, e)).0 += 1;
        }
        let mut problems: Vec<LiveDivergence> = logged
            .iter()
            .filter(|(_, (n, _))| *n > 1)
            .map(|(id, (n, _))| LiveDivergence::Duplicate {
                id: (*id).to_owned(),
                count: *n,
            })
            .collect();
        let mut matched = 0;
        for (seq, record) in records {
            for produced in self.replay_one(*seq, record) {
                match logged.remove(produced.id.as_str()) {
                    None => problems.push(LiveDivergence::Missing {
                        produced: json(&produced),
                    }),
                    Some((_, l))
                        if Codec::MsgPack.encode(l) != Codec::MsgPack.encode(&produced) =>
                    {
                        problems.push(LiveDivergence::Different {
                            id: produced.id.clone(),
                            produced: json(&produced),
                            logged: json(l),
                        })
                    }
                    Some(_) => matched += 1,
                }
            }
        }
        problems.extend(
            logged
                .values()
                .map(|(_, l)| LiveDivergence::Unexpected { logged: json(l) }),
        );
        if problems.is_empty() {
            Ok(matched)
        } else {
            Err(problems)
        }
    }
}
