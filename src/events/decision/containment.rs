//! `faultline.containment`: where the guard thinks a cascade starts and what
//! it asks others to do to stop it spreading.
//!
//! The guard never touches traffic itself: clients, meshes and the simulator
//! enforce these decisions, and the hub may hold one (an `incident` decision
//! with a `coordination` naming it) while another agent acts on the same
//! service. Every decision carries the ranking it rests on, so "why did the
//! guard blame the database?" is answered from the log alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the guard asks for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ContainmentAction {
    /// Shed the traffic of low-priority callers into the root cause (its
    /// `edges`), so the capacity it has left serves the important callers.
    Shed,
    /// Open the edge breakers `edges` (dependents → root cause) now, before
    /// the dependents' own breakers trip: they fail fast and use fallbacks
    /// instead of queueing behind a failing callee.
    OpenEdges,
    /// Fence the root cause off: every edge into it opened (`edges`).
    Isolate,
    /// Cap retries on `edges` at `retry_budget_percent` of requests: a retry
    /// storm is amplifying the load.
    RetryBudget,
    /// Withdraw the containment named by `lifted`: the root cause (or the
    /// edge, for a retry budget) has been healthy for the lift period.
    Lift,
}

impl ContainmentAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shed => "shed",
            Self::OpenEdges => "open_edges",
            Self::Isolate => "isolate",
            Self::RetryBudget => "retry_budget",
            Self::Lift => "lift",
        }
    }
}

/// One ranked root-cause candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    /// The service.
    pub service: String,
    /// Its score, 0–1 (higher: more likely the origin).
    pub score: f64,
}

/// `faultline.containment`: a containment step, or its lifting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainmentDecision {
    /// What is asked for.
    pub action: ContainmentAction,
    /// The service the cascade starts at (the callee, for a retry budget).
    pub root_cause: String,
    /// The ranking behind `root_cause`, best first (at most five).
    pub candidates: Vec<Candidate>,
    /// How sure the ranking is, 0–1: the top score, discounted when the
    /// runner-up is close.
    pub confidence: f64,
    /// The blast radius: every service that depends on `root_cause`,
    /// directly or transitively, in name order.
    pub affected: Vec<String>,
    /// The edges the action applies to, `caller->callee`, in order.
    pub edges: Vec<String>,
    /// Revenue at risk per minute: each service's `revenue_per_minute`
    /// times the failing fraction of its traffic, over the root cause and
    /// its blast radius.
    pub impact_per_minute: f64,
    /// Retry budget, percent of requests (for `retry_budget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget_percent: Option<f64>,
    /// Call amplification on the edge against its baseline (for `retry_budget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplification: Option<f64>,
    /// The action withdrawn (for `lift`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted: Option<ContainmentAction>,
    /// One human line.
    pub reason: String,
}
