//! Breaker configuration: `[breaker]` in the policy file.
//!
//! Key names mirror resilience4j's CircuitBreakerConfig so operators can carry
//! settings over. Resolution: built-in defaults, overlaid by
//! `[breaker.default]`, overlaid by `[breaker.service.<name>]` for that
//! service (edge and instance breakers use the callee's settings).
//!
//! ```toml
//! [breaker]
//! scopes = ["service", "system"]      # which scopes get breakers (default)
//!
//! [breaker.default]
//! sliding_window_type = "time"         # or "count" (resilience4j's default)
//! sliding_window_size = 20             # seconds; outcomes for "count" (default 100)
//! minimum_number_of_calls = 100
//! failure_rate_threshold = 50.0        # percent, (0, 100]
//! critical_failure_rate_threshold = 95.0  # for a service its callers cannot do without
//! slow_call_rate_threshold = 100.0     # percent, (0, 100]
//! slow_call_duration_threshold_ms = 60000
//! wait_duration_in_open_state_ms = 20000  # resilience4j: 60000; Hystrix: 5000
//! wait_duration_multiplier = 1.0       # backoff per consecutive re-open, >= 1
//! max_wait_duration_in_open_state_ms = 600000
//! permitted_number_of_calls_in_half_open_state = 10
//! max_wait_duration_in_half_open_state_ms = 0   # 0 = no limit
//! # error_count_threshold = 20         # failures in the window, any volume
//! # consecutive_failures_threshold = 5 # Envoy-style
//! # failure_statuses = [0, "5xx"]      # default
//! # ignore_statuses = [404]            # never counted
//! # adaptive = { k = 3.0, floor = 1.0, ceiling = 100.0, alpha = 0.05, warmup_samples = 10 }
//!
//! [breaker.service.checkout]           # per-service overrides of any key above
//!
//! [breaker.system]
//! open_services_threshold = 50.0       # percent of known services tripped
//! minimum_services = 3
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::Problems;
use crate::events::observation::Scope;
use crate::events::subject::is_valid_token;

/// Sliding window kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    /// The last N outcomes.
    Count,
    /// The last N seconds, in per-second buckets.
    Time,
}

/// A status or a status class (`"5xx"`) in a classification list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StatusEntry {
    /// One status.
    Code(i64),
    /// A class such as `"5xx"`.
    Class(String),
}

/// A parsed set of statuses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StatusSet {
    codes: Vec<u16>,
    classes: Vec<u16>,
}

impl StatusSet {
    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.codes.contains(&status) || self.classes.contains(&(status / 100))
    }

    fn parse(entries: &[StatusEntry], path: &str, problems: &mut Problems) -> Self {
        let mut set = Self::default();
        for (i, e) in entries.iter().enumerate() {
            match e {
                StatusEntry::Code(c) if (0..=999).contains(c) => set.codes.push(*c as u16),
                StatusEntry::Class(s)
                    if s.len() == 3
                        && s.as_bytes()[0].is_ascii_digit()
                        && s[1..].eq_ignore_ascii_case("xx") =>
                {
                    set.classes.push(u16::from(s.as_bytes()[0] - b'0'))
                }
                other => problems.add(
                    format!("{path}[{i}]"),
                    format!("{other:?} is not a status 0-999 or a class like \"5xx\""),
                ),
            }
        }
        set
    }
}

/// `adaptive = { ... }` as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawAdaptive {
    k: Option<f64>,
    floor: Option<f64>,
    ceiling: Option<f64>,
    alpha: Option<f64>,
    warmup_samples: Option<u64>,
}

/// One settings table as written; every key optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    sliding_window_type: Option<WindowType>,
    sliding_window_size: Option<i64>,
    minimum_number_of_calls: Option<i64>,
    failure_rate_threshold: Option<f64>,
    critical_failure_rate_threshold: Option<f64>,
    slow_call_rate_threshold: Option<f64>,
    slow_call_duration_threshold_ms: Option<i64>,
    wait_duration_in_open_state_ms: Option<i64>,
    wait_duration_multiplier: Option<f64>,
    max_wait_duration_in_open_state_ms: Option<i64>,
    permitted_number_of_calls_in_half_open_state: Option<i64>,
    max_wait_duration_in_half_open_state_ms: Option<i64>,
    error_count_threshold: Option<i64>,
    consecutive_failures_threshold: Option<i64>,
    failure_statuses: Option<Vec<StatusEntry>>,
    ignore_statuses: Option<Vec<StatusEntry>>,
    adaptive: Option<RawAdaptive>,
}

/// `[breaker.system]` as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawSystem {
    open_services_threshold: Option<f64>,
    minimum_services: Option<i64>,
}

/// `[breaker]` as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    scopes: Option<Vec<Scope>>,
    #[serde(default)]
    default: RawSettings,
    #[serde(default)]
    service: BTreeMap<String, RawSettings>,
    #[serde(default)]
    system: RawSystem,
}

/// Adaptive threshold parameters (see the `adaptive` module for the formula).
#[derive(Clone, Debug, PartialEq)]
pub struct Adaptive {
    /// Standard deviations above the baseline mean.
    pub k: f64,
    /// Lowest threshold, percent.
    pub floor: f64,
    /// Highest threshold, percent.
    pub ceiling: f64,
    /// EWMA weight of each new sample.
    pub alpha: f64,
    /// Samples before the learned threshold replaces the static one.
    pub warmup_samples: u64,
}

/// Validated settings of one service's breakers.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Window kind.
    pub window_type: WindowType,
    /// Outcomes (count) or seconds (time).
    pub window_size: u32,
    /// Calls before rates are known.
    pub minimum_calls: u64,
    /// Percent.
    pub failure_rate_threshold: f64,
    /// Percent, in force instead when it is higher for a service some caller
    /// declares critical, or an entry service (see [`super::core`]).
    pub critical_failure_rate_threshold: f64,
    /// Percent.
    pub slow_call_rate_threshold: f64,
    /// A call at or above this latency is slow.
    pub slow_call_duration_ms: f64,
    /// Base open wait.
    pub wait_open_ms: u64,
    /// Backoff factor per consecutive re-open.
    pub wait_multiplier: f64,
    /// Cap of the open wait.
    pub max_wait_open_ms: u64,
    /// Probe calls in half-open.
    pub permitted_half_open: u32,
    /// Longest half-open before re-opening (None: no limit).
    pub max_wait_half_open_ms: Option<u64>,
    /// Absolute failures in the window that trip.
    pub error_count_threshold: Option<u64>,
    /// Failures in a row that trip.
    pub consecutive_failures_threshold: Option<u64>,
    /// Statuses that are failures.
    pub failure_statuses: StatusSet,
    /// Statuses never counted.
    pub ignore_statuses: StatusSet,
    /// Adaptive failure threshold, if enabled.
    pub adaptive: Option<Adaptive>,
}

impl Settings {
    /// These settings for a circuit its callers cannot do without: the
    /// failure-rate threshold (fixed, and the adaptive one's floor) raised
    /// to `critical_failure_rate_threshold` when that is higher.
    pub fn for_critical(&self) -> Option<Settings> {
        let crit = self.critical_failure_rate_threshold;
        (crit > self.failure_rate_threshold).then(|| Settings {
            failure_rate_threshold: crit,
            adaptive: self.adaptive.as_ref().map(|a| Adaptive {
                floor: a.floor.max(crit),
                ceiling: a.ceiling.max(crit),
                ..a.clone()
            }),
            ..self.clone()
        })
    }

    /// Calls needed before rates are known in the closed window: resilience4j
    /// caps it at the window size for count windows.
    pub fn effective_minimum_calls(&self) -> u64 {
        match self.window_type {
            WindowType::Count => self.minimum_calls.min(u64::from(self.window_size)),
            WindowType::Time => self.minimum_calls,
        }
    }

    /// The open wait after `reopens` consecutive re-opens, capped.
    pub fn open_wait_ms(&self, reopens: u32) -> u64 {
        let wait = self.wait_open_ms as f64 * self.wait_multiplier.powi(reopens.min(1024) as i32);
        if wait >= self.max_wait_open_ms as f64 {
            self.max_wait_open_ms
        } else {
            wait as u64
        }
    }
}

/// Validated `[breaker.system]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemSettings {
    /// Percent of known services tripped at which the system breaker opens.
    pub open_services_threshold: f64,
    /// Fewer known services than this never open the system breaker.
    pub minimum_services: u64,
}

/// Validated `[breaker]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Scopes that get breakers.
    pub scopes: Vec<Scope>,
    /// Settings for services without their own table.
    pub default: Settings,
    /// Per-service settings.
    pub services: BTreeMap<String, Settings>,
    /// System scope.
    pub system: SystemSettings,
    /// [`Settings::for_critical`] of `default` and of each of `services`,
    /// where it differs (resolved once, not per record).
    critical_default: Option<Settings>,
    critical_services: BTreeMap<String, Settings>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        let mut p = Problems::default();
        Self::from_raw(&RawBreaker::default(), &mut p)
    }
}

impl BreakerConfig {
    /// Settings for `service`.
    pub fn settings(&self, service: &str) -> &Settings {
        self.services.get(service).unwrap_or(&self.default)
    }

    /// Settings for `service` where its callers cannot do without it.
    pub fn critical_settings(&self, service: &str) -> &Settings {
        let raised = if self.services.contains_key(service) {
            self.critical_services.get(service)
        } else {
            self.critical_default.as_ref()
        };
        raised.unwrap_or_else(|| self.settings(service))
    }

    /// Whether breakers of `scope` are kept.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Validates `[breaker]`, adding every problem to `problems`.
    pub fn from_raw(raw: &RawBreaker, problems: &mut Problems) -> Self {
        let default = resolve(&raw.default, None, "breaker.default", problems);
        let services: BTreeMap<String, Settings> = raw
            .service
            .iter()
            .map(|(name, table)| {
                let path = format!("breaker.service.{name}");
                if !is_valid_token(name) {
                    problems.add(
                        &path,
                        format!("service name {name:?} is not a valid NATS subject token"),
                    );
                }
                (
                    name.clone(),
                    resolve(
                        &raw.default,
                        Some((table, path.as_str())),
                        "breaker.default",
                        problems,
                    ),
                )
            })
            .collect();
        let sys = &raw.system;
        let system = SystemSettings {
            open_services_threshold: percent(
                sys.open_services_threshold,
                50.0,
                "breaker.system.open_services_threshold",
                problems,
            ),
            minimum_services: positive(
                sys.minimum_services,
                3,
                "breaker.system.minimum_services",
                problems,
            ),
        };
        Self {
            scopes: raw
                .scopes
                .clone()
                .unwrap_or_else(|| vec![Scope::Service, Scope::System]),
            critical_default: default.for_critical(),
            critical_services: services
                .iter()
                .filter_map(|(k, v)| v.for_critical().map(|c| (k.clone(), c)))
                .collect(),
            default,
            services,
            system,
        }
    }
}

fn percent(v: Option<f64>, default: f64, path: &str, problems: &mut Problems) -> f64 {
    match v {
        None => default,
        Some(x) if x > 0.0 && x <= 100.0 => x,
        Some(x) => {
            problems.add(path, format!("{x} is not a percentage in (0, 100]"));
            default
        }
    }
}

fn positive(v: Option<i64>, default: u64, path: &str, problems: &mut Problems) -> u64 {
    match v {
        None => default,
        Some(x) if x >= 1 => x as u64,
        Some(x) => {
            problems.add(path, format!("{x} must be at least 1"));
            default
        }
    }
}

fn non_negative(v: Option<i64>, default: u64, path: &str, problems: &mut Problems) -> u64 {
    match v {
        None => default,
        Some(x) if x >= 0 => x as u64,
        Some(x) => {
            problems.add(path, format!("{x} must not be negative"));
            default
        }
    }
}

/// Picks each key from the service table if set there, else from the default
/// table, else the built-in; problems are reported at the table that set the key.
fn resolve(
    default: &RawSettings,
    over: Option<(&RawSettings, &str)>,
    default_path: &str,
    problems: &mut Problems,
) -> Settings {
    macro_rules! pick {
        ($key:ident) => {{
            match over.and_then(|(t, p)| t.$key.clone().map(|v| (v, p))) {
                Some((v, p)) => (Some(v), format!("{p}.{}", stringify!($key))),
                None => (
                    default.$key.clone(),
                    format!("{default_path}.{}", stringify!($key)),
                ),
            }
        }};
    }
    let (v, p) = pick!(sliding_window_type);
    let _ = p;
    let window_type = v.unwrap_or(WindowType::Time);
    let (v, p) = pick!(sliding_window_size);
    let default_size = match window_type {
        WindowType::Time => 20,
        WindowType::Count => 100,
    };
    let window_size = positive(v, default_size, &p, problems);
    let window_size = if window_size > 1_000_000 {
        problems.add(
            &p,
            format!("{window_size} is larger than the 1000000 supported"),
        );
        100
    } else {
        window_size as u32
    };
    let (v, p) = pick!(minimum_number_of_calls);
    let minimum_calls = positive(v, 100, &p, problems);
    let (v, p) = pick!(failure_rate_threshold);
    let failure_rate_threshold = percent(v, 50.0, &p, problems);
    let (v, p) = pick!(critical_failure_rate_threshold);
    let critical_failure_rate_threshold = percent(v, 95.0, &p, problems);
    let (v, p) = pick!(slow_call_rate_threshold);
    let slow_call_rate_threshold = percent(v, 100.0, &p, problems);
    let (v, p) = pick!(slow_call_duration_threshold_ms);
    let slow_call_duration_ms = positive(v, 60_000, &p, problems) as f64;
    let (v, p) = pick!(wait_duration_in_open_state_ms);
    let wait_open_ms = positive(v, 20_000, &p, problems);
    let (v, p) = pick!(wait_duration_multiplier);
    let wait_multiplier = match v {
        None => 1.0,
        Some(x) if x.is_finite() && x >= 1.0 => x,
        Some(x) => {
            problems.add(
                &p,
                format!("{x} must be a number >= 1.0 (1.0 = no backoff)"),
            );
            1.0
        }
    };
    let (v, p) = pick!(max_wait_duration_in_open_state_ms);
    let max_wait_open_ms = positive(v, 600_000.max(wait_open_ms as i64) as u64, &p, problems);
    if max_wait_open_ms < wait_open_ms {
        problems.add(
            &p,
            format!("{max_wait_open_ms} is below wait_duration_in_open_state_ms ({wait_open_ms})"),
        );
    }
    let (v, p) = pick!(permitted_number_of_calls_in_half_open_state);
    let permitted = positive(v, 10, &p, problems);
    let permitted_half_open = u32::try_from(permitted).unwrap_or_else(|_| {
        problems.add(&p, format!("{permitted} is too large"));
        10
    });
    let (v, p) = pick!(max_wait_duration_in_half_open_state_ms);
    let max_wait_half_open_ms = Some(non_negative(v, 0, &p, problems)).filter(|&ms| ms > 0);
    let (v, p) = pick!(error_count_threshold);
    let error_count_threshold = v.map(|x| positive(Some(x), 1, &p, problems));
    let (v, p) = pick!(consecutive_failures_threshold);
    let consecutive_failures_threshold = v.map(|x| positive(Some(x), 1, &p, problems));
    let (v, p) = pick!(failure_statuses);
    let failure_statuses = match v {
        Some(list) => StatusSet::parse(&list, &p, problems),
        None => StatusSet {
            codes: vec![0],
            classes: vec![5],
        },
    };
    let (v, p) = pick!(ignore_statuses);
    let ignore_statuses = v
        .map(|l| StatusSet::parse(&l, &p, problems))
        .unwrap_or_default();
    let (v, p) = pick!(adaptive);
    let adaptive = v.map(|a| adaptive(&a, &p, problems));
    Settings {
        window_type,
        window_size,
        minimum_calls,
        failure_rate_threshold,
        critical_failure_rate_threshold,
        slow_call_rate_threshold,
        slow_call_duration_ms,
        wait_open_ms,
        wait_multiplier,
        max_wait_open_ms,
        permitted_half_open,
        max_wait_half_open_ms,
        error_count_threshold,
        consecutive_failures_threshold,
        failure_statuses,
        ignore_statuses,
        adaptive,
    }
}

fn adaptive(a: &RawAdaptive, path: &str, problems: &mut Problems) -> Adaptive {
    let k = match a.k {
        None => 3.0,
        Some(k) if k.is_finite() && k >= 0.0 => k,
        Some(k) => {
            problems.add(
                format!("{path}.k"),
                format!("{k} must be a finite number >= 0"),
            );
            3.0
        }
    };
    let floor = percent(a.floor, 1.0, &format!("{path}.floor"), problems);
    let ceiling = percent(a.ceiling, 100.0, &format!("{path}.ceiling"), problems);
    if ceiling < floor {
        problems.add(
            format!("{path}.ceiling"),
            format!("{ceiling} is below floor ({floor})"),
        );
    }
    let alpha = match a.alpha {
        None => 0.05,
        Some(x) if x > 0.0 && x <= 1.0 => x,
        Some(x) => {
            problems.add(format!("{path}.alpha"), format!("{x} is not in (0, 1]"));
            0.05
        }
    };
    let warmup_samples = positive(
        a.warmup_samples.map(|w| w as i64),
        10,
        &format!("{path}.warmup_samples"),
        problems,
    );
    Adaptive {
        k,
        floor,
        ceiling,
        alpha,
        warmup_samples,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn defaults_mirror_resilience4j_but_for_a_time_window_and_the_open_wait() {
        let c = Config::defaults().breaker;
        let s = &c.default;
        // A 20 s time window: window events aggregate seconds of calls, and
        // a count window of 100 is smaller than one of them.
        assert_eq!(s.window_type, super::WindowType::Time);
        assert_eq!(
            (s.window_size, s.minimum_calls, s.permitted_half_open),
            (20, 100, 10)
        );
        let count = Config::from_toml("[breaker.default]\nsliding_window_type = \"count\"\n", "t")
            .unwrap()
            .breaker;
        assert_eq!(
            count.default.window_size, 100,
            "resilience4j's 100 outcomes"
        );
        assert_eq!(
            (s.failure_rate_threshold, s.slow_call_rate_threshold),
            (50.0, 100.0)
        );
        assert_eq!(
            (s.wait_open_ms, s.slow_call_duration_ms),
            (20_000, 60_000.0),
            "a 20 s open wait (resilience4j: 60 s), see README"
        );
        assert!(s.failure_statuses.contains(0) && s.failure_statuses.contains(503));
        assert!(!s.failure_statuses.contains(404));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
[breaker.default]
failure_rate_threshold = 0.0
sliding_window_size = 0
[breaker.service.checkout]
permitted_number_of_calls_in_half_open_state = 0
wait_duration_in_open_state_ms = 0
"#;
        let err = Config::from_toml(text, "test.toml").unwrap_err();
        let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "breaker.default.failure_rate_threshold",
                "breaker.default.sliding_window_size",
                "breaker.service.checkout.permitted_number_of_calls_in_half_open_state",
                "breaker.service.checkout.wait_duration_in_open_state_ms",
            ]
        );
    }

    #[test]
    fn service_overrides_inherit_the_default_table() {
        let text = "[breaker.default]\nminimum_number_of_calls = 5\n[breaker.service.pay]\nfailure_rate_threshold = 20.0\n";
        let c = Config::from_toml(text, "t").unwrap().breaker;
        assert_eq!(c.settings("pay").minimum_calls, 5);
        assert_eq!(c.settings("pay").failure_rate_threshold, 20.0);
        assert_eq!(c.settings("other").failure_rate_threshold, 50.0);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let text = "[breaker.default]\nwait_duration_in_open_state_ms = 1000\nwait_duration_multiplier = 2.0\nmax_wait_duration_in_open_state_ms = 5000\n";
        let s = Config::from_toml(text, "t").unwrap().breaker.default;
        assert_eq!(
            [0, 1, 2, 3, 9].map(|r| s.open_wait_ms(r)),
            [1000, 2000, 4000, 5000, 5000]
        );
    }
}
