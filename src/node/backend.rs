//! The node's log, embedded (sled) or JetStream, behind one enum.
//!
//! What the node needs from a log is small: read records in order from a
//! sequence, append the records it writes itself (decisions, ticks, config;
//! and, for HTTP ingest, inputs), keep per-agent snapshots, find which
//! decisions an agent already wrote after a snapshot (exactly-once after a
//! crash), and keep rejected input with its reason. Two backends only, so an
//! enum rather than a trait object: no boxed futures on the per-record path.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::watch;

use super::jetstream::{JetStream, JsReader, PUBLISH_CHUNK};
use super::writes::{Ack, Sink};
use super::NodeError;
use crate::events::{Event, Rejection};
use crate::log::{EventLog, Seq, SledLog, Snapshot};

/// One record read from the log: the event, or why it is skipped.
pub type Record = (Seq, Result<Event, Rejection>);

/// What became of one input handed to [`Backend::append_inputs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Logged at this sequence.
    New(Seq),
    /// Its id was logged before, at this sequence (0 when the backend does not say).
    Duplicate(Seq),
}

/// The embedded log: a sled database shared by the node's writers and readers.
#[derive(Clone)]
pub struct Sled {
    log: Arc<Mutex<SledLog>>,
    last: watch::Sender<Seq>,
}

/// The log a node runs on.
#[derive(Clone)]
pub enum Backend {
    /// Embedded, single node.
    Sled(Sled),
    /// NATS JetStream.
    JetStream(Box<JetStream>),
}

/// Reads records in order from a starting sequence.
pub enum Reader {
    /// From the sled log.
    Sled {
        /// The log.
        sled: Sled,
        /// Next sequence to read.
        next: Seq,
        /// Wakes on appends.
        last: watch::Receiver<Seq>,
    },
    /// From a JetStream ordered consumer.
    JetStream(Box<JsReader>),
}

impl Sled {
    /// Wraps an open log.
    pub fn new(log: SledLog) -> Self {
        let (last, _) = watch::channel(log.last_seq());
        Self {
            log: Arc::new(Mutex::new(log)),
            last,
        }
    }

    /// Runs `f` on the log.
    pub fn with<T>(&self, f: impl FnOnce(&mut SledLog) -> T) -> T {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut log)
    }

    fn appended(&self) {
        let last = self.with(|l| l.last_seq());
        self.last.send_replace(last);
    }
}

impl Backend {
    /// A reader starting at `from`.
    pub async fn reader(&self, from: Seq) -> Result<Reader, NodeError> {
        Ok(match self {
            Backend::Sled(s) => Reader::Sled {
                sled: s.clone(),
                next: from.max(1),
                last: s.last.subscribe(),
            },
            Backend::JetStream(js) => Reader::JetStream(Box::new(js.reader(from).await?)),
        })
    }

    /// The last sequence in the log.
    pub async fn last_seq(&self) -> Result<Seq, NodeError> {
        match self {
            Backend::Sled(s) => Ok(s.with(|l| l.last_seq())),
            Backend::JetStream(js) => js.last_seq().await,
        }
    }

    /// Whether every record in the log is one the node reads, so that
    /// [`Backend::last_seq`] is where its agents' records end (a JetStream
    /// stream may also capture subjects outside the prefix).
    pub fn holds_only_the_nodes(&self) -> bool {
        match self {
            Backend::Sled(_) => true,
            Backend::JetStream(js) => js.whole(),
        }
    }

    /// Appends records the node writes (decisions, ticks, config), in order;
    /// returns once they are durable.
    pub async fn append(&self, records: &[Event]) -> Result<(), NodeError> {
        if records.is_empty() {
            return Ok(());
        }
        match self {
            Backend::Sled(s) => {
                s.with(|l| l.append(records))?;
                s.appended();
                Ok(())
            }
            Backend::JetStream(js) => js.append(records).await,
        }
    }

    /// Appends validated inputs, skipping ids already logged.
    pub async fn append_inputs(&self, inputs: &[Event]) -> Result<Vec<Appended>, NodeError> {
        match self {
            Backend::Sled(s) => {
                let out = s.with(|l| l.append_unique(inputs))?;
                s.appended();
                Ok(out
                    .into_iter()
                    .map(|r| match r {
                        Ok(seq) => Appended::New(seq),
                        Err(seq) => Appended::Duplicate(seq),
                    })
                    .collect())
            }
            Backend::JetStream(js) => js.append_inputs(inputs).await,
        }
    }

    /// Keeps rejected input with its reason.
    pub async fn dead_letter(
        &self,
        rejection: &Rejection,
        original: &[u8],
        origin: &str,
    ) -> Result<(), NodeError> {
        match self {
            Backend::Sled(s) => {
                s.with(|l| l.dead_letter(rejection.reason(), &rejection.to_string(), original))?;
                Ok(())
            }
            Backend::JetStream(js) => js.dead_letter(rejection, original, origin).await,
        }
    }

    /// The snapshot stored for `agent`.
    pub async fn get_snapshot(&self, agent: &str) -> Result<Option<Snapshot>, NodeError> {
        match self {
            Backend::Sled(s) => Ok(s.with(|l| l.get_snapshot(agent))?),
            Backend::JetStream(js) => js.get_snapshot(agent).await,
        }
    }

    /// Stores `agent`'s snapshot, replacing the previous one.
    pub async fn put_snapshot(&self, agent: &str, snapshot: &Snapshot) -> Result<(), NodeError> {
        match self {
            Backend::Sled(s) => Ok(s.with(|l| l.put_snapshot(agent, snapshot))?),
            Backend::JetStream(js) => js.put_snapshot(agent, snapshot).await,
        }
    }

    /// Ids of the decisions `agent` wrote after sequence `after`: what a
    /// restarted agent must not write again.
    pub async fn written_ids(&self, agent: &str, after: Seq) -> Result<HashSet<String>, NodeError> {
        let source = format!("faultline/{agent}");
        match self {
            Backend::Sled(s) => s.with(|l| {
                let mut ids = HashSet::new();
                let mut next = after + 1;
                loop {
                    let batch = l.read_from(next, 4096)?;
                    let Some((last, _)) = batch.last() else {
                        return Ok(ids);
                    };
                    next = last + 1;
                    ids.extend(
                        batch
                            .into_iter()
                            .filter(|(_, e)| e.source == source)
                            .map(|(_, e)| e.id),
                    );
                }
            }),
            Backend::JetStream(js) => js.written_ids(agent, after).await,
        }
    }

    /// The hash in the last `faultline.config` record, if any.
    pub async fn last_config_hash(&self) -> Result<Option<String>, NodeError> {
        match self {
            Backend::Sled(s) => Ok(s
                .with(|l| l.meta("config_hash"))?
                .map(|v| String::from_utf8_lossy(&v).into_owned())),
            Backend::JetStream(js) => js.last_config_hash().await,
        }
    }

    /// Appends a `faultline.config` record.
    pub async fn append_config(&self, record: Event, hash: &str) -> Result<(), NodeError> {
        self.append(std::slice::from_ref(&record)).await?;
        if let Backend::Sled(s) = self {
            s.with(|l| l.set_meta("config_hash", hash.as_bytes()))?;
            if let crate::events::Data::Config(c) = &record.data {
                s.with(|l| l.set_policy(&c.content))?;
            }
        }
        Ok(())
    }

    /// Housekeeping between batches: forgets dedupe ids older than `window` records.
    pub fn prune(&self, window: Seq) -> Result<(), NodeError> {
        if let Backend::Sled(s) = self {
            s.with(|l| {
                let before = l.last_seq().saturating_sub(window);
                l.forget_ids_before(before)
            })?;
        }
        Ok(())
    }
}

/// Decisions written behind the fold ([`Writes`](super::writes::Writes)):
/// on sled a write is durable when `send` returns; on JetStream it is
/// durable once the server acknowledges every record.
impl Sink for Backend {
    async fn send(&self, records: &[Event]) -> Ack {
        match self {
            Backend::Sled(_) => Ack::ready(self.append(records).await),
            // Too many to leave unacknowledged: written in confirmed chunks.
            Backend::JetStream(_) if records.len() > PUBLISH_CHUNK => {
                Ack::ready(self.append(records).await)
            }
            // Confirmed by a task of its own, so that its acknowledgements'
            // timeouts run from now, not from when the writes before it
            // are confirmed.
            Backend::JetStream(js) => match js.publish(records).await {
                Ok(acks) => {
                    let confirm = tokio::spawn(JetStream::confirm(acks));
                    Ack::new(confirm.map(|r| match r {
                        Ok(r) => r.map(drop),
                        Err(e) => Err(NodeError::Failed(format!("confirming a write: {e}"))),
                    }))
                }
                Err(e) => Ack::ready(Err(e)),
            },
        }
    }
}

impl Reader {
    /// Up to `max` records; waits up to `wait` for the first one. An empty
    /// result means nothing arrived in time.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, NodeError> {
        match self {
            Reader::Sled { sled, next, last } => {
                if *last.borrow_and_update() < *next {
                    let _ = tokio::time::timeout(wait, last.changed()).await;
                }
                let batch = sled.with(|l| l.read_from(*next, max))?;
                if let Some((seq, _)) = batch.last() {
                    *next = seq + 1;
                }
                Ok(batch.into_iter().map(|(s, e)| (s, Ok(e))).collect())
            }
            Reader::JetStream(r) => r.next_batch(max, wait).await,
        }
    }
}
