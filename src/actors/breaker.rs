//! The circuit-breaker agent.
//!
//! A breaker stops calls to something that is failing so it can recover and
//! callers fail fast. This agent *decides* breaker states from observations;
//! clients and the router *enforce* them (they never recompute a state).
//!
//! * [`circuit`]: one breaker's state machine (resilience4j semantics, plus
//!   backoff, half-open time limit, error-count and consecutive triggers).
//! * [`window`]: count- and time-based sliding windows.
//! * [`classify`]: observations to outcomes.
//! * [`adaptive`]: thresholds learned from a service's own baseline.
//! * [`system`]: the system scope, a fold over service breakers' decisions.
//! * [`config`]: `[breaker]` in the policy file.
//! * [`core`]: the agent: circuits per scope, timers, decisions.

pub mod adaptive;
pub mod circuit;
pub mod classify;
pub mod config;
pub mod core;
pub mod system;
pub mod window;

pub use self::core::{BreakerAgent, NAME};
