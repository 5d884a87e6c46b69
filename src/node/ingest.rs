//! The ingest checker (JetStream mode): publishers write straight into the
//! stream, so invalid input is already there when the node sees it. Agents
//! skip it as if absent; this actor copies each invalid message, with its
//! reason and original bytes, to `<prefix>.dlq.<reason>` and counts inputs
//! by outcome. It reads the shared feed the agents read (the original bytes
//! of the rare invalid record are fetched by sequence), and a reader of its
//! own only while it is behind the feed's window (the feed waits for it as for
//! an agent). Its position is kept in the snapshot bucket (key `_ingest`);
//! a copy repeated after a crash carries the same `Nats-Msg-Id`
//! (`dlq-seq-<n>`), so the DLQ holds each message once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::backend::Backend;
use super::feed::{Batch, Take};
use super::jetstream::{decode, JetStream, JsReader};
use super::Shared;
use crate::log::{Seq, Snapshot};

const KEY: &str = "_ingest";
/// How often the position is stored. A restart re-checks what came after
/// it; copies repeated within the duplicate window are dropped by their id.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Message: read the next batch.
pub struct Pull;

/// What the checker needs.
pub struct IngestArgs {
    /// The log (JetStream).
    pub backend: Backend,
    /// Shared state.
    pub shared: Arc<Shared>,
}

/// The checker actor.
pub struct IngestActor;

/// Its state.
pub struct IngestState {
    js: Box<JetStream>,
    shared: Arc<Shared>,
    /// Its own reader (behind the feed), with the sequence it reads next.
    reader: Option<(JsReader, Seq)>,
    prefix: String,
    position: Seq,
    saved: Seq,
    saved_at: Instant,
}

impl Actor for IngestActor {
    type Msg = Pull;
    type State = IngestState;
    type Arguments = IngestArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Pull>,
        args: IngestArgs,
    ) -> Result<IngestState, ActorProcessingErr> {
        let Backend::JetStream(js) = args.backend else {
            return Err("the ingest checker runs on JetStream only".into());
        };
        let position = js.get_snapshot(KEY).await?.map_or(0, |s| s.covers);
        args.shared.feed.reached(KEY, position);
        let prefix = js.prefix().to_owned();
        myself.send_message(Pull)?;
        Ok(IngestState {
            js,
            shared: args.shared,
            reader: None,
            prefix,
            position,
            saved: position,
            saved_at: Instant::now(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Pull>,
        _: Pull,
        s: &mut IngestState,
    ) -> Result<(), ActorProcessingErr> {
        for (seq, record) in s.next_batch().await? {
            match record {
                Ok(true) => {}
                Ok(false) => {
                    s.shared.metrics.ingested.inc();
                }
                Err((r, bytes)) => {
                    let bytes = match bytes {
                        Some(b) => b,
                        None => s.js.raw_payload(seq).await?,
                    };
                    s.shared.metrics.reject(r.reason());
                    tracing::warn!(seq, reason = r.reason(), error = %r, "invalid input copied to the DLQ");
                    s.js.dead_letter(&r, &bytes, &format!("seq-{seq}")).await?;
                }
            }
            s.position = seq;
        }
        s.shared.feed.reached(KEY, s.position);
        // Once a second at most: a store round trip every thousand records
        // cost the server more than the check itself while catching up.
        if s.position > s.saved && s.saved_at.elapsed() >= SAVE_EVERY {
            s.js.put_snapshot(
                KEY,
                &Snapshot {
                    covers: s.position,
                    bytes: Vec::new(),
                },
            )
            .await?;
            s.saved = s.position;
            s.saved_at = Instant::now();
        }
        myself.send_message(Pull)?;
        Ok(())
    }
}

/// A record as the checker sees it: valid (and whether a node wrote it), or
/// refused with its bytes when they were at hand (own reader) or `None`
/// (from the feed: fetched by sequence).
type Checked = (
    Seq,
    Result<bool, (crate::events::Rejection, Option<bytes::Bytes>)>,
);

/// Written by a node: decisions, ticks and config records from a
/// `faultline/` source. The type is checked first: it sits in the record,
/// while the source string is a cold read for every input.
fn from_node(e: &crate::events::Event) -> bool {
    use crate::events::EventType;
    let t = e.event_type();
    (t.is_decision() || matches!(t, EventType::Tick | EventType::Config))
        && e.source.starts_with("faultline/")
}

impl IngestState {
    async fn next_batch(&mut self) -> Result<Vec<Checked>, crate::node::NodeError> {
        const WAIT: Duration = Duration::from_millis(200);
        let next = self.position + 1;
        let from_feed = |b: Batch| -> Vec<Checked> {
            b.iter()
                .map(|r| match &r.1 {
                    Ok(e) => (r.0, Ok(from_node(e))),
                    Err(x) => (r.0, Err((x.clone(), None))),
                })
                .collect()
        };
        match self.shared.feed.take_or_wait(next, 512, WAIT).await {
            Take::Records(b) => Ok(from_feed(b)),
            Take::Ahead => Ok(Vec::new()),
            Take::Behind => {
                if self.reader.as_ref().is_none_or(|(_, at)| *at != next) {
                    let r = self
                        .js
                        .raw_reader(next, format!("{}.>", self.prefix))
                        .await?;
                    self.reader = Some((r, next));
                }
                let (reader, at) = self.reader.as_mut().expect("just opened");
                let raw = reader.raw_batch(512, WAIT).await?;
                if let Some(m) = raw.last() {
                    *at = m.seq + 1;
                }
                Ok(raw
                    .into_iter()
                    .map(|m| match decode(&self.prefix, &m) {
                        Ok(e) => (m.seq, Ok(from_node(&e))),
                        Err(r) => (m.seq, Err((r, Some(m.payload)))),
                    })
                    .collect())
            }
        }
    }
}
