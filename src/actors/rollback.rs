//! The rollback agent: deploy tracking and rollback points, canary and
//! post-deploy analysis with a statistical judge, seven rollback strategies,
//! and the safety rules that keep automation from making things worse
//! (validation, one rollback per revision, storm guard, stability period,
//! one action in flight per service with acknowledged, retried steps).
//!
//! It decides; actuators (deploy tooling) carry the steps out and report
//! with `faultline.actuation`, and the router follows the canary weights.

mod action;
mod analysis;
pub mod config;
pub mod core;
pub mod judge;
pub mod plan;
pub mod sample;
pub mod state;

pub use self::config::RollbackConfig;
pub use self::core::RollbackAgent;
