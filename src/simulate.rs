//! The simulator: closed-loop failure scenarios.
//!
//! A scenario ([`scenario`]) describes a topology, its traffic and a
//! timeline of faults, each with its ground truth; it is YAML, validated
//! with every problem reported at once ([`validate`]). Simulated time is kept
//! in whole milliseconds ([`span`]) so that a run is a pure function of the
//! scenario and its seed.
//!
//! The scenario is compiled to indices ([`world`]), its faults to
//! conditions at any time ([`faults`]) and its bad deploys to rollouts
//! ([`rollout`]). The engine ([`sim`]) follows every request through the
//! call graph under one arm's [`policy`]: none, the peers' defaults
//! ([`peers`]) or faultline's agents in the loop ([`faultline_arm`]).

pub mod arms;
pub mod charts;
pub mod faultline_arm;
pub mod faults;
pub mod peers;
pub mod policy;
pub mod queue;
pub mod render;
pub mod report;
pub mod rollout;
pub mod scenario;
pub mod sim;
pub mod span;
pub mod tally;
pub mod validate;
pub mod windows;
pub mod world;

pub use scenario::{GroundTruth, Scenario};
pub use span::Span;
