//! The ticker: time passing with no traffic, and lag.
//!
//! Every 200 ms it compares each agent's progress with the end of the log
//! (the `consumer_lag` gauge, and whether records wait that the agent does
//! not apply: `/readyz` reports that as stalled). When every agent has applied the whole log and
//! the earliest agent deadline is behind the wall clock, it appends a
//! `faultline.tick` whose time is that deadline, so a breaker's open period
//! ends, or an incident resolves, even when nothing else is published. The
//! tick's id is derived from the deadline, so two writers (or a restart)
//! produce the same record, and JetStream's dedupe keeps one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::backend::Backend;
use super::{wall_now, Shared};
use crate::events::Timestamp;

/// How often the ticker looks.
pub const PERIOD: Duration = Duration::from_millis(200);
/// Dedupe ids kept by the embedded log, in records.
pub const DEDUPE_RECORDS: u64 = 1_000_000;

/// Ticker message.
pub enum TickerMsg {
    /// Look now.
    Check,
}

/// What the ticker needs.
pub struct TickerArgs {
    /// The log.
    pub backend: Backend,
    /// Shared state.
    pub shared: Arc<Shared>,
}

/// The ticker actor.
pub struct Ticker;

/// Its state.
pub struct TickerState {
    args: TickerArgs,
    last_tick: Option<Timestamp>,
    last_prune: Instant,
}

impl Actor for Ticker {
    type Msg = TickerMsg;
    type State = TickerState;
    type Arguments = TickerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<TickerMsg>,
        args: TickerArgs,
    ) -> Result<TickerState, ActorProcessingErr> {
        myself.send_interval(PERIOD, || TickerMsg::Check);
        Ok(TickerState {
            args,
            last_tick: None,
            last_prune: Instant::now(),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<TickerMsg>,
        _: TickerMsg,
        state: &mut TickerState,
    ) -> Result<(), ActorProcessingErr> {
        let shared = &state.args.shared;
        if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let Ok(last) = state.args.backend.last_seq().await else {
            return Ok(());
        };
        let statuses = shared.observe_progress(last);
        let idle = statuses.values().all(|s| s.caught_up && s.applied >= last);
        let deadline = statuses.values().filter_map(|s| s.deadline).min();
        if let Some(d) = deadline.filter(|d| idle && *d <= wall_now() && Some(*d) > state.last_tick)
        {
            state.args.backend.append(&[crate::engine::tick(d)]).await?;
            shared.metrics.ticks.inc();
            state.last_tick = Some(d);
            tracing::debug!(time = %d, "tick appended");
        }
        if state.last_prune.elapsed() > Duration::from_secs(60) {
            state.last_prune = Instant::now();
            state.args.backend.prune(DEDUPE_RECORDS)?;
        }
        Ok(())
    }
}
