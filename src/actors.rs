//! Agents: one folder per concern, each a pure core driven by the engine.
//!
//! Every agent has the same file set: `core.rs` (state + apply, no I/O),
//! `config.rs` (typed, validated config) and, once the node lands, `shell.rs`
//! (the ractor actor that feeds the core and publishes what it returns).

pub mod breaker;
pub mod guard;
pub mod hub;
pub mod predictor;
pub mod rollback;
pub mod router;
