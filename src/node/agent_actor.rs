//! The shell around one agent: read the log, apply, write decisions, snapshot.
//!
//! The actor pulls a batch of records, applies each to its one-agent engine,
//! sends the decisions the batch caused (skipping any it finds it already
//! wrote before a crash) without waiting for the log to acknowledge them
//! ([`Writes`]), and goes on with the next batch. Every `snapshot_every`
//! records (but at most once per `snapshot_min_interval_ms`) or
//! `snapshot_interval_s` seconds it encodes a snapshot between batches and
//! stores it in the background once every decision sent before it is
//! durable: applying never waits for a large state to reach the store, and
//! a snapshot never covers a decision the log might not have.
//! A write that fails is retried with backoff, with the decisions kept in
//! memory: losing NATS for a while delays decisions, it does not lose them
//! or restart the agent. A panic while applying a record fails the actor; the
//! supervisor restarts it from its last snapshot (never resuming the
//! half-updated state).

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::backend::{Backend, Reader};
use super::feed::{Batch, Take};
use super::metrics::{DecisionLabel, Metrics};
use super::writes::Writes;
use super::{AgentSpec, NodeError, Shared};
use crate::engine::Engine;
use crate::events::{Event, Timestamp};
use crate::log::{Seq, Snapshot};

/// Records read per batch.
const BATCH: usize = 512;
/// How long a read waits for new records before checking in.
const WAIT: Duration = Duration::from_millis(200);

/// Messages an agent actor handles.
pub enum AgentMsg {
    /// Read and apply the next batch.
    Pull,
    /// Write what is pending, snapshot, and stop.
    Shutdown(RpcReplyPort<()>),
}

/// Everything an agent actor starts from (kept by the supervisor for restarts).
#[derive(Clone)]
pub struct AgentArgs {
    /// Which agent.
    pub spec: AgentSpec,
    /// The log.
    pub backend: Backend,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// The policy hash snapshots must carry.
    pub config_hash: String,
    /// When to snapshot.
    pub snapshots: SnapshotPolicy,
    /// Records this agent skips: they crashed it repeatedly and were parked.
    pub parked: BTreeSet<Seq>,
}

/// The actor.
pub struct AgentActor;

/// Its state.
pub struct Running {
    args: AgentArgs,
    /// Shared with state queries, which lock it between batches.
    engine: Arc<Mutex<Engine>>,
    /// A reader of its own, for when the agent is behind the shared feed,
    /// with the sequence it reads next.
    reader: Option<(Reader, Seq)>,
    /// Decisions found in the log after the snapshot: not to be written again.
    written: HashSet<String>,
    /// Decisions the batch being applied made, not yet sent.
    pending: Vec<Event>,
    /// Decisions sent, not yet confirmed durable.
    writes: Writes,
    /// A snapshot taken, to be stored once the writes sent before it
    /// (the count it holds) are durable.
    held: Option<(Snapshot, u64)>,
    /// Last sequence applied.
    applied: Seq,
    since_snapshot: u64,
    last_snapshot: Instant,
    /// The snapshot being written in the background, if one is.
    writing: Option<tokio::task::JoinHandle<Result<(), NodeError>>>,
    /// Looked up once: per-batch costs add up when batches are small.
    hot: Hot,
}

/// What every batch touches, resolved at start.
struct Hot {
    /// `faultline/<agent>`: the source of this agent's own decisions.
    source: String,
    /// The record being applied, for the supervisor.
    current: Arc<std::sync::atomic::AtomicU64>,
    apply_seconds: prometheus_client::metrics::histogram::Histogram,
    snapshot_age: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Hot {
    fn new(name: &'static str, shared: &Shared) -> Self {
        let label = Metrics::agent(name);
        Self {
            source: format!("faultline/{name}"),
            current: (shared.statuses().get(name))
                .map(|s| s.current.clone())
                .unwrap_or_default(),
            apply_seconds: shared.metrics.apply_seconds.get_or_create(&label).clone(),
            snapshot_age: shared.metrics.snapshot_age.get_or_create(&label).clone(),
        }
    }
}

impl Running {
    fn name(&self) -> &'static str {
        self.args.spec.name
    }

    /// Sends `pending` and confirms the writes already acknowledged;
    /// with `drain`, waits until every write sent is durable.
    async fn write(&mut self, drain: bool) {
        let (backend, shared, agent) = (&self.args.backend, &self.args.shared, self.args.spec.name);
        let mut count = |d: &Event| {
            (shared.metrics.decisions)
                .get_or_create(&DecisionLabel {
                    agent: agent.to_owned(),
                    r#type: d.event_type().name().to_owned(),
                })
                .inc();
        };
        let decided = std::mem::take(&mut self.pending);
        self.writes.send(backend, decided, &mut count).await;
        if drain {
            self.writes.drain(backend, &mut count).await;
        } else {
            self.writes.settle(backend, &mut count).await;
        }
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        // Poisoned only by a panic mid-batch, after which the actor stops
        // and its successor builds a new engine: never seen here.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Snapshots now and waits until the snapshot is stored (shutdown,
    /// after the writes are drained).
    async fn snapshot(&mut self) -> Result<(), NodeError> {
        self.held = None;
        if let Some(w) = self.writing.take() {
            Self::written(self.name(), w.await);
        }
        let snap = self.engine().snapshot();
        self.args.backend.put_snapshot(self.name(), &snap).await?;
        self.since_snapshot = 0;
        self.last_snapshot = Instant::now();
        Ok(())
    }

    /// Takes a snapshot when one is due, and stores the one taken in the
    /// background once the decisions sent before it are durable: a large
    /// state (the predictor's is hundreds of kB) takes milliseconds to
    /// store, and decisions must not wait behind it. One store at a time:
    /// while the last is still in flight, the next waits for a later batch.
    /// A snapshot is only ever a shortcut (restore replays the log after
    /// whichever one is stored), so one that fails to store is logged and
    /// the next one due tries again.
    fn snapshot_in_background(&mut self) {
        if let Some(w) = &mut self.writing {
            match futures_util::FutureExt::now_or_never(w) {
                None => return,
                Some(r) => Self::written(self.name(), r),
            }
            self.writing = None;
        }
        if self.held.is_none()
            && (self.args.snapshots).due(self.since_snapshot, self.last_snapshot.elapsed())
        {
            let snap = self.engine().snapshot();
            self.held = Some((snap, self.writes.sent()));
            self.since_snapshot = 0;
            self.last_snapshot = Instant::now();
        }
        if self
            .held
            .as_ref()
            .is_none_or(|(_, sent)| self.writes.confirmed() < *sent)
        {
            return;
        }
        let (snap, _) = self.held.take().expect("held");
        let (backend, name) = (self.args.backend.clone(), self.name());
        tracing::debug!(
            agent = name,
            covers = snap.covers,
            bytes = snap.bytes.len(),
            "snapshot"
        );
        self.writing = Some(tokio::spawn(async move {
            backend.put_snapshot(name, &snap).await
        }));
    }

    fn written(name: &str, r: Result<Result<(), NodeError>, tokio::task::JoinError>) {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(agent = name, error = %e, "storing a snapshot failed; the next one will try again")
            }
            Err(e) => tracing::warn!(agent = name, error = %e, "the snapshot writer failed"),
        }
    }

    /// Folds one batch under the engine lock (no await while it is held);
    /// returns the agent's next deadline.
    fn apply_batch(&mut self, batch: &Batch) -> Option<Timestamp> {
        let started = Instant::now();
        let mut applied_here = 0u32;
        let engine = self.engine.clone();
        let mut engine = engine.lock().unwrap_or_else(|p| p.into_inner());
        for (seq, record) in batch.iter() {
            let seq = *seq;
            if seq <= self.applied {
                continue;
            }
            // Relaxed: only the supervisor reads it, after this task has
            // ended (which orders it); a fence per record would cost more
            // than most agents' apply.
            (self.hot.current).store(seq, std::sync::atomic::Ordering::Relaxed);
            match record {
                Ok(event) if !self.args.parked.contains(&seq) => {
                    let decisions = engine.replay_one(seq, event);
                    applied_here += 1;
                    // The type first: it sits in the record itself, while the
                    // source string is a cold read for every input.
                    if event.event_type().is_decision() && event.source == self.hot.source {
                        self.args.shared.observe_decision(event);
                    }
                    for d in decisions {
                        if !self.written.remove(&d.id) {
                            self.pending.push(d);
                        }
                    }
                }
                // Invalid input (the ingest path dead-letters it) or a parked record.
                _ => engine.skip_to(seq),
            }
            self.applied = seq;
            self.since_snapshot += 1;
        }
        if applied_here > 0 {
            // One observation per batch (its mean per record): a clock read
            // and a histogram update per record would cost more than most
            // agents' apply itself.
            (self.hot.apply_seconds)
                .observe(started.elapsed().as_secs_f64() / f64::from(applied_here));
        }
        engine.next_deadline()
    }

    /// Reads and applies one batch; returns how many records it held.
    /// The next batch: from the shared feed, or (behind it) from a reader
    /// of the agent's own; empty when nothing came within [`WAIT`].
    async fn next_batch(&mut self) -> Result<Batch, NodeError> {
        let next = self.applied + 1;
        match self.args.shared.feed.take_or_wait(next, BATCH, WAIT).await {
            Take::Records(b) => Ok(b),
            Take::Ahead => Ok(Batch::default()),
            Take::Behind => {
                if self.reader.as_ref().is_none_or(|(_, at)| *at != next) {
                    self.reader = Some((self.args.backend.reader(next).await?, next));
                }
                let (reader, at) = self.reader.as_mut().expect("just opened");
                let batch = reader.next_batch(BATCH, WAIT).await?;
                if let Some((seq, _)) = batch.last() {
                    *at = seq + 1;
                }
                Ok(Batch::of(batch))
            }
        }
    }

    async fn step(&mut self) -> Result<usize, NodeError> {
        let batch = self.next_batch().await?;
        let n = batch.len();
        let name = self.name();
        let deadline = self.apply_batch(&batch);
        self.args.shared.feed.reached(name, self.applied);
        self.write(false).await;
        let applied = self.applied;
        self.args.shared.status(name, |s| {
            s.applied = applied;
            s.deadline = deadline;
            if n == 0 {
                s.caught_up = true;
            }
        });
        self.snapshot_in_background();
        (self.hot.snapshot_age).set(self.last_snapshot.elapsed().as_secs_f64());
        Ok(n)
    }
}

/// When an agent snapshots (the node's `snapshot_*` settings).
#[derive(Clone, Copy, Debug)]
pub struct SnapshotPolicy {
    /// After this many records...
    pub every: u64,
    /// ... but never more often than this: while catching up on a backlog,
    /// `every` records go by in milliseconds, and encoding and storing a
    /// state of hundreds of kB that often costs more than the replay it
    /// would save.
    pub min_interval: Duration,
    /// ... and at least this often while records come in.
    pub interval: Duration,
}

impl SnapshotPolicy {
    /// Whether a snapshot is due after `records` applied over `elapsed`
    /// since the last one.
    pub fn due(&self, records: u64, elapsed: Duration) -> bool {
        (records >= self.every && elapsed >= self.min_interval)
            || (records > 0 && elapsed >= self.interval)
    }
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = Running;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<Running, ActorProcessingErr> {
        let name = args.spec.name;
        let fresh = || Engine::new(vec![(args.spec.make)()], args.config_hash.clone());
        let mut engine = fresh();
        let mut covers = 0;
        if let Some(snap) = args.backend.get_snapshot(name).await? {
            match engine.restore(&snap) {
                Ok(()) => covers = snap.covers,
                Err(e) => {
                    tracing::warn!(agent = name, error = %e, "snapshot discarded; replaying the log from the start");
                    engine = fresh();
                }
            }
        }
        let written = args.backend.written_ids(name, covers).await?;
        tracing::info!(
            agent = name,
            from = covers + 1,
            already_written = written.len(),
            "agent starting"
        );
        args.shared.feed.reached(name, covers);
        args.shared.status(name, |s| {
            s.applied = covers;
            s.caught_up = false;
            s.deadline = engine.next_deadline();
        });
        let engine = Arc::new(Mutex::new(engine));
        args.shared.views.register(name, engine.clone());
        myself.send_message(AgentMsg::Pull)?;
        let hot = Hot::new(name, &args.shared);
        Ok(Running {
            args,
            engine,
            reader: None,
            written,
            pending: Vec::new(),
            writes: Writes::new(name),
            held: None,
            applied: covers,
            since_snapshot: 0,
            last_snapshot: Instant::now(),
            writing: None,
            hot,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut Running,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Pull => {
                if let Err(e) = state.step().await {
                    tracing::warn!(agent = state.name(), error = %e, "reading the log failed; reopening");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    state.reader = None;
                }
                myself.send_message(AgentMsg::Pull)?;
            }
            AgentMsg::Shutdown(reply) => {
                state.write(true).await;
                if state.since_snapshot > 0 || state.held.is_some() {
                    if let Err(e) = state.snapshot().await {
                        tracing::warn!(agent = state.name(), error = %e, "final snapshot failed");
                    }
                } else if let Some(w) = state.writing.take() {
                    Running::written(state.name(), w.await);
                }
                let _ = reply.send(());
                myself.stop(Some("shutdown".to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(every: u64, min_ms: u64, interval_s: u64) -> SnapshotPolicy {
        SnapshotPolicy {
            every,
            min_interval: Duration::from_millis(min_ms),
            interval: Duration::from_secs(interval_s),
        }
    }

    #[test]
    fn snapshots_every_n_records_but_not_more_often_than_the_minimum_interval() {
        let p = policy(10_000, 1000, 60);
        let ms = Duration::from_millis;
        // A backlog: 10,000 records in 50 ms are not enough on their own...
        assert!(!p.due(10_000, ms(50)));
        assert!(!p.due(190_000, ms(999)));
        // ... once the minimum interval has passed they are.
        assert!(p.due(10_000, ms(1000)));
        // Fewer records: only the long interval makes a snapshot due.
        assert!(!p.due(9_999, Duration::from_secs(59)));
        assert!(p.due(1, Duration::from_secs(60)));
        // Nothing applied: nothing to snapshot, however long.
        assert!(!p.due(0, Duration::from_secs(3600)));
        // No minimum: every `snapshot_every` records, as fast as they come.
        assert!(policy(10_000, 0, 60).due(10_000, ms(0)));
    }
}
