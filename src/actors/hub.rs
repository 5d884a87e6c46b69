//! The hub: incidents, business impact, coordination and escalation.
//!
//! The hub reads the other agents' decisions and turns them into
//! `faultline.incident` decisions people can act on ([`incident`] says what
//! an incident holds and how severity is read). A decision opens an
//! incident when it is significant (a breaker opening, a breach risk of at
//! least `high_risk`, a rollback initiated or blocked, a containment) and
//! nothing related is open; it joins one when it follows a signal the
//! incident already has, or involves a service that is the same as, or
//! connected through the dependency graph to (one depends on the other),
//! a service of an incident active within `group_window_s`.
//!
//! **Coordination** ([`coordinate`]): an action (a rollback, a guard
//! containment, a service breaker open) on a service where another agent
//! already acts gets the hub's say, logged as an `updated` incident
//! decision with `coordination`. Enforcers apply a decision unless a `hold`
//! names it, until a `release`; a `cancel` drops it. Strategies:
//! `parallel` (everything proceeds, the overlap is recorded), `sequential`
//! (one agent per service, later ones wait), `priority` (the agent earlier
//! in `priority` proceeds, a lower one waits while it acts), and the
//! default **`adaptive`** rule: *a rollback is the fix for a bad deploy, so
//! it goes first: containment of a service being rolled back is held (and
//! containment already in force suspended, so the rolled-back version gets
//! the traffic that validates it) until the rollback ends; if it succeeded
//! the held containment is cancelled, if it failed, was aborted or was
//! ineffective the containment is released. Breakers and containment
//! otherwise proceed together: both protect.*
//!
//! **Escalation**: an incident reaching `critical`, a blocked rollback (the
//! storm guard separately), and an ineffective rollback each emit one
//! `escalated` decision per incident; the node forwards them (to an
//! Alertmanager webhook).
//!
//! **Operators**: `faultline.command` `acknowledge` or `resolve` with
//! `target` the incident id (or no target: every incident involving the
//! subject service). Commands naming no open incident change nothing.

pub mod config;
pub mod coordinate;
pub mod core;
pub mod incident;

pub use self::config::HubConfig;
pub use self::core::HubAgent;
