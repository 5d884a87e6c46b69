//! The ingest checker (JetStream mode): publishers write straight into the
//! stream, so invalid input is already there when the node sees it. Agents
//! skip it as if absent; this actor copies each invalid message, with its
//! reason and original bytes, to `<prefix>.dlq.<reason>` and counts inputs
//! by outcome. Its position is kept in the snapshot bucket (key `_ingest`);
//! a copy repeated after a crash carries the same `Nats-Msg-Id`
//! (`dlq-seq-<n>`), so the DLQ holds each message once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::backend::Backend;
use super::jetstream::{decode, JetStream, JsReader};
use super::Shared;
use crate::log::{Seq, Snapshot};

const KEY: &str = "_ingest";

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
    reader: JsReader,
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
        let prefix = js.prefix().to_owned();
        let reader = js
            .raw_reader(position + 1, format!("{prefix}.in.>"))
            .await?;
        myself.send_message(Pull)?;
        Ok(IngestState {
            js,
            shared: args.shared,
            reader,
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
        let batch = s.reader.raw_batch(512, Duration::from_millis(200)).await?;
        for m in &batch {
            match decode(&s.prefix, m) {
                Ok(e) if e.source.starts_with("faultline/") => {}
                Ok(_) => {
                    s.shared.metrics.ingested.inc();
                }
                Err(r) => {
                    s.shared.metrics.reject(r.reason());
                    tracing::warn!(seq = m.seq, subject = %m.subject, reason = r.reason(), error = %r, "invalid input copied to the DLQ");
                    s.js.dead_letter(&r, &m.payload, &format!("seq-{}", m.seq))
                        .await?;
                }
            }
            s.position = m.seq;
        }
        if s.position > s.saved
            && (s.position - s.saved >= 1000 || s.saved_at.elapsed() > Duration::from_secs(5))
        {
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
