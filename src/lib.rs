//! faultline: an event-sourced error-orchestration runtime.
//!
//! Services publish observations (request outcomes, windows, health, deploys);
//! agents fold the ordered log of those records into decisions (breaker states,
//! predictions, routes, rollbacks, containment, incidents), which are records
//! too. The log is the truth: replaying it through fresh agents reproduces every
//! decision byte for byte. See ARCHITECTURE.md for the map.

pub mod actors;
pub mod cli;
pub mod client;
pub mod config;
pub mod detect;
pub mod engine;
pub mod events;
pub mod fnv;
pub mod log;
pub mod node;
pub mod process;
pub mod replay;
pub mod replay_cmd;
pub mod run_cmd;
pub mod schema;
pub mod simulate;
pub mod simulate_cmd;
pub mod tools;
