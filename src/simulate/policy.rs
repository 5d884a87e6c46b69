//! What differs between arms: the policy that picks instances, refuses
//! calls, allows retries and steers deploys. Everything else (traffic,
//! faults, capacity, queues, timeouts, retries) is the shared world.
//!
//! A policy sees each call as it is made ([`Policy::pick`],
//! [`Policy::complete`]) and, at every window boundary, what the world
//! reported in that window ([`Interval`]). It records what it did as
//! [`Action`]s: the report derives detection and mitigation times and the
//! chart markers from them.

use super::rollout::{DeployStep, Rollouts};
use super::windows::Windows;
use super::world::World;
use crate::client::Outcome;

/// Something a policy did, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// When, ms from the start.
    pub t: f64,
    /// The service it concerns.
    pub service: usize,
    /// It noticed a problem (an alarm, a failed check).
    pub detect: bool,
    /// It changed where or how traffic flows.
    pub mitigate: bool,
    /// What, in a few words (`breaker open cart`).
    pub label: String,
}

/// What the world published during a window, besides the calls.
#[derive(Clone, Debug, PartialEq)]
pub enum WorldEvent {
    /// The deployer moved a rollout.
    Deploy(usize, DeployStep),
    /// A health probe saw an instance go down (`false`) or come back.
    Health(usize, bool),
    /// An actuator carried out a decision.
    Actuated(String),
}

/// A window boundary, as a policy sees it.
pub struct Interval<'a> {
    /// The world.
    pub world: &'a World,
    /// The boundary, ms.
    pub now: f64,
    /// The window's length, ms.
    pub length: f64,
    /// The calls of the window.
    pub windows: &'a mut Windows,
    /// Deploys, health changes and acknowledgements of the window, in time order.
    pub events: &'a [(f64, WorldEvent)],
    /// The deploys, to halt or steer.
    pub rollouts: &'a mut Rollouts,
    /// How long an actuator takes, ms.
    pub actuation_delay: f64,
}

/// One arm's policy.
pub trait Policy {
    /// Chooses an instance of the edge's callee for a call at `now`;
    /// `None` refuses the call (it fails at once, without a retry).
    fn pick(&mut self, w: &World, edge: usize, now: f64) -> Option<usize>;
    /// The outcome of a call `pick` allowed, as the caller saw it.
    fn complete(
        &mut self,
        w: &World,
        edge: usize,
        instance: usize,
        outcome: Outcome,
        ms: f64,
        now: f64,
    );
    /// Whether a failed call on `edge` may be retried at `now`.
    fn may_retry(&mut self, _edge: usize, _now: f64) -> bool {
        true
    }
    /// A window boundary.
    fn interval(&mut self, i: Interval<'_>);
    /// What it did, in time order.
    fn actions(&self) -> &[Action];
}

/// Round robin per edge over every instance, as a plain load balancer
/// without health checks does.
#[derive(Clone, Debug)]
pub struct RoundRobin {
    cursor: Vec<usize>,
}

impl RoundRobin {
    /// A cursor per edge of `w`.
    pub fn new(w: &World) -> Self {
        Self {
            cursor: vec![0; w.edges.len()],
        }
    }

    /// The next instance of `edge`'s callee, skipping those `skip` says.
    pub fn next(&mut self, w: &World, edge: usize, mut skip: impl FnMut(usize) -> bool) -> usize {
        let range = w.services[w.edges[edge].to].instances.clone();
        let n = range.len();
        for _ in 0..n {
            let c = self.cursor[edge] % n;
            self.cursor[edge] = c + 1;
            if !skip(range.start + c) {
                return range.start + c;
            }
        }
        let c = self.cursor[edge] % n;
        self.cursor[edge] = c + 1;
        range.start + c
    }
}

/// The `none` arm: no protection.
#[derive(Clone, Debug)]
pub struct Unprotected {
    rr: RoundRobin,
}

impl Unprotected {
    /// For `w`.
    pub fn new(w: &World) -> Self {
        Self {
            rr: RoundRobin::new(w),
        }
    }
}

impl Policy for Unprotected {
    fn pick(&mut self, w: &World, edge: usize, _now: f64) -> Option<usize> {
        Some(self.rr.next(w, edge, |_| false))
    }

    fn complete(&mut self, _: &World, _: usize, _: usize, _: Outcome, _: f64, _: f64) {}

    fn interval(&mut self, _: Interval<'_>) {}

    fn actions(&self) -> &[Action] {
        &[]
    }
}
