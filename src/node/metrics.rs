//! Prometheus / OpenMetrics metrics, prefix `faultline_`.
//!
//! Label values come from closed sets only (agent names, event types,
//! rejection reasons), never from services or ids, so cardinality stays
//! bounded whatever publishers send.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels naming an agent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabel {
    /// Agent name.
    pub agent: String,
}

/// Labels naming an agent and a decision type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    /// Agent name.
    pub agent: String,
    /// Decision type (`faultline.breaker`).
    pub r#type: String,
}

/// Labels naming a rejection reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Rejection token.
    pub reason: String,
}

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    /// Inputs accepted into the log.
    pub ingested: Counter,
    /// Inputs refused, by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Decisions written, by agent and type.
    pub decisions: Family<DecisionLabel, Counter>,
    /// Records in the log not yet applied, by agent.
    pub lag: Family<AgentLabel, Gauge>,
    /// Time to apply one record, by agent.
    pub apply_seconds: Family<AgentLabel, Histogram>,
    /// Seconds since the agent's last snapshot.
    pub snapshot_age: Family<AgentLabel, Gauge<f64, AtomicU64>>,
    /// Agent restarts after a failure.
    pub restarts: Family<AgentLabel, Counter>,
    /// Records parked in the DLQ after crashing an agent repeatedly.
    pub parked: Family<AgentLabel, Counter>,
    /// Circuit breakers currently open (any scope).
    pub breakers_open: Gauge,
    /// Incidents currently open.
    pub incidents_open: Gauge,
    /// Ticks appended for timers.
    pub ticks: Counter,
    /// Alerts delivered to the Alertmanager webhook.
    pub alerts_sent: Counter,
    /// Failed webhook posts (each retried).
    pub alert_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("faultline");
        let ingested = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let decisions = Family::<DecisionLabel, Counter>::default();
        let lag = Family::<AgentLabel, Gauge>::default();
        let apply_seconds = Family::<AgentLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1e-6, 4.0, 10))) as fn() -> Histogram,
        );
        let snapshot_age = Family::<AgentLabel, Gauge<f64, AtomicU64>>::default();
        let restarts = Family::<AgentLabel, Counter>::default();
        let parked = Family::<AgentLabel, Counter>::default();
        let breakers_open = Gauge::default();
        let incidents_open = Gauge::default();
        let ticks = Counter::default();
        let alerts_sent = Counter::default();
        let alert_failures = Counter::default();
        registry.register(
            "events_ingested",
            "Inputs accepted into the log",
            ingested.clone(),
        );
        registry.register(
            "events_rejected",
            "Inputs refused, by reason",
            rejected.clone(),
        );
        registry.register(
            "decisions",
            "Decisions written, by agent and type",
            decisions.clone(),
        );
        registry.register(
            "consumer_lag",
            "Log records not yet applied, by agent",
            lag.clone(),
        );
        registry.register(
            "apply_latency_seconds",
            "Time to apply one record, by agent (mean over each batch read)",
            apply_seconds.clone(),
        );
        registry.register(
            "snapshot_age_seconds",
            "Seconds since the agent's last snapshot",
            snapshot_age.clone(),
        );
        registry.register(
            "agent_restarts",
            "Agent restarts after a failure",
            restarts.clone(),
        );
        registry.register(
            "records_parked",
            "Records parked in the DLQ after crashing an agent repeatedly",
            parked.clone(),
        );
        registry.register(
            "breakers_open",
            "Circuit breakers currently open",
            breakers_open.clone(),
        );
        registry.register(
            "incidents_open",
            "Incidents currently open",
            incidents_open.clone(),
        );
        registry.register("ticks", "Tick records appended for timers", ticks.clone());
        registry.register(
            "alerts_sent",
            "Alerts delivered to the Alertmanager webhook",
            alerts_sent.clone(),
        );
        registry.register(
            "alert_post_failures",
            "Failed Alertmanager webhook posts (each retried)",
            alert_failures.clone(),
        );
        Self {
            registry,
            ingested,
            rejected,
            decisions,
            lag,
            apply_seconds,
            snapshot_age,
            restarts,
            parked,
            breakers_open,
            incidents_open,
            ticks,
            alerts_sent,
            alert_failures,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Counts a rejection.
    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The label for `agent`.
    pub fn agent(agent: &str) -> AgentLabel {
        AgentLabel {
            agent: agent.to_owned(),
        }
    }
}
