//! The node supervisor: one child per agent, plus the ticker and (on
//! JetStream) the ingest checker.
//!
//! A child that fails is restarted from scratch: an agent from its last
//! snapshot plus the log tail, never with the state it had when it panicked.
//! Restart intensity is limited (`restart_limit` restarts in
//! `restart_window_s`, counted over all children, as in OTP): past it the
//! node stops and says why, rather than thrashing. A record that crashes the
//! same agent `crash_limit` times is parked: copied to the dead-letter store
//! with reason `agent_crash` and skipped by that agent from then on (until its
//! next snapshot covers it, after which it is never read again).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use super::agent_actor::{AgentActor, AgentArgs, AgentMsg, SnapshotPolicy};
use super::backend::Backend;
use super::ingest::{IngestActor, IngestArgs};
use super::metrics::Metrics;
use super::settings::NodeSettings;
use super::ticker::{Ticker, TickerArgs};
use super::{AgentSpec, Shared};
use crate::events::{Codec, Rejection};
use crate::log::Seq;

/// Messages to the supervisor.
pub enum SupMsg {
    /// Stop every child gracefully, then stop.
    Shutdown(RpcReplyPort<()>),
}

/// What the supervisor starts from.
pub struct SupArgs {
    /// The agents.
    pub specs: Vec<AgentSpec>,
    /// The log.
    pub backend: Backend,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Settings.
    pub settings: NodeSettings,
    /// Policy hash for snapshots.
    pub config_hash: String,
}

/// The supervisor actor.
pub struct NodeSupervisor;

#[derive(Clone)]
enum Child {
    Agent(AgentArgs),
    Ticker,
    Ingest,
}

/// Supervisor state.
pub struct SupState {
    args: SupArgs,
    children: BTreeMap<ActorId, (Child, ActorCell)>,
    agents: BTreeMap<&'static str, ActorRef<AgentMsg>>,
    restarts: VecDeque<Instant>,
    crashes: BTreeMap<(&'static str, Seq), u32>,
    stopping: bool,
}

impl SupState {
    async fn spawn(
        &mut self,
        myself: &ActorRef<SupMsg>,
        child: Child,
    ) -> Result<(), ActorProcessingErr> {
        let cell = myself.get_cell();
        let (id, actor_cell) = match &child {
            Child::Agent(a) => {
                let (r, _) = Actor::spawn_linked(None, AgentActor, a.clone(), cell).await?;
                self.agents.insert(a.spec.name, r.clone());
                (r.get_id(), r.get_cell())
            }
            Child::Ticker => {
                let (r, _) = Actor::spawn_linked(
                    None,
                    Ticker,
                    TickerArgs {
                        backend: self.args.backend.clone(),
                        shared: self.args.shared.clone(),
                    },
                    cell,
                )
                .await?;
                (r.get_id(), r.get_cell())
            }
            Child::Ingest => {
                let (r, _) = Actor::spawn_linked(
                    None,
                    IngestActor,
                    IngestArgs {
                        backend: self.args.backend.clone(),
                        shared: self.args.shared.clone(),
                    },
                    cell,
                )
                .await?;
                (r.get_id(), r.get_cell())
            }
        };
        self.children.insert(id, (child, actor_cell));
        Ok(())
    }

    /// Counts a restart; `Err` when the intensity limit is exceeded.
    fn allow_restart(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let window = Duration::from_secs(self.args.settings.restart_window_s);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        if self.restarts.len() > self.args.settings.restart_limit {
            return Err(format!(
                "{} restarts within {}s (limit {}); stopping the node",
                self.restarts.len(),
                self.args.settings.restart_window_s,
                self.args.settings.restart_limit
            ));
        }
        Ok(())
    }

    /// The record an agent was applying when it failed, if it was applying one.
    fn culprit(&self, agent: &str) -> Option<Seq> {
        let s = self.args.shared.statuses().get(agent).cloned()?;
        let current = s.current.load(std::sync::atomic::Ordering::Relaxed);
        (current > s.applied).then_some(current)
    }

    async fn park(&mut self, a: &mut AgentArgs, seq: Seq) {
        a.parked.insert(seq);
        self.args
            .shared
            .metrics
            .parked
            .get_or_create(&Metrics::agent(a.spec.name))
            .inc();
        let r = Rejection::AgentCrash {
            agent: a.spec.name.to_owned(),
            seq,
            times: self.args.settings.crash_limit,
        };
        let original = match self.args.backend.reader(seq).await {
            Ok(mut reader) => match reader.next_batch(1, Duration::from_secs(2)).await {
                Ok(b) => b
                    .into_iter()
                    .find(|(s, _)| *s == seq)
                    .and_then(|(_, e)| e.ok())
                    .map(|e| Codec::MsgPack.encode(&e))
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        if let Err(e) = self
            .args
            .backend
            .dead_letter(&r, &original, &format!("crash-{}-{seq}", a.spec.name))
            .await
        {
            tracing::error!(agent = a.spec.name, seq, error = %e, "could not dead-letter a parked record");
        }
        tracing::error!(
            agent = a.spec.name,
            seq,
            "record crashed the agent repeatedly; parked in the DLQ and skipped"
        );
    }
}

impl Actor for NodeSupervisor {
    type Msg = SupMsg;
    type State = SupState;
    type Arguments = SupArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupMsg>,
        args: SupArgs,
    ) -> Result<SupState, ActorProcessingErr> {
        let mut state = SupState {
            children: BTreeMap::new(),
            agents: BTreeMap::new(),
            restarts: VecDeque::new(),
            crashes: BTreeMap::new(),
            stopping: false,
            args,
        };
        let agent_args: Vec<AgentArgs> = state
            .args
            .specs
            .iter()
            .map(|spec| AgentArgs {
                spec: spec.clone(),
                backend: state.args.backend.clone(),
                shared: state.args.shared.clone(),
                config_hash: state.args.config_hash.clone(),
                snapshots: SnapshotPolicy {
                    every: state.args.settings.snapshot_every,
                    min_interval: Duration::from_millis(
                        state.args.settings.snapshot_min_interval_ms,
                    ),
                    interval: Duration::from_secs(state.args.settings.snapshot_interval_s),
                },
                parked: BTreeSet::new(),
            })
            .collect();
        for a in agent_args {
            state.spawn(&myself, Child::Agent(a)).await?;
        }
        state.spawn(&myself, Child::Ticker).await?;
        if matches!(state.args.backend, Backend::JetStream(_)) {
            state.spawn(&myself, Child::Ingest).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupMsg>,
        msg: SupMsg,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupMsg::Shutdown(reply) => {
                state.stopping = true;
                for (name, agent) in &state.agents {
                    let r = agent
                        .call(
                            AgentMsg::Shutdown,
                            Some(Duration::from_secs(state.args.settings.shutdown_timeout_s)),
                        )
                        .await;
                    if !matches!(r, Ok(ractor::rpc::CallResult::Success(()))) {
                        tracing::warn!(agent = name, "did not finish shutting down in time");
                    }
                }
                for (_, cell) in state.children.values() {
                    cell.stop(Some("shutdown".to_owned()));
                }
                let _ = reply.send(());
                myself.stop(Some("shutdown".to_owned()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupMsg>,
        event: SupervisionEvent,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) if !state.stopping => {
                (cell, reason.unwrap_or_else(|| "stopped".to_owned()))
            }
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        let Some((child, _)) = state.children.remove(&cell.get_id()) else {
            return Ok(());
        };
        if let Err(limit) = state.allow_restart() {
            tracing::error!("{limit}");
            *state
                .args
                .shared
                .failure
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(limit);
            state.stopping = true;
            for (_, c) in state.children.values() {
                c.stop(Some("node failed".to_owned()));
            }
            myself.stop(Some("restart intensity exceeded".to_owned()));
            return Ok(());
        }
        let child = match child {
            Child::Agent(mut a) => {
                let name = a.spec.name;
                tracing::error!(agent = name, reason = %why, "agent failed; restarting from its last snapshot");
                state
                    .args
                    .shared
                    .metrics
                    .restarts
                    .get_or_create(&Metrics::agent(name))
                    .inc();
                state.args.shared.status(name, |s| s.restarts += 1);
                if let Some(seq) = state.culprit(name) {
                    let n = state.crashes.entry((name, seq)).or_insert(0);
                    *n += 1;
                    if *n >= state.args.settings.crash_limit {
                        state.park(&mut a, seq).await;
                    }
                }
                Child::Agent(a)
            }
            other => {
                tracing::error!(reason = %why, "node task failed; restarting it");
                other
            }
        };
        state.spawn(&myself, child).await
    }
}
