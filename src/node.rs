//! The node: `faultline run`. The agents as supervised ractor actors over a
//! live log, embedded on sled (the default) or on NATS JetStream.
//!
//! ```text
//!            HTTP POST /v1/events            publishers (nats pub, any client)
//!                   │ (embedded: append)               │ faultline.in.<svc>.<kind>
//!                   ▼                                  ▼
//!   ┌──────────────────────── the log (sled / JetStream stream) ─────────────────┐
//!   │ inputs · ticks · config records · decisions (faultline.out.<agent>.<svc>)  │
//!   └────────────────────────────────────────────────────────────────────────────┘
//!        │ read in order from each agent's snapshot + 1              ▲ decisions,
//!        ▼                                                           │ ticks
//!   supervisor ─┬─ agent actor × N (one per enabled agent) ──────────┘
//!               ├─ ticker (ticks when a deadline passes with no traffic; lag)
//!               └─ ingest (JetStream: copies invalid publisher input to the DLQ)
//! ```
//!
//! Each agent actor owns a one-agent [`Engine`](crate::engine::Engine) and is
//! an independent fold over the log: record `n` is applied after `n − 1`, and
//! the decisions it causes are written to the log (persist, then acknowledge,
//! then snapshot). Every record, decisions included, is applied when it is
//! read back, so an agent's state is a function of the log alone, and
//! replaying the log reproduces every decision.
//!
//! Crash safety: a snapshot covering `c` is taken only once every decision
//! caused by records up to `c` is durable. After a crash the agent restores
//! the snapshot, lists the decisions it already wrote after `c`
//! ([`backend::Backend::written_ids`]) and replays the tail, writing only the
//! decisions not found: each decision lands exactly once, however long the
//! outage (JetStream's duplicate window alone would not cover that).
//!
//! Timers: an agent fires due timers itself on the first record past the
//! deadline; when no record comes, the ticker appends a `faultline.tick` at
//! the deadline once the wall clock passes it, so timers fire live and on
//! replay alike.

// The node is the shell around the agent cores: it owns the wall clock
// (ticks, snapshot intervals, latency metrics); the cores never read it.
#![allow(clippy::disallowed_methods)]

pub mod agent_actor;
pub mod alerts;
pub mod backend;
pub mod body;
pub mod feed;
pub mod http;
pub mod ingest;
pub mod jetstream;
pub mod metrics;
pub mod settings;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod ticker;
pub mod writes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};

pub use settings::NodeSettings;
pub use status::AgentStatus;

use crate::config::Config;
use crate::engine::Agent;
use crate::events::observation::ConfigRecord;
use crate::events::subject::SYSTEM_SUBJECT;
use crate::events::{Data, Event, Timestamp};
use crate::log::{Durability, LogError, Seq, SledLog};
use backend::{Backend, Sled};
use metrics::Metrics;
use supervisor::{NodeSupervisor, SupArgs, SupMsg};

/// What can stop a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The embedded log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A NATS operation failed.
    #[error("NATS: {what}: {message}")]
    Nats {
        /// What the node was doing.
        what: String,
        /// The client's error.
        message: String,
    },
    /// The server cannot host the node.
    #[error("{0}")]
    Server(String),
    /// The HTTP listener could not start.
    #[error("HTTP listener on {addr}: {message}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
    /// The supervisor gave up (restart intensity exceeded) or could not start.
    #[error("node failed: {0}")]
    Failed(String),
}

/// Scheduler ticks between two polls of the I/O driver (tokio's default is
/// 61). Agents folding a backlog keep every worker busy, and a socket that is
/// ready is only noticed at the next poll of the driver: polled more often,
/// the NATS connection keeps the server streaming (3-4 % more records per
/// second through the pipeline in `benches/node.rs`, no cost seen at low load).
const EVENT_INTERVAL: u32 = 8;

/// The runtime a node runs in (`faultline run`; the node bench builds the
/// same one): multi-threaded, one worker per core unless `workers` says.
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all()
        .event_interval(EVENT_INTERVAL)
        .thread_name("faultline-node")
        .build()
}

/// Builds a fresh instance of one agent (at start and after each restart).
pub type AgentFactory = Arc<dyn Fn() -> Box<dyn Agent> + Send + Sync>;

/// One agent the node runs.
#[derive(Clone)]
pub struct AgentSpec {
    /// Its name (as in `Agent::name`).
    pub name: &'static str,
    /// Builds it.
    pub make: AgentFactory,
}

/// The agents `config` enables, as specs.
pub fn agent_specs(config: &Config) -> Vec<AgentSpec> {
    config
        .agents
        .iter()
        .map(|&name| {
            let config = config.clone();
            AgentSpec {
                name,
                make: Arc::new(move || crate::process::make_agent(&config, name)),
            }
        })
        .collect()
}

/// State shared by the node's parts.
pub struct Shared {
    /// Metrics.
    pub metrics: Metrics,
    /// Per-agent progress.
    pub agents: Mutex<BTreeMap<&'static str, AgentStatus>>,
    /// Breakers open (target → open), from breaker decisions.
    pub breakers: Mutex<BTreeMap<String, bool>>,
    /// Incidents open, from hub decisions.
    pub incidents: Mutex<BTreeMap<String, bool>>,
    /// Set when intake stops (shutdown).
    pub stopping: AtomicBool,
    /// Why the node failed, if it did.
    pub failure: Mutex<Option<String>>,
    /// The agents' engines, for state queries.
    pub views: state::Views,
    /// The agents this node runs, in order.
    pub running: Vec<&'static str>,
    /// The log, read once for every agent.
    pub feed: feed::Feed,
    /// Woken when the hub escalates or resolves (the alert forwarder posts at once).
    pub alert_wake: tokio::sync::Notify,
}

impl Shared {
    fn new(specs: &[AgentSpec]) -> Self {
        Self {
            metrics: Metrics::default(),
            agents: Mutex::new(
                specs
                    .iter()
                    .map(|s| (s.name, AgentStatus::default()))
                    .collect(),
            ),
            breakers: Mutex::new(BTreeMap::new()),
            incidents: Mutex::new(BTreeMap::new()),
            stopping: AtomicBool::new(false),
            failure: Mutex::new(None),
            views: state::Views::default(),
            running: specs.iter().map(|s| s.name).collect(),
            alert_wake: tokio::sync::Notify::new(),
            feed: feed::Feed::default(),
        }
    }

    /// Updates `agent`'s status.
    pub fn status(&self, agent: &str, f: impl FnOnce(&mut AgentStatus)) {
        let mut map = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get_mut(agent) {
            f(s);
        }
    }

    /// A copy of every agent's status.
    pub fn statuses(&self) -> BTreeMap<&'static str, AgentStatus> {
        self.agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Compares each agent's progress with `last`, the log's last
    /// sequence: sets its `consumer_lag` and notes whether records are
    /// waiting that it does not apply ([`AgentStatus::observe`]); returns
    /// the statuses it looked at.
    pub fn observe_progress(&self, last: Seq) -> BTreeMap<&'static str, AgentStatus> {
        let statuses = {
            let mut map = self.agents.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            map.values_mut().for_each(|s| s.observe(last, now));
            map.clone()
        };
        for (name, s) in &statuses {
            self.metrics
                .lag
                .get_or_create(&Metrics::agent(name))
                .set(last.saturating_sub(s.applied) as i64);
        }
        statuses
    }

    /// `agent`'s view of `service` as a JSON body and HTTP status.
    pub fn state_answer(&self, agent: &str, service: Option<&str>) -> (u16, Vec<u8>) {
        self.views.answer(&self.running, agent, service)
    }

    /// Follows breaker and incident decisions for the open-count gauges.
    pub fn observe_decision(&self, e: &Event) {
        match &e.data {
            Data::Breaker(b) => {
                let open = matches!(
                    b.to,
                    crate::events::decision::BreakerState::Open
                        | crate::events::decision::BreakerState::ForcedOpen
                );
                let mut m = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
                m.insert(format!("{:?}/{}", b.scope, b.target), open);
                self.metrics
                    .breakers_open
                    .set(m.values().filter(|o| **o).count() as i64);
            }
            Data::Incident(i) => {
                use crate::events::decision::IncidentPhase;
                let mut m = self.incidents.lock().unwrap_or_else(|p| p.into_inner());
                m.insert(i.incident_id.clone(), i.phase != IncidentPhase::Resolved);
                if matches!(i.phase, IncidentPhase::Escalated | IncidentPhase::Resolved) {
                    self.alert_wake.notify_one();
                }
                self.metrics
                    .incidents_open
                    .set(m.values().filter(|o| **o).count() as i64);
            }
            _ => {}
        }
    }
}

/// The wall clock, as an event timestamp. Only the node's shells read it
/// (ticks, the future-time bound); agent cores never do.
#[allow(clippy::disallowed_methods)]
pub fn wall_now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_nanos(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// The record a node appends when its policy differs from the last one logged.
pub fn config_record(config: &Config, time: Timestamp) -> Event {
    let hash = config.hash();
    Event {
        id: format!("config-{hash}-{}", time.nanos()),
        source: "faultline/node".to_owned(),
        subject: SYSTEM_SUBJECT.to_owned(),
        time,
        datacontenttype: None,
        causeseq: None,
        causeid: None,
        data: Data::Config(ConfigRecord {
            hash,
            content: config.source_text.clone(),
        }),
    }
}

/// A running node.
pub struct Node {
    /// Where HTTP listens (the bound address when port 0 was asked for).
    pub http_addr: SocketAddr,
    /// The log.
    pub backend: Backend,
    /// Shared state and metrics.
    pub shared: Arc<Shared>,
    supervisor: ActorRef<SupMsg>,
    supervisor_done: tokio::task::JoinHandle<()>,
    http_stop: tokio::sync::watch::Sender<bool>,
    http_done: tokio::task::JoinHandle<()>,
    shutdown_timeout: Duration,
}

impl Node {
    /// Opens the log, appends a config record if the policy changed, and
    /// starts the supervisor, its children and the HTTP server.
    pub async fn start(
        settings: NodeSettings,
        config: Config,
        specs: Vec<AgentSpec>,
    ) -> Result<Self, NodeError> {
        let backend = match &settings.nats_url {
            None => {
                std::fs::create_dir_all(&settings.data).map_err(|e| {
                    NodeError::Failed(format!(
                        "cannot create data directory {}: {e}",
                        settings.data.display()
                    ))
                })?;
                Backend::Sled(Sled::new(SledLog::open(&settings.data, Durability::Sync)?))
            }
            Some(url) => {
                let (js, drift) = jetstream::JetStream::open(&settings).await?;
                for d in drift {
                    tracing::warn!("{d}");
                }
                tracing::info!(url = %url, stream = %settings.stream, "connected to JetStream");
                Backend::JetStream(Box::new(js))
            }
        };
        let hash = config.hash();
        if backend.last_config_hash().await?.as_deref() != Some(hash.as_str()) {
            backend
                .append_config(config_record(&config, wall_now()), &hash)
                .await?;
            tracing::info!(hash = %hash, "policy differs from the last one logged; config record appended");
        }
        let shared = Arc::new(Shared::new(&specs));
        let (supervisor, supervisor_done) = Actor::spawn(
            None,
            NodeSupervisor,
            SupArgs {
                specs,
                backend: backend.clone(),
                shared: shared.clone(),
                settings: settings.clone(),
                config_hash: hash,
            },
        )
        .await
        .map_err(|e| NodeError::Failed(format!("supervisor did not start: {e}")))?;
        // Every reader has restored its position: the feed starts at the oldest.
        let from = shared.feed.start();
        tokio::spawn(feed::run(backend.clone(), shared.clone(), from));
        let (http_addr, http_stop, http_done) =
            http::serve(settings.clone(), backend.clone(), shared.clone()).await?;
        if let Some(url) = &settings.alert_webhook {
            if shared.running.contains(&"hub") {
                let target = alerts::AlertTarget {
                    url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                    repeat: Duration::from_secs(settings.alert_repeat_s),
                    timeout: Duration::from_secs(settings.alert_timeout_s),
                    base_url: format!("http://{http_addr}"),
                };
                tokio::spawn(alerts::run(target, shared.clone(), http_stop.subscribe()));
            } else {
                tracing::warn!("alert_webhook is set but the hub agent is not enabled: no escalations to forward");
            }
        }
        if let Backend::JetStream(js) = &backend {
            tokio::spawn(state::serve_nats(
                js.client().clone(),
                settings.prefix.clone(),
                shared.clone(),
                http_stop.subscribe(),
            ));
        }
        tracing::info!(http = %http_addr, "node started");
        Ok(Self {
            http_addr,
            backend,
            shared,
            supervisor,
            supervisor_done,
            http_stop,
            http_done,
            shutdown_timeout: Duration::from_secs(settings.shutdown_timeout_s),
        })
    }

    /// Whether every agent has caught up with the log since it started.
    pub fn caught_up(&self) -> bool {
        self.shared.statuses().values().all(|s| s.caught_up)
    }

    /// Graceful stop: intake stops, agents finish their batch, write their
    /// decisions and snapshot, then everything exits (within the shutdown timeout).
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.http_stop.send(true);
        let stop = async {
            let _ = self.http_done.await;
            let _ = ractor::call!(self.supervisor, SupMsg::Shutdown);
            let _ = self.supervisor_done.await;
        };
        if tokio::time::timeout(self.shutdown_timeout, stop)
            .await
            .is_err()
        {
            return Err(NodeError::Failed(format!(
                "shutdown did not finish within {:?}",
                self.shutdown_timeout
            )));
        }
        match self
            .shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(f) => Err(NodeError::Failed(f)),
            None => Ok(()),
        }
    }

    /// Runs until SIGINT/SIGTERM (then shuts down gracefully) or until the
    /// supervisor gives up.
    pub async fn run_until_signal(mut self) -> Result<(), NodeError> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NodeError::Failed(format!("cannot listen for SIGTERM: {e}")))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = &mut self.supervisor_done => {
                let why = self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
                return Err(NodeError::Failed(why.unwrap_or_else(|| "supervisor stopped".to_owned())));
            }
        }
        self.shutdown().await
    }
}
