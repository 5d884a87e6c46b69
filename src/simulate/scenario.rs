//! The scenario file: a topology, its traffic and a timeline of faults, each
//! with its ground truth.
//!
//! A scenario is YAML (see `simulations/README.md` for the format with
//! examples). It is read in two steps, as the policy file is: serde with
//! `deny_unknown_fields` into the types below (a misspelt key is an error
//! naming the key, its path and its line), then [`super::validate`], which
//! reports every problem at once with its path (`faults[2].service`) and the
//! offending value. Defaults are documented beside each field.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::span::Span;
use crate::config::ConfigError;
use crate::events::observation::Tier;

/// A whole scenario, as written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in reports.
    pub name: String,
    /// What the scenario shows (one paragraph).
    #[serde(default)]
    pub description: String,
    /// Seed of every random draw; `--seed` overrides it. Default 1.
    #[serde(default = "one")]
    pub seed: u64,
    /// Simulated length of the run.
    pub duration: Span,
    /// Length of each `faultline.window` an instance reports. Default 10s.
    #[serde(default = "ten_seconds")]
    pub window: Span,
    /// How long an actuator takes to carry out a decision (a rollback, a
    /// route change) and acknowledge it. Default 5s.
    #[serde(default = "five_seconds")]
    pub actuation_delay: Span,
    /// Region names.
    pub regions: Vec<String>,
    /// Services by name.
    pub services: BTreeMap<String, ServiceSpec>,
    /// Calls between services (a call graph without cycles).
    #[serde(default)]
    pub dependencies: Vec<DependencySpec>,
    /// Requests arriving from outside, by entry service.
    pub traffic: BTreeMap<String, TrafficSpec>,
    /// What goes wrong, and when.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Good deploys: new versions no worse than the running one. A policy
    /// that rolls one back was wrong (the report counts it).
    #[serde(default)]
    pub deploys: Vec<DeploySpec>,
}

/// A good deploy.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySpec {
    /// When it starts.
    pub at: Span,
    /// The service deployed.
    pub service: String,
    /// The new version (not the running one).
    pub version: String,
    /// How it rolls out. Default a canary of 10, 50, 100 % a minute apart.
    #[serde(default)]
    pub strategy: DeployStrategy,
}

/// One service.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Business tier. Default `standard`.
    #[serde(default = "standard")]
    pub tier: Tier,
    /// Revenue lost per minute in which none of its requests succeed
    /// (pro rata for partial failure). Default 0.
    #[serde(default)]
    pub revenue_per_minute: f64,
    /// Objectives.
    #[serde(default)]
    pub slo: SloSpec,
    /// Instances per region (`eu: 3`); regions not named have none.
    pub instances: BTreeMap<String, u32>,
    /// Requests per second one instance serves before it queues. Default 100.
    #[serde(default = "hundred")]
    pub capacity_rps: f64,
    /// Median time an instance spends on a request, in ms, before its
    /// dependencies' time. Default 20.
    #[serde(default = "twenty")]
    pub latency_ms: f64,
    /// Fraction of requests that fail on their own. Default 0.001.
    #[serde(default = "base_error_rate")]
    pub error_rate: f64,
    /// Versions, the running one first. Default `[v1]`.
    #[serde(default = "first_version")]
    pub versions: Vec<String>,
}

/// A service's objectives.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Target fraction of successful requests. Default 0.999.
    #[serde(default = "three_nines")]
    pub availability: f64,
    /// Target p99 latency in ms. Default 500.
    #[serde(default = "five_hundred")]
    pub latency_p99_ms: f64,
}

impl Default for SloSpec {
    fn default() -> Self {
        Self {
            availability: three_nines(),
            latency_p99_ms: five_hundred(),
        }
    }
}

/// `from` calls `to` while serving a request.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    /// The caller.
    pub from: String,
    /// The service called.
    pub to: String,
    /// Calls per request of the caller (0.5: every other request). Default 1.
    #[serde(default = "one_f")]
    pub calls: f64,
    /// The caller gives up on a call after this long. Default 1s.
    #[serde(default = "one_second")]
    pub timeout: Span,
    /// Retries after a failed or timed-out call. Default 0.
    #[serde(default)]
    pub retries: u32,
    /// Wait before the first retry, doubling for each next one. Default 100ms.
    #[serde(default = "hundred_ms")]
    pub backoff: Span,
    /// Whether the caller's request fails when this call fails. A call
    /// that is not critical has a fallback (a page without recommendations).
    /// Default true.
    #[serde(default = "yes")]
    pub critical: bool,
}

/// Requests from outside to one entry service.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// Mean requests per second.
    pub rps: f64,
    /// A daily cycle around the mean, if any.
    #[serde(default)]
    pub diurnal: Option<Diurnal>,
}

/// Traffic following a cosine around its mean.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diurnal {
    /// Swing as a fraction of the mean (0.3: from 70 % to 130 %).
    pub amplitude: f64,
    /// Length of one cycle. Default 24h.
    #[serde(default = "one_day")]
    pub period: Span,
    /// When in the run the cycle peaks. Default 0s.
    #[serde(default)]
    pub peak_at: Span,
}

/// A fault: what happens, where, from `at` for `for` (to the end of the run
/// when `for` is absent).
///
/// Unknown keys are refused by [`FaultKind`], which receives every key but
/// these two (serde cannot deny them here as well as flatten the kind).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FaultSpec {
    /// When it starts.
    pub at: Span,
    /// How long it lasts; absent: to the end of the run.
    #[serde(default, rename = "for")]
    pub lasts: Option<Span>,
    /// What it is.
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// The kinds of fault, with what each needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// A new version of `service` that fails more and/or is slower, rolled
    /// out by `strategy`. Its effect lasts until it is rolled back.
    BadDeploy {
        /// The service deployed.
        service: String,
        /// The new version (not the running one).
        version: String,
        /// Its error rate. Default: the service's.
        #[serde(default)]
        error_rate: Option<f64>,
        /// Its latency as a multiple of the service's. Default 1.
        #[serde(default = "one_f")]
        latency_factor: f64,
        /// How it rolls out. Default a canary of 10, 50, 100 % a minute apart.
        #[serde(default)]
        strategy: DeployStrategy,
    },
    /// `service`'s latency grows linearly over `over` to `factor` times.
    LatencyLeak {
        /// The service.
        service: String,
        /// Time to reach the full factor.
        over: Span,
        /// Final latency multiple.
        factor: f64,
    },
    /// `service`'s error rate grows linearly over `over` to `to`.
    ErrorRamp {
        /// The service.
        service: String,
        /// Time to reach the full rate.
        over: Span,
        /// Final error rate.
        to: f64,
    },
    /// One instance of `service` stops answering (connections refused).
    InstanceCrash {
        /// The service.
        service: String,
        /// Which instance, counted from 0 across regions in name order.
        #[serde(default)]
        instance: u32,
    },
    /// One instance of `service` goes down and up every `period`.
    FlappingInstance {
        /// The service.
        service: String,
        /// Which instance, as for `instance_crash`.
        #[serde(default)]
        instance: u32,
        /// One down-and-up cycle.
        period: Span,
    },
    /// Every instance in `region` stops answering.
    RegionOutage {
        /// The region.
        region: String,
    },
    /// `service` answers slowly and partly fails (a database brownout).
    DependencyBrownout {
        /// The service browning out.
        service: String,
        /// Latency multiple. Default 5.
        #[serde(default = "five_f")]
        latency_factor: f64,
        /// Error rate while it lasts. Default 0.05.
        #[serde(default = "brownout_errors")]
        error_rate: f64,
    },
    /// `service` loses capacity, and its callers' retries (their
    /// `retries` on the edges into it, raised to `retries` if given) push
    /// load past what is left: the storm emerges from the retries.
    RetryStorm {
        /// The service whose capacity drops.
        service: String,
        /// Remaining capacity as a fraction. Default 0.5.
        #[serde(default = "half")]
        capacity_factor: f64,
        /// Retries the callers use while it lasts. Default: as declared.
        #[serde(default)]
        retries: Option<u32>,
    },
    /// Traffic to entry `service` multiplied by `factor`.
    TrafficSpike {
        /// The entry service.
        service: String,
        /// Traffic multiple.
        factor: f64,
    },
    /// One instance of `service` has only `capacity_factor` of its capacity
    /// (a neighbour on its host takes the rest).
    NoisyNeighbor {
        /// The service.
        service: String,
        /// Which instance, as for `instance_crash`.
        #[serde(default)]
        instance: u32,
        /// Remaining capacity as a fraction. Default 0.3.
        #[serde(default = "noisy_capacity")]
        capacity_factor: f64,
    },
}

/// How a deploy rolls out.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DeployStrategy {
    /// Every instance at once.
    AllAtOnce,
    /// A growing share of traffic to the new version.
    Canary {
        /// Shares in percent, increasing, ending at 100.
        steps: Vec<f64>,
        /// Time between steps.
        every: Span,
    },
}

impl Default for DeployStrategy {
    fn default() -> Self {
        Self::Canary {
            steps: vec![10.0, 50.0, 100.0],
            every: Span::secs(60),
        }
    }
}

/// What the report checks each fault against.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GroundTruth {
    /// The fault's kind (`bad_deploy`, ...).
    pub kind: &'static str,
    /// Where it starts: a service, or `region/<name>` for a region outage.
    pub root_cause: String,
    /// Start, in ms from the start of the run.
    pub start_ms: u64,
    /// End, in ms from the start of the run.
    pub end_ms: u64,
}

impl FaultKind {
    /// The name used in files and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadDeploy { .. } => "bad_deploy",
            Self::LatencyLeak { .. } => "latency_leak",
            Self::ErrorRamp { .. } => "error_ramp",
            Self::InstanceCrash { .. } => "instance_crash",
            Self::FlappingInstance { .. } => "flapping_instance",
            Self::RegionOutage { .. } => "region_outage",
            Self::DependencyBrownout { .. } => "dependency_brownout",
            Self::RetryStorm { .. } => "retry_storm",
            Self::TrafficSpike { .. } => "traffic_spike",
            Self::NoisyNeighbor { .. } => "noisy_neighbor",
        }
    }

    /// The service it concerns, if one (every kind but a region outage).
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::BadDeploy { service, .. }
            | Self::LatencyLeak { service, .. }
            | Self::ErrorRamp { service, .. }
            | Self::InstanceCrash { service, .. }
            | Self::FlappingInstance { service, .. }
            | Self::DependencyBrownout { service, .. }
            | Self::RetryStorm { service, .. }
            | Self::TrafficSpike { service, .. }
            | Self::NoisyNeighbor { service, .. } => Some(service),
            Self::RegionOutage { .. } => None,
        }
    }
}

impl Scenario {
    /// Reads and validates a scenario; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let de = yaml_serde::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            // The YAML error already says where (path, line and column).
            let message = e.into_inner().to_string();
            let message = message
                .strip_prefix(&format!("{path}: "))
                .unwrap_or(&message)
                .to_owned();
            ConfigError {
                origin: origin.to_owned(),
                problems: vec![crate::config::ConfigProblem { path, message }],
            }
        })?;
        super::validate::check(&scenario).map_err(|problems| ConfigError {
            origin: origin.to_owned(),
            problems,
        })?;
        Ok(scenario)
    }

    /// Reads and validates the scenario file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            problems: vec![crate::config::ConfigProblem {
                path: String::new(),
                message: format!("cannot read it: {e}"),
            }],
        })?;
        Self::parse(&text, &origin)
    }

    /// The ground truth of each fault, in file order.
    pub fn truths(&self) -> Vec<GroundTruth> {
        let end = self.duration.ms();
        self.faults
            .iter()
            .map(|f| GroundTruth {
                kind: f.kind.name(),
                root_cause: match &f.kind {
                    FaultKind::RegionOutage { region } => format!("region/{region}"),
                    other => other.service().unwrap_or_default().to_owned(),
                },
                start_ms: f.at.ms(),
                end_ms: f.lasts.map_or(end, |l| (f.at.ms() + l.ms()).min(end)),
            })
            .collect()
    }

    /// Instances of `service`: (region, index within the region), regions
    /// in name order; the fault `instance` fields count along this list.
    pub fn instances_of(&self, service: &str) -> Vec<(String, u32)> {
        self.services.get(service).map_or_else(Vec::new, |s| {
            s.instances
                .iter()
                .flat_map(|(region, n)| (0..*n).map(move |i| (region.clone(), i)))
                .collect()
        })
    }
}

fn yes() -> bool {
    true
}
fn one() -> u64 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn five_f() -> f64 {
    5.0
}
fn half() -> f64 {
    0.5
}
fn noisy_capacity() -> f64 {
    0.3
}
fn brownout_errors() -> f64 {
    0.05
}
fn hundred() -> f64 {
    100.0
}
fn twenty() -> f64 {
    20.0
}
fn base_error_rate() -> f64 {
    0.001
}
fn three_nines() -> f64 {
    0.999
}
fn five_hundred() -> f64 {
    500.0
}
fn standard() -> Tier {
    Tier::Standard
}
fn first_version() -> Vec<String> {
    vec!["v1".to_owned()]
}
fn one_second() -> Span {
    Span::secs(1)
}
fn five_seconds() -> Span {
    Span::secs(5)
}
fn ten_seconds() -> Span {
    Span::secs(10)
}
fn hundred_ms() -> Span {
    Span(100)
}
fn one_day() -> Span {
    Span::secs(86_400)
}
