//! The engine: one arm's run, request by request.
//!
//! Requests arrive from outside as Poisson processes (per entry, at the
//! diurnal rate times any spike). Each is followed through the call graph
//! at once, depth first: the policy picks an instance for each call (or
//! refuses it), the instance queues it behind its backlog, fails it at its
//! error rate, spends its own latency and calls its dependencies in turn.
//! Nothing about overload is scripted:
//!
//! * **Capacity and queueing.** An instance is a server of `capacity_rps`:
//!   each call adds `1 / capacity` s of work to its backlog ([`super::queue`])
//!   and waits for the backlog before it. Past one second of backlog it
//!   refuses (503) at once.
//! * **Timeouts.** A caller gives up after the edge's timeout and counts a
//!   failure, but the callee has done (and keeps) the work: wasted capacity.
//! * **Retries** after a backoff that doubles, each a new pick. Under
//!   reduced capacity, timeouts cause retries, retries add backlog, backlog
//!   causes timeouts: the storm emerges.
//!
//! Time is simulated milliseconds as `f64`. The world changes in 100 ms
//! steps (faults, deploys, acknowledgements) and policies see each window
//! at its boundary. A request's calls are attributed to the window of its
//! arrival even when they run a little past it: small next to a window,
//! and it keeps the run a single pass.
//!
//! Randomness: arrivals come from their own seeded stream, the same in every
//! arm (identical traffic). The rest (error draws, latencies, versions) come
//! from a second key, with a stream of its own for every user request
//! (common random numbers): request *n* meets the same luck in every arm
//! unless a policy changed its own path. With one shared sequence instead,
//! a single refused call would shift every later draw, and two arms'
//! failure counts would differ by noise as large as the effect measured.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};

use super::faults::{Conditions, Fault};
use super::policy::{Interval, Policy, WorldEvent};
use super::queue::Queue;
use super::rollout::{unit, Rollouts};
use super::scenario::DeploySpec;
use super::tally::Tally;
use super::windows::Windows;
use super::world::World;
use crate::client::Outcome;

/// Backlog past which an instance refuses work, ms.
pub const QUEUE_LIMIT_MS: f64 = 1_000.0;
/// Time a refused connection takes to fail, ms.
pub const REFUSED_MS: f64 = 1.0;
/// Spread of latencies around their median (log-normal σ).
const LATENCY_SIGMA: f64 = 0.35;
/// Step of the world's clock, ms.
const STEP_MS: f64 = 100.0;

/// What a run needs besides its policy.
pub struct Setup<'a> {
    /// The world.
    pub world: &'a World,
    /// Its faults.
    pub faults: &'a [Fault],
    /// Its good deploys.
    pub deploys: &'a [DeploySpec],
    /// Seed of both random streams.
    pub seed: u64,
    /// Run length, ms.
    pub duration: f64,
    /// Window length, ms.
    pub window: f64,
    /// Actuation delay, ms.
    pub actuation_delay: f64,
}

/// The outcome of a call as its caller saw it.
#[derive(Clone, Copy, Debug)]
struct Call {
    ok: bool,
    ms: f64,
}

/// One arm's run.
pub struct Run<'a, P: Policy> {
    setup: &'a Setup<'a>,
    policy: P,
    cond: Conditions,
    rollouts: Rollouts,
    queues: Vec<Queue>,
    /// Arrival time of the request being followed.
    frontier: f64,
    rng: ChaCha8Rng,
    /// User requests followed so far (the next one's random stream).
    requests: u64,
    windows: Windows,
    events: Vec<(f64, WorldEvent)>,
    tally: Tally,
    /// Per instance, what the health probe last reported (`true`: up).
    probed: Vec<bool>,
    now_bucket: usize,
}

impl<'a, P: Policy> Run<'a, P> {
    /// A run of `policy` in `setup`'s world.
    pub fn new(setup: &'a Setup<'a>, policy: P) -> Self {
        let w = setup.world;
        Self {
            setup,
            policy,
            cond: Conditions::healthy(w),
            rollouts: Rollouts::new(w, setup.faults, setup.deploys),
            queues: vec![Queue::default(); w.instances.len()],
            frontier: 0.0,
            rng: ChaCha8Rng::seed_from_u64(setup.seed ^ 0x005e_ed0f_ca11),
            requests: 0,
            windows: Windows::new(w),
            events: Vec::new(),
            tally: Tally::new(w, setup.duration),
            probed: vec![true; w.instances.len()],
            now_bucket: 0,
        }
    }

    /// Runs to the end; `progress` is told the simulated time every
    /// simulated minute.
    pub fn run(mut self, progress: &dyn Fn(f64)) -> (P, Tally, Rollouts) {
        let s = self.setup;
        let w = s.world;
        let mut arrivals = ChaCha8Rng::seed_from_u64(s.seed);
        let mut next: Vec<f64> = vec![0.0; w.entries.len()];
        let mut next_step = 0.0;
        let mut next_window = s.window;
        let mut next_progress = 60_000.0;
        self.step(0.0);
        for (k, n) in next.iter_mut().enumerate() {
            *n = self.arrival_after(&mut arrivals, k, 0.0);
        }
        loop {
            let (k, t) = next
                .iter()
                .copied()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, f64::INFINITY));
            let t = t.min(s.duration);
            loop {
                let boundary = next_window.min(next_step + STEP_MS);
                if boundary > t {
                    break;
                }
                if next_step + STEP_MS <= next_window {
                    next_step += STEP_MS;
                    self.step(next_step);
                } else {
                    self.boundary(next_window);
                    next_window += s.window;
                }
                if next_step >= next_progress {
                    progress(next_progress);
                    next_progress += 60_000.0;
                }
            }
            if t >= s.duration {
                break;
            }
            self.request(k, t);
            next[k] = self.arrival_after(&mut arrivals, k, t);
        }
        if next_window - s.window < s.duration {
            self.boundary(s.duration);
        }
        progress(s.duration);
        (self.policy, self.tally, self.rollouts)
    }

    fn arrival_after(&self, rng: &mut ChaCha8Rng, k: usize, t: f64) -> f64 {
        let w = self.setup.world;
        let rate = w.entry_rps(&w.entries[k], t) * self.cond.traffic[k];
        let gap: f64 = Exp1.sample(rng);
        if rate <= 0.0 {
            t + 1_000.0
        } else {
            t + gap * 1_000.0 / rate
        }
    }

    /// The world's clock: faults, deploys, acknowledgements, health probes.
    fn step(&mut self, t: f64) {
        let s = self.setup;
        self.cond.update(s.world, s.faults, t);
        let mut steps = Vec::new();
        let mut acks = Vec::new();
        self.rollouts.advance(t, &mut steps, &mut acks);
        for (at, r, step) in steps {
            self.events.push((at, WorldEvent::Deploy(r, step)));
        }
        for (at, id) in acks {
            self.events.push((at, WorldEvent::Actuated(id)));
        }
        for (i, down) in self.cond.down.iter().enumerate() {
            if self.probed[i] == *down {
                self.probed[i] = !down;
                self.events.push((t, WorldEvent::Health(i, !down)));
            }
        }
    }

    fn boundary(&mut self, t: f64) {
        let s = self.setup;
        self.events.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.policy.interval(Interval {
            world: s.world,
            now: t,
            length: s.window,
            windows: &mut self.windows,
            events: &self.events,
            rollouts: &mut self.rollouts,
            actuation_delay: s.actuation_delay,
        });
        self.windows.clear();
        self.events.clear();
    }

    fn request(&mut self, k: usize, t: f64) {
        let w = self.setup.world;
        self.now_bucket = self.tally.bucket(t);
        self.frontier = t;
        self.rng.set_stream(self.requests);
        self.rng.set_word_pos(0);
        self.requests += 1;
        let c = self.call(w.entries[k].edge, t);
        self.tally.user(self.now_bucket, k, c.ok, c.ms);
    }

    fn call(&mut self, e: usize, t: f64) -> Call {
        let w = self.setup.world;
        let edge = &w.edges[e];
        let retries = self.cond.retries[e].unwrap_or(edge.retries);
        let mut elapsed = 0.0;
        let mut backoff = edge.backoff_ms;
        let mut ok = false;
        for attempt in 0..=retries {
            if attempt > 0 {
                if !self.policy.may_retry(e, t + elapsed) {
                    break;
                }
                elapsed += backoff;
                backoff *= 2.0;
            }
            let now = t + elapsed;
            let Some(instance) = self.policy.pick(w, e, now) else {
                break;
            };
            let (served, took, version) = self.serve(instance, now);
            let (outcome, seen) = if took > edge.timeout_ms {
                (Outcome::Rejected, edge.timeout_ms)
            } else {
                (served, took)
            };
            let good = outcome == Outcome::Ok;
            self.policy.complete(w, e, instance, outcome, seen, now);
            self.windows.record(e, instance, version, good, seen);
            elapsed += seen;
            if good {
                ok = true;
                break;
            }
        }
        self.tally.call(self.now_bucket, edge.to, ok);
        Call { ok, ms: elapsed }
    }

    /// An instance serves a call arriving at `t`: (outcome, time taken, version).
    fn serve(&mut self, instance: usize, t: f64) -> (Outcome, f64, usize) {
        let w = self.setup.world;
        let svc = w.instances[instance].service;
        let spec = &w.services[svc].spec;
        if self.cond.down[instance] {
            return (Outcome::Rejected, REFUSED_MS, 0);
        }
        let q = &mut self.queues[instance];
        let wait = q.wait(self.frontier, t);
        if wait > QUEUE_LIMIT_MS {
            return (Outcome::Rejected, REFUSED_MS, 0);
        }
        q.add(
            t,
            1_000.0 / (spec.capacity_rps * self.cond.capacity[instance]),
        );
        let (mut version, mut err, mut factor) = (0, self.cond.errors[svc], self.cond.latency[svc]);
        if let Some(r) = self.rollouts.serve(svc, &mut self.rng) {
            (version, err, factor) = (1, err.max(r.error_rate), factor * r.latency_factor);
        }
        let mut ok = unit(&mut self.rng) >= err;
        let mut spent = wait;
        if ok {
            'deps: for &d in &w.services[svc].calls {
                let calls = w.edges[d].calls;
                let mut n = calls.floor() as u32;
                if unit(&mut self.rng) < calls - calls.floor() {
                    n += 1;
                }
                for _ in 0..n {
                    let c = self.call(d, t + spent);
                    spent += c.ms;
                    if !c.ok && w.edges[d].critical {
                        ok = false;
                        break 'deps;
                    }
                }
            }
        }
        let z: f64 = StandardNormal.sample(&mut self.rng);
        spent += spec.latency_ms * factor * (LATENCY_SIGMA * z).exp();
        let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
        (outcome, spent, version)
    }
}
