//! Operator tools around a running node: `faultline publish` (a JSON-lines
//! file into the log), `faultline tail` (decisions as they are made) and
//! `faultline load` (realistic observation traffic, bounded).
//!
//! Each reaches the node the way a service would: JetStream (`--nats URL`,
//! credentials and TLS from the same `FAULTLINE_NATS_*` variables the node
//! reads) or the embedded node's HTTP API (`--http URL`, bearer token from
//! `--token` or `FAULTLINE_HTTP_TOKEN`). These are shells: they own the wall
//! clock and the network; the traffic generator itself is a pure, seeded
//! function of the profile.

// Shells around the network: pacing and rates need the wall clock.
#![allow(clippy::disallowed_methods)]

pub mod cmd;
pub mod load;
pub mod publish;
pub mod tail;
pub mod target;
