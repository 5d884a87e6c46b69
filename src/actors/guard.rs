//! The propagation guard: the dependency graph, root-cause localisation
//! during cascades, blast radius and business impact, and containment.
//!
//! **Method.** Each service's traffic is summed into 10-second points and
//! compared with its own history by a robust z-score of the change
//! ([`baseline`]); a service is anomalous by its own statistics, or because
//! the predictor says so (`faultline.prediction` anomaly or breach risk on
//! an error or latency signal) or its service breaker is open. When at
//! least `min_anomalous` services are anomalous together, they are ranked
//! ([`rank`]): graph position (a service whose own callees are healthy
//! beats one whose callee is failing), onset order and magnitude, combined
//! with fixed weights and reported with a confidence.
//!
//! **Containment** ([`core`]) is a set of decisions others enforce, one
//! episode per root cause, only ever raised until it is lifted:
//! `shed` low-priority callers while the root cause is degraded and no
//! caller fails yet; `open_edges` from its suffering dependents (anomalous
//! while the root cause fails `open_edges_error_rate` of its calls or they
//! do themselves, e.g. timing out on it; or whose calls into it fail that
//! much), well below the 50 % at which their own breakers trip by default,
//! so they fail fast before they queue; `isolate` it once it fails
//! `isolate_error_rate` or its breaker opens.
//! Retry storms ([`storm`]) get a retry budget on their edge. Everything is
//! lifted only after `lift_after` healthy points of the root cause itself:
//! its dependents recovering (which the open edges cause) is not recovery.
//!
//! The blast radius is every transitive dependent of the root cause
//! ([`graph`]); impact is revenue at risk per minute over the root cause
//! and its blast radius, each service's `revenue_per_minute` times the
//! failing fraction of its traffic.

pub mod baseline;
pub mod config;
pub mod core;
pub mod graph;
pub mod rank;
pub mod storm;

pub use self::config::GuardConfig;
pub use self::core::GuardAgent;
