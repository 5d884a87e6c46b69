//! `faultline load --profile baseline|stress|minimal`: realistic observation
//! traffic for a set of services, bounded in time and count.
//!
//! Every second of the run carries one `faultline.window` per instance
//! (Binomial errors around the profile's error rate, latency percentiles with
//! jitter) and a few sampled `faultline.request`s per service; the run opens
//! with one `faultline.topology` per service (a call graph where each
//! service calls the next two). `stress` adds a fault so the agents have
//! something to decide: one service's errors ramp to 40 % over the middle of
//! the run while another's p99 latency rises eightfold.
//!
//! [`Generator`] is pure: the same profile, seed and start time give the
//! same events, ids included (ids carry the start time, so two runs do not
//! dedupe each other away). [`run`] paces it against the wall clock.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Uniform};
use serde_json::json;

use super::target::{Outcome, Sender};
use crate::events::{Event, Timestamp};

/// A traffic shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// Its name.
    pub name: &'static str,
    /// Services (at least 2).
    pub services: usize,
    /// Instances per service.
    pub instances: usize,
    /// Requests per second per service.
    pub rps: u64,
    /// Sampled request events per service per second.
    pub samples: usize,
    /// Background error rate.
    pub error_rate: f64,
    /// Default length, seconds.
    pub duration_s: u64,
    /// Whether a fault is injected.
    pub fault: bool,
}

/// The built-in profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "minimal",
        services: 3,
        instances: 1,
        rps: 20,
        samples: 1,
        error_rate: 0.002,
        duration_s: 30,
        fault: false,
    },
    Profile {
        name: "baseline",
        services: 8,
        instances: 3,
        rps: 200,
        samples: 4,
        error_rate: 0.005,
        duration_s: 120,
        fault: false,
    },
    Profile {
        name: "stress",
        services: 20,
        instances: 5,
        rps: 2_000,
        samples: 20,
        error_rate: 0.01,
        duration_s: 120,
        fault: true,
    },
];

impl Profile {
    /// Looks a profile up by name.
    pub fn named(name: &str) -> Result<Self> {
        PROFILES
            .iter()
            .find(|p| p.name == name)
            .copied()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown profile {name:?}; choose one of {}",
                    PROFILES.map(|p| p.name).join(", ")
                )
            })
    }
}

const NAMES: [&str; 20] = [
    "frontend",
    "gateway",
    "checkout",
    "cart",
    "payments",
    "orders",
    "inventory",
    "catalog",
    "search",
    "pricing",
    "users",
    "auth",
    "shipping",
    "reviews",
    "recommendations",
    "notifications",
    "ledger",
    "fraud",
    "media",
    "sessions",
];

/// Seeded traffic for one run.
pub struct Generator {
    profile: Profile,
    start: Timestamp,
    length_s: u64,
    rng: ChaCha8Rng,
    services: Vec<String>,
}

impl Generator {
    /// A run of `length_s` seconds of `profile` from `start`.
    pub fn new(profile: Profile, seed: u64, start: Timestamp, length_s: u64) -> Self {
        let services = (0..profile.services.max(2))
            .map(|i| match NAMES.get(i) {
                Some(n) => (*n).to_owned(),
                None => format!("service-{i}"),
            })
            .collect();
        Self {
            profile,
            start,
            length_s: length_s.max(1),
            rng: ChaCha8Rng::seed_from_u64(seed),
            services,
        }
    }

    /// The services, entry first.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    fn id(&self, second: u64, n: usize) -> String {
        format!("load-{}-{second}-{n}", self.start.nanos() / 1_000_000_000)
    }

    fn at(&self, ms: u64) -> Timestamp {
        Timestamp::from_nanos(self.start.nanos() + ms as i64 * 1_000_000)
    }

    /// The opening topology: one event per service.
    pub fn topology(&self) -> Vec<Event> {
        let n = self.services.len();
        (self.services.iter().enumerate())
            .map(|(i, s)| {
                let deps: Vec<_> = ((i + 1)..(i + 3).min(n))
                    .map(|j| json!({"callee": self.services[j], "critical": j == i + 1}))
                    .collect();
                let tier = match i {
                    0..=2 => "critical",
                    3..=6 => "high",
                    _ => "standard",
                };
                event(json!({
                    "specversion": "1.0", "id": format!("{}-topology", self.id(0, i)),
                    "source": "faultline-load", "type": "faultline.topology", "subject": s,
                    "time": self.at(0),
                    "data": {"dependencies": deps, "tier": tier,
                             "revenue_per_minute": if i == 0 { 1000.0 } else { 0.0 }},
                }))
            })
            .collect()
    }

    /// Error rate and latency factor of service `i` in second `k` (the fault).
    fn health(&self, i: usize, k: u64) -> (f64, f64) {
        let base = self.profile.error_rate;
        if !self.profile.fault {
            return (base, 1.0);
        }
        let pos = k as f64 / self.length_s as f64;
        let ramp = ((pos - 0.3) / 0.2).clamp(0.0, 1.0) * (pos < 0.7) as u8 as f64;
        match i {
            1 => (base + 0.4 * ramp, 1.0),
            2 => (base, 1.0 + 7.0 * ramp),
            _ => (base, 1.0),
        }
    }

    /// The observations of second `k` (0-based), timed at its end.
    pub fn second(&mut self, k: u64) -> Vec<Event> {
        let p = self.profile;
        let per_instance = (p.rps / p.instances.max(1) as u64).max(1);
        let jitter = Uniform::new(0.9, 1.1).expect("a valid range");
        let mut out = Vec::new();
        let mut n = 0;
        let end = self.at((k + 1) * 1000);
        for i in 0..self.services.len() {
            let (err, slow) = self.health(i, k);
            let base_latency = 20.0 + 10.0 * (i % 6) as f64;
            for inst in 0..p.instances.max(1) {
                let requests = (per_instance as f64 * jitter.sample(&mut self.rng)) as u64;
                let errors = Binomial::new(requests, err.min(1.0))
                    .map(|b| b.sample(&mut self.rng))
                    .unwrap_or(0);
                let p50 = base_latency * slow * jitter.sample(&mut self.rng);
                let region = if inst % 2 == 0 { "eu-west" } else { "us-east" };
                out.push(event(json!({
                    "specversion": "1.0", "id": self.id(k, n), "source": "faultline-load",
                    "type": "faultline.window", "subject": self.services[i], "time": end,
                    "data": {"instance": format!("{}-{inst}", self.services[i]), "region": region,
                             "interval_ms": 1000, "requests": requests, "errors": errors,
                             "latency_ms": {"p50": round(p50), "p90": round(p50 * 2.0), "p99": round(p50 * 4.0)}},
                })));
                n += 1;
            }
            for s in 0..p.samples {
                let failed = Uniform::new(0.0, 1.0)
                    .expect("a valid range")
                    .sample(&mut self.rng)
                    < err;
                let latency = base_latency * slow * jitter.sample(&mut self.rng);
                let caller = (i > 0).then(|| self.services[i - 1].clone());
                out.push(event(json!({
                    "specversion": "1.0", "id": self.id(k, n), "source": "faultline-load",
                    "type": "faultline.request", "subject": self.services[i],
                    "time": self.at(k * 1000 + (s as u64 * 1000) / p.samples as u64),
                    "data": {"status": if failed { 503 } else { 200 }, "latency_ms": round(latency.max(1.0)),
                             "instance": format!("{}-{}", self.services[i], s % p.instances.max(1)),
                             "caller": caller},
                })));
                n += 1;
            }
        }
        out
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn event(v: serde_json::Value) -> Event {
    let mut v = v;
    // Absent optional fields are left out, not sent as null.
    if let Some(d) = v["data"].as_object_mut() {
        d.retain(|_, x| !x.is_null());
    }
    serde_json::from_value(v).expect("generated events are valid")
}

/// What a load run did.
#[derive(Debug, Default)]
pub struct LoadSummary {
    /// Events sent.
    pub sent: u64,
    /// The node's answers.
    pub outcome: Outcome,
    /// Seconds where sending took longer than the second itself.
    pub behind: u64,
}

/// Sends `length_s` seconds of traffic, paced by the wall clock, stopping at
/// `max_events`; `progress(second, sent)` after each second.
pub async fn run(
    mut generator: Generator,
    sender: &Sender,
    length_s: u64,
    max_events: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<LoadSummary> {
    let mut summary = LoadSummary::default();
    let send = |events: Vec<Event>, summary: &mut LoadSummary| {
        let room = max_events.saturating_sub(summary.sent) as usize;
        let events: Vec<Event> = events.into_iter().take(room).collect();
        summary.sent += events.len() as u64;
        async move { sender.send(&events).await }
    };
    let outcome = send(generator.topology(), &mut summary).await?;
    summary.outcome.absorb(outcome, 0);
    let started = Instant::now();
    for k in 0..length_s {
        if summary.sent >= max_events {
            break;
        }
        let events = generator.second(k);
        let outcome = send(events, &mut summary).await?;
        summary.outcome.absorb(outcome, 0);
        progress(k + 1, summary.sent);
        let next = started + Duration::from_secs(k + 1);
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => summary.behind += 1,
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Timestamp {
        Timestamp::from_nanos(1_800_000_000_000_000_000)
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic_and_another_seed_differs() {
        let p = Profile::named("baseline").unwrap();
        let run = |seed| {
            let mut g = Generator::new(p, seed, start(), 60);
            (0..3).flat_map(|k| g.second(k)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        // 8 services × 3 instances windows + 8 × 4 samples per second.
        assert_eq!(run(1).len(), 3 * (24 + 32));
    }

    #[test]
    fn stress_ramps_errors_on_one_service_mid_run() {
        let p = Profile::named("stress").unwrap();
        let mut g = Generator::new(p, 7, start(), 100);
        let rate = |events: &[Event], svc: &str| {
            let (mut req, mut err) = (0, 0);
            for e in events {
                if let crate::events::Data::Window(w) = &e.data {
                    if e.subject == svc {
                        req += w.requests;
                        err += w.errors;
                    }
                }
            }
            err as f64 / req as f64
        };
        let early = g.second(10);
        let peak = g.second(60);
        assert!(
            rate(&early, "gateway") < 0.03,
            "{}",
            rate(&early, "gateway")
        );
        assert!(rate(&peak, "gateway") > 0.3, "{}", rate(&peak, "gateway"));
        assert!(rate(&peak, "checkout") < 0.03);
    }

    #[test]
    fn every_generated_event_passes_input_validation() {
        for p in PROFILES {
            let mut g = Generator::new(p, 3, start(), p.duration_s);
            let mut all = g.topology();
            all.extend(g.second(0));
            let mut ids = std::collections::HashSet::new();
            for e in &all {
                crate::events::validate::validate_input(e).unwrap();
                assert!(ids.insert(e.id.clone()), "duplicate id {}", e.id);
            }
        }
        assert!(Profile::named("huge")
            .unwrap_err()
            .to_string()
            .contains("minimal, baseline, stress"));
    }
}
