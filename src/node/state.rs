//! Current state for enforcers: `GET /v1/state/<agent>/<service>` and NATS
//! request-reply on `<prefix>.state.<agent>.<service>`.
//!
//! A service in any language can ask "is my breaker to `payments` open?"
//! without replaying the log. Each agent actor registers its engine here; a
//! query locks it between two batches (the apply loop holds the lock only
//! while folding a batch, never across an await) and answers with the
//! agent's [`view`](crate::engine::Agent::view) and the log sequence the
//! view reflects. `_` as the service gives the agent's overview.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::engine::Engine;
use crate::log::Seq;

/// Engines by agent name, shared between the agent actors and the queries.
#[derive(Default)]
pub struct Views {
    engines: Mutex<BTreeMap<&'static str, Arc<Mutex<Engine>>>>,
}

/// A state answer.
#[derive(Debug, Serialize)]
pub struct StateAnswer {
    /// The agent asked.
    pub agent: String,
    /// The service asked (absent for an overview).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The last log sequence the agent applied: the view reflects the log up to here.
    pub applied_seq: Seq,
    /// The agent's view.
    pub state: serde_json::Value,
}

/// Why a state query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not an agent this node runs.
    #[error("agent '{agent}' is not running on this node (running: {running})")]
    UnknownAgent {
        /// The agent asked.
        agent: String,
        /// The agents this node runs, comma-separated.
        running: String,
    },
    /// The agent holds nothing about the service.
    #[error("{agent} holds no state for service '{service}' (no event about it applied yet)")]
    UnknownService {
        /// The agent asked.
        agent: String,
        /// The service asked.
        service: String,
    },
    /// The agent is (re)starting.
    #[error("agent '{0}' is starting; ask again shortly")]
    Starting(String),
}

impl StateError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownAgent { .. } | Self::UnknownService { .. } => 404,
            Self::Starting(_) => 503,
        }
    }
}

impl Views {
    /// Registers (or, after a restart, replaces) `agent`'s engine.
    pub fn register(&self, agent: &'static str, engine: Arc<Mutex<Engine>>) {
        self.lock().insert(agent, engine);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Arc<Mutex<Engine>>>> {
        self.engines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `agent`'s view of `service` (`None` or `_`: the overview). `running`
    /// names the agents the node runs, for the unknown-agent error.
    pub fn query(
        &self,
        running: &[&'static str],
        agent: &str,
        service: Option<&str>,
    ) -> Result<StateAnswer, StateError> {
        let service = service.filter(|s| *s != "_");
        let Some(name) = running.iter().find(|n| **n == agent) else {
            return Err(StateError::UnknownAgent {
                agent: agent.to_owned(),
                running: running.join(", "),
            });
        };
        let engine = self
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| StateError::Starting(agent.to_owned()))?;
        // A panic mid-batch poisons the lock; that engine is being replaced
        // by a restart, so say "starting" rather than show half-applied state.
        let engine = engine
            .lock()
            .map_err(|_| StateError::Starting(agent.to_owned()))?;
        let state = engine
            .view(name, service)
            .ok_or_else(|| StateError::UnknownService {
                agent: agent.to_owned(),
                service: service.unwrap_or("_").to_owned(),
            })?;
        Ok(StateAnswer {
            agent: agent.to_owned(),
            service: service.map(str::to_owned),
            applied_seq: engine.next_seq() - 1,
            state,
        })
    }

    /// The answer as a JSON body with its HTTP status (errors as `{"error": ...}`).
    pub fn answer(
        &self,
        running: &[&'static str],
        agent: &str,
        service: Option<&str>,
    ) -> (u16, Vec<u8>) {
        match self.query(running, agent, service) {
            Ok(a) => (200, serde_json::to_vec(&a).unwrap_or_default()),
            Err(e) => (
                e.status(),
                serde_json::to_vec(&serde_json::json!({ "error": e.to_string() }))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Answers `<prefix>.state.<agent>.<service>` (and `<prefix>.state.<agent>`
/// for the overview) until `stop` turns true. Nodes share the queue group
/// `faultline-state`, so one of them answers each request.
pub async fn serve_nats(
    client: async_nats::Client,
    prefix: String,
    shared: Arc<super::Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use futures_util::StreamExt;
    let subject = format!("{prefix}.state.>");
    let mut sub = match client
        .queue_subscribe(subject.clone(), "faultline-state".to_owned())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(subject, error = %e, "cannot answer state requests over NATS");
            return;
        }
    };
    let head = format!("{prefix}.state.");
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = stop.wait_for(|s| *s) => break,
        };
        let Some(reply) = msg.reply else { continue };
        let rest = msg.subject.as_str().strip_prefix(&head).unwrap_or_default();
        let (agent, service) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        let (_, body) = shared.state_answer(agent, service);
        if let Err(e) = client.publish(reply, body.into()).await {
            tracing::warn!(error = %e, "state reply not sent");
        }
    }
    let _ = sub.unsubscribe().await;
}
