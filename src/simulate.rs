//! The simulator: closed-loop failure scenarios.
//!
//! A scenario ([`scenario`]) describes a topology, its traffic and a
//! timeline of faults, each with its ground truth; it is YAML, validated
//! with every problem reported at once ([`validate`]). Simulated time is kept
//! in whole milliseconds ([`span`]) so that a run is a pure function of the
//! scenario and its seed.

pub mod scenario;
pub mod span;
pub mod validate;

pub use scenario::{GroundTruth, Scenario};
pub use span::Span;
