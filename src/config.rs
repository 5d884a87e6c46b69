//! The policy file (TOML).
//!
//! Parsing follows two steps: the raw file is deserialised with
//! `deny_unknown_fields` (a misspelt key is an error, not a silent default),
//! then every section is validated into typed values, collecting *every*
//! problem with its path before reporting, so an operator fixes a file in one
//! pass. Each agent owns its section's types (`actors::breaker::config`).

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::actors::breaker::config::{BreakerConfig, RawBreaker};
use crate::actors::guard::config::{GuardConfig, RawGuard};
use crate::actors::hub::config::{HubConfig, RawHub};
use crate::actors::predictor::config::{PredictorConfig, RawPredictor};
use crate::actors::rollback::config::{RawRollback, RollbackConfig};
use crate::actors::router::config::{RawRouter, RouterConfig};

/// Every agent, in the order the engine runs them.
pub const AGENTS: [&str; 6] = ["predictor", "breaker", "router", "rollback", "guard", "hub"];

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The agents that run (top-level `agents`, default all of [`AGENTS`]),
    /// in engine order whatever order the file lists them in.
    pub agents: Vec<&'static str>,
    /// Circuit breakers.
    pub breaker: BreakerConfig,
    /// Anomaly detection and breach forecasting.
    pub predictor: PredictorConfig,
    /// Traffic weights, outlier ejection and failover.
    pub router: RouterConfig,
    /// Deploy analysis, rollback strategies and their safety rules.
    pub rollback: RollbackConfig,
    /// Dependency graph, root-cause ranking and containment.
    pub guard: GuardConfig,
    /// Incidents, coordination and escalation.
    pub hub: HubConfig,
    /// The text it was read from (empty for the built-in defaults).
    pub source_text: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agents: Option<Vec<String>>,
    #[serde(default)]
    breaker: RawBreaker,
    #[serde(default)]
    predictor: RawPredictor,
    #[serde(default)]
    router: RawRouter,
    #[serde(default)]
    rollback: RawRollback,
    #[serde(default)]
    guard: RawGuard,
    #[serde(default)]
    hub: RawHub,
    /// Node settings: read by [`crate::node::settings`], not part of the policy.
    #[serde(default)]
    #[allow(dead_code)]
    node: Option<toml::Value>,
}

/// One problem in the file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigProblem {
    /// Dotted path of the key (`breaker.default.failure_rate_threshold`).
    pub path: String,
    /// What is wrong, with the offending value.
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Where the configuration came from.
    pub origin: String,
    /// The problems, sorted by path.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} has {} problem(s):", self.origin, self.problems.len())?;
        for p in &self.problems {
            if p.path.is_empty() {
                writeln!(f, "  {}", p.message)?;
            } else {
                writeln!(f, "  {}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

/// Collects problems while validating.
#[derive(Default)]
pub struct Problems(BTreeSet<ConfigProblem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.insert(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The problems so far, sorted by path.
    pub fn list(&self) -> Vec<ConfigProblem> {
        self.0.iter().cloned().collect()
    }
}

/// `v` (or `default`), which must be a percentage; problems go to `problems`.
pub fn percent(v: Option<f64>, default: f64, path: &str, problems: &mut Problems) -> f64 {
    let v = v.unwrap_or(default);
    if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
        problems.add(path, format!("{v} is outside 0..=100 (a percentage)"));
    }
    v
}

/// `v` (or `default`), which must be finite and at least 0.
pub fn non_negative(v: Option<f64>, default: f64, path: &str, problems: &mut Problems) -> f64 {
    let v = v.unwrap_or(default);
    if !(v.is_finite() && v >= 0.0) {
        problems.add(path, format!("{v} must be a number at or above 0"));
    }
    v
}

/// `v` (or `default`), which must be greater than 0.
pub fn positive<T: Copy + Default + PartialOrd + std::fmt::Display>(
    v: Option<T>,
    default: T,
    path: &str,
    problems: &mut Problems,
) -> T {
    let v = v.unwrap_or(default);
    if v <= T::default() {
        problems.add(path, format!("{v} must be greater than 0"));
    }
    v
}

/// `v` (or `default`), which must lie in [0, 1], or (0, 1] when `open_low`.
pub fn fraction(
    v: Option<f64>,
    default: f64,
    path: &str,
    open_low: bool,
    problems: &mut Problems,
) -> f64 {
    let v = v.unwrap_or(default);
    let ok = v.is_finite() && v <= 1.0 && if open_low { v > 0.0 } else { v >= 0.0 };
    if !ok {
        let range = if open_low { "(0, 1]" } else { "[0, 1]" };
        problems.add(path, format!("{v} is outside {range}"));
    }
    v
}

/// The longest duration any `_s` setting may have (30 days): longer ones
/// are typos, and would overflow event-time arithmetic.
const MAX_SECONDS: u64 = 30 * 24 * 3600;

/// A duration in seconds as milliseconds, checked against `min..=MAX_SECONDS`.
pub fn seconds(v: Option<u64>, default: u64, min: u64, path: &str, problems: &mut Problems) -> u64 {
    let v = v.unwrap_or(default);
    if v < min || v > MAX_SECONDS {
        problems.add(
            path,
            format!("{v} is outside {min}..={MAX_SECONDS} seconds"),
        );
    }
    v.min(MAX_SECONDS).saturating_mul(1000)
}

/// The defaults: every agent, every key at its documented default (what
/// an empty policy file gives).
impl Default for Config {
    fn default() -> Self {
        Self::from_toml("", "defaults").expect("the defaults are valid")
    }
}

impl Config {
    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            origin: origin.to_owned(),
            problems: vec![ConfigProblem {
                path: String::new(),
                message: e.to_string().trim_end().to_owned(),
            }],
        })?;
        let mut problems = Problems::default();
        let agents = match &raw.agents {
            None => AGENTS.to_vec(),
            Some(names) => {
                for (i, n) in names.iter().enumerate() {
                    if !AGENTS.contains(&n.as_str()) {
                        problems.add(
                            "agents",
                            format!("{n:?} is not an agent (one of {AGENTS:?})"),
                        );
                    } else if names[..i].contains(n) {
                        problems.add("agents", format!("{n:?} is listed twice"));
                    }
                }
                AGENTS
                    .into_iter()
                    .filter(|a| names.iter().any(|n| n == a))
                    .collect()
            }
        };
        let breaker = BreakerConfig::from_raw(&raw.breaker, &mut problems);
        let predictor = PredictorConfig::from_raw(&raw.predictor, &mut problems);
        let router = RouterConfig::from_raw(&raw.router, &mut problems);
        let rollback = RollbackConfig::from_raw(&raw.rollback, &mut problems);
        let guard = GuardConfig::from_raw(&raw.guard, &mut problems);
        let hub = HubConfig::from_raw(&raw.hub, &mut problems);
        if !problems.0.is_empty() {
            return Err(ConfigError {
                origin: origin.to_owned(),
                problems: problems.0.into_iter().collect(),
            });
        }
        Ok(Self {
            agents,
            breaker,
            predictor,
            router,
            rollback,
            guard,
            hub,
            source_text: text.to_owned(),
        })
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            problems: vec![ConfigProblem {
                path: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Self::from_toml(&text, &origin)
    }

    /// The built-in defaults (no file).
    pub fn defaults() -> Self {
        Self::from_toml("", "built-in defaults").expect("the defaults are valid")
    }

    /// A stable identifier of this policy: FNV-1a 64 of the source text, hex.
    /// Snapshots carry it so state built under another policy is not reused.
    /// The `[node]` table (where the node listens and stores) is left out:
    /// moving a node to another port keeps its snapshots.
    pub fn hash(&self) -> String {
        let policy = without_node_table(&self.source_text);
        format!("{:016x}", crate::fnv::fnv1a64(policy.as_bytes()))
    }
}

/// `text` without its `[node]` / `[node.*]` tables.
fn without_node_table(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if let Some(header) = line.trim_start().strip_prefix('[') {
            let name = header.trim_start_matches('[').trim_start();
            skipping =
                name.starts_with("node]") || name.starts_with("node.") || name.starts_with("node ");
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}
