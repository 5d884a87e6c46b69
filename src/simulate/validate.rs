//! Checks a parsed scenario and reports every problem at once, each with
//! its path (`services.cart.capacity_rps`, `faults[2].service`) and the
//! offending value, so a scenario is fixed in one pass.
//!
//! What it guarantees the engine: every name refers to something declared,
//! the call graph has no cycles (a request's calls end), every rate,
//! fraction and factor is in range, and every fault starts inside the run.

use std::collections::{BTreeMap, BTreeSet};

use super::scenario::{DeployStrategy, FaultKind, Scenario};
use crate::config::{ConfigProblem, Problems};

/// Longest run the simulator accepts.
const MAX_DURATION_MS: u64 = 7 * 24 * 3_600_000;

/// Every problem in `s`, or nothing.
pub fn check(s: &Scenario) -> Result<(), Vec<ConfigProblem>> {
    let mut p = Problems::default();
    if s.name.trim().is_empty() {
        p.add("name", "is empty: give the scenario a short name");
    }
    if s.duration.ms() == 0 || s.duration.ms() > MAX_DURATION_MS {
        p.add(
            "duration",
            format!("{} must be above 0 and at most 7 days", s.duration),
        );
    }
    if s.window.ms() < 1000 || s.window.ms() > 300_000 || s.window.ms() % 1000 != 0 {
        p.add(
            "window",
            format!("{} must be whole seconds from 1s to 5m", s.window),
        );
    }
    if s.actuation_delay.ms() > 600_000 {
        p.add(
            "actuation_delay",
            format!("{} is over 10 minutes", s.actuation_delay),
        );
    }
    regions(s, &mut p);
    services(s, &mut p);
    dependencies(s, &mut p);
    traffic(s, &mut p);
    for (i, f) in s.faults.iter().enumerate() {
        fault(s, i, f, &mut p);
    }
    for (i, d) in s.deploys.iter().enumerate() {
        let at = |field: &str| format!("deploys[{i}].{field}");
        if d.at.ms() >= s.duration.ms() {
            p.add(
                at("at"),
                format!("{} is not before the end of the run ({})", d.at, s.duration),
            );
        }
        service_ref(s, &d.service, at("service"), &mut p);
        deploy(s, &d.service, &d.version, &d.strategy, &at, &mut p);
    }
    let list = p.list();
    if list.is_empty() {
        Ok(())
    } else {
        Err(list)
    }
}

fn known(names: impl Iterator<Item = impl AsRef<str>>) -> String {
    names
        .map(|n| n.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `name` must be a declared service.
fn service_ref(s: &Scenario, name: &str, path: String, p: &mut Problems) {
    if !s.services.contains_key(name) {
        let services = known(s.services.keys());
        p.add(
            path,
            format!("'{name}' is not a service (services: {services})"),
        );
    }
}

/// A deploy of `version` to `service` by `strategy`, good or bad.
fn deploy(
    s: &Scenario,
    service: &str,
    version: &str,
    strategy: &DeployStrategy,
    at: &dyn Fn(&str) -> String,
    p: &mut Problems,
) {
    if let Some(svc) = s.services.get(service) {
        if svc.versions.first().is_some_and(|v| v == version) {
            p.add(
                at("version"),
                format!("'{version}' is already running on {service}: name the new version"),
            );
        }
    }
    if let DeployStrategy::Canary { steps, every } = strategy {
        let increasing = steps.windows(2).all(|w| w[0] < w[1]);
        let in_range = steps
            .iter()
            .all(|x| x.is_finite() && *x > 0.0 && *x <= 100.0);
        if steps.is_empty() || !increasing || !in_range || steps.last() != Some(&100.0) {
            p.add(
                at("strategy.canary.steps"),
                format!("{steps:?} must be increasing percentages above 0 ending at 100"),
            );
        }
        if every.ms() == 0 {
            p.add(at("strategy.canary.every"), "must be above 0");
        }
    }
}

/// `name` must be a declared region.
fn region_ref(s: &Scenario, name: &str, path: String, p: &mut Problems) {
    if !s.regions.iter().any(|r| r == name) {
        let regions = known(s.regions.iter());
        p.add(
            path,
            format!("'{name}' is not a region (regions: {regions})"),
        );
    }
}

fn fraction(v: f64, path: &str, p: &mut Problems) {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        p.add(path, format!("{v} is not a fraction from 0 to 1"));
    }
}

fn positive(v: f64, path: &str, p: &mut Problems) {
    if !(v.is_finite() && v > 0.0) {
        p.add(path, format!("{v} must be a number above 0"));
    }
}

fn regions(s: &Scenario, p: &mut Problems) {
    if s.regions.is_empty() {
        p.add("regions", "lists no region: name at least one (e.g. [eu])");
    }
    let mut seen = BTreeSet::new();
    for (i, r) in s.regions.iter().enumerate() {
        if r.trim().is_empty() || r.contains(['.', '/', ' ']) {
            p.add(
                format!("regions[{i}]"),
                format!("'{r}' is not a usable name (no spaces, dots or slashes)"),
            );
        }
        if !seen.insert(r) {
            p.add(format!("regions[{i}]"), format!("'{r}' is listed twice"));
        }
    }
}

fn services(s: &Scenario, p: &mut Problems) {
    if s.services.is_empty() {
        p.add("services", "declares no service");
    }
    for (name, svc) in &s.services {
        let at = |field: &str| format!("services.{name}.{field}");
        if name.trim().is_empty() || name.contains(['.', '/', ' ', '*', '>']) {
            p.add(
                format!("services.{name}"),
                format!(
                    "'{name}' is not a usable service name (no spaces, dots, slashes or wildcards)"
                ),
            );
        }
        if !(svc.revenue_per_minute.is_finite() && svc.revenue_per_minute >= 0.0) {
            p.add(
                at("revenue_per_minute"),
                format!("{} must be at or above 0", svc.revenue_per_minute),
            );
        }
        let a = svc.slo.availability;
        if !(a.is_finite() && a > 0.0 && a < 1.0) {
            p.add(
                at("slo.availability"),
                format!("{a} must be above 0 and below 1 (e.g. 0.999)"),
            );
        }
        positive(svc.slo.latency_p99_ms, &at("slo.latency_p99_ms"), p);
        positive(svc.capacity_rps, &at("capacity_rps"), p);
        positive(svc.latency_ms, &at("latency_ms"), p);
        fraction(svc.error_rate, &at("error_rate"), p);
        for region in svc.instances.keys() {
            region_ref(s, region, at(&format!("instances.{region}")), p);
        }
        if svc.instances.values().sum::<u32>() == 0 {
            p.add(
                at("instances"),
                "has no instance: give it at least one in some region",
            );
        }
        if svc.instances.values().any(|n| *n > 1000) {
            p.add(at("instances"), "over 1000 instances in a region");
        }
        if svc.versions.is_empty() {
            p.add(at("versions"), "is empty: list the running version first");
        }
        let distinct: BTreeSet<_> = svc.versions.iter().collect();
        if distinct.len() != svc.versions.len() {
            p.add(
                at("versions"),
                format!("lists a version twice: {:?}", svc.versions),
            );
        }
    }
}

fn dependencies(s: &Scenario, p: &mut Problems) {
    let mut seen = BTreeSet::new();
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (i, d) in s.dependencies.iter().enumerate() {
        let at = |field: &str| format!("dependencies[{i}].{field}");
        for (field, name) in [("from", &d.from), ("to", &d.to)] {
            service_ref(s, name, at(field), p);
        }
        if d.from == d.to {
            p.add(at("to"), format!("'{}' calls itself", d.to));
        }
        if !seen.insert((&d.from, &d.to)) {
            p.add(
                at("to"),
                format!("{} -> {} is declared twice", d.from, d.to),
            );
        }
        if !(d.calls.is_finite() && d.calls > 0.0 && d.calls <= 20.0) {
            p.add(
                at("calls"),
                format!(
                    "{} must be above 0 and at most 20 calls per request",
                    d.calls
                ),
            );
        }
        if d.timeout.ms() == 0 {
            p.add(at("timeout"), "must be above 0");
        }
        if d.retries > 10 {
            p.add(at("retries"), format!("{} is over 10", d.retries));
        }
        graph.entry(&d.from).or_default().push(&d.to);
    }
    if let Some(cycle) = find_cycle(&graph) {
        p.add(
            "dependencies",
            format!("the call graph has a cycle: {}", cycle.join(" -> ")),
        );
    }
}

/// A cycle in the call graph, as the names along it, if there is one.
fn find_cycle<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|x| *x == n).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(n);
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n, Mark::Open);
        path.push(n);
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn traffic(s: &Scenario, p: &mut Problems) {
    if s.traffic.is_empty() {
        p.add(
            "traffic",
            "sends no request: give at least one entry service a rate",
        );
    }
    for (name, t) in &s.traffic {
        let at = |field: &str| format!("traffic.{name}.{field}");
        service_ref(s, name, format!("traffic.{name}"), p);
        if !(t.rps.is_finite() && t.rps > 0.0 && t.rps <= 100_000.0) {
            p.add(
                at("rps"),
                format!("{} must be above 0 and at most 100000", t.rps),
            );
        }
        if let Some(d) = &t.diurnal {
            if !(d.amplitude.is_finite() && (0.0..1.0).contains(&d.amplitude)) {
                p.add(
                    at("diurnal.amplitude"),
                    format!("{} must be from 0 up to (not including) 1", d.amplitude),
                );
            }
            if d.period.ms() < 60_000 {
                p.add(
                    at("diurnal.period"),
                    format!("{} is shorter than a minute", d.period),
                );
            }
        }
    }
}

fn fault(s: &Scenario, i: usize, f: &super::scenario::FaultSpec, p: &mut Problems) {
    let at = |field: &str| format!("faults[{i}].{field}");
    if f.at.ms() >= s.duration.ms() {
        p.add(
            at("at"),
            format!("{} is not before the end of the run ({})", f.at, s.duration),
        );
    }
    if f.lasts.is_some_and(|l| l.ms() == 0) {
        p.add(
            at("for"),
            "must be above 0 (leave it out to last to the end of the run)",
        );
    }
    if let Some(service) = f.kind.service() {
        service_ref(s, service, at("service"), p);
    }
    let instance = |n: u32, p: &mut Problems| {
        let count = f.kind.service().map_or(0, |svc| s.instances_of(svc).len());
        if count > 0 && n as usize >= count {
            p.add(
                at("instance"),
                format!("{n} is out of range: the service has {count} instance(s), counted from 0"),
            );
        }
    };
    match &f.kind {
        FaultKind::BadDeploy {
            service,
            version,
            error_rate,
            latency_factor,
            strategy,
        } => {
            deploy(s, service, version, strategy, &at, p);
            if let Some(e) = error_rate {
                fraction(*e, &at("error_rate"), p);
            }
            positive(*latency_factor, &at("latency_factor"), p);
        }
        FaultKind::LatencyLeak { over, factor, .. } => {
            positive(*factor, &at("factor"), p);
            if over.ms() == 0 {
                p.add(
                    at("over"),
                    "must be above 0 (a step is a dependency_brownout)",
                );
            }
        }
        FaultKind::ErrorRamp { over, to, .. } => {
            fraction(*to, &at("to"), p);
            if over.ms() == 0 {
                p.add(at("over"), "must be above 0");
            }
        }
        FaultKind::InstanceCrash { instance: n, .. } => instance(*n, p),
        FaultKind::FlappingInstance {
            instance: n,
            period,
            ..
        } => {
            instance(*n, p);
            if period.ms() < 2000 {
                p.add(at("period"), format!("{period} is under 2s"));
            }
        }
        FaultKind::RegionOutage { region } => {
            region_ref(s, region, at("region"), p);
        }
        FaultKind::DependencyBrownout {
            latency_factor,
            error_rate,
            ..
        } => {
            positive(*latency_factor, &at("latency_factor"), p);
            fraction(*error_rate, &at("error_rate"), p);
        }
        FaultKind::RetryStorm {
            service,
            capacity_factor,
            retries,
        } => {
            fraction(*capacity_factor, &at("capacity_factor"), p);
            if retries.is_some_and(|r| r > 10) {
                p.add(at("retries"), "is over 10");
            }
            if !s.dependencies.iter().any(|d| &d.to == service) {
                p.add(
                    at("service"),
                    format!("nothing calls '{service}', so no retries can storm it"),
                );
            }
        }
        FaultKind::TrafficSpike { service, factor } => {
            positive(*factor, &at("factor"), p);
            if !s.traffic.contains_key(service) {
                p.add(
                    at("service"),
                    format!(
                        "'{service}' receives no traffic from outside (entry services: {})",
                        known(s.traffic.keys())
                    ),
                );
            }
        }
        FaultKind::NoisyNeighbor {
            instance: n,
            capacity_factor,
            ..
        } => {
            instance(*n, p);
            fraction(*capacity_factor, &at("capacity_factor"), p);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::simulate::Scenario;

    const BASE: &str = "
name: t
duration: 10m
regions: [eu, us]
services:
  web: {instances: {eu: 2, us: 1}}
  db: {instances: {eu: 1}, versions: [v1, v2]}
dependencies:
  - {from: web, to: db, retries: 2}
traffic:
  web: {rps: 100}
";

    fn problems(extra: &str) -> Vec<String> {
        match Scenario::parse(&format!("{BASE}{extra}"), "t.yaml") {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    #[test]
    fn a_minimal_scenario_is_valid_with_defaults_filled_in() {
        let s = Scenario::parse(BASE, "t.yaml").unwrap();
        assert_eq!(s.seed, 1);
        assert_eq!(s.window.ms(), 10_000);
        assert_eq!(s.services["web"].capacity_rps, 100.0);
        assert_eq!(s.dependencies[0].timeout.ms(), 1000);
        assert_eq!(
            s.instances_of("web"),
            vec![("eu".into(), 0), ("eu".into(), 1), ("us".into(), 0)]
        );
    }

    #[test]
    fn every_fault_kind_parses_and_states_its_ground_truth() {
        let s = Scenario::parse(
            &format!(
                "{BASE}faults:
  - {{kind: bad_deploy, service: db, version: v2, error_rate: 0.3, at: 1m}}
  - {{kind: latency_leak, service: db, over: 2m, factor: 4, at: 1m, for: 3m}}
  - {{kind: error_ramp, service: web, over: 1m, to: 0.5, at: 2m, for: 2m}}
  - {{kind: instance_crash, service: web, instance: 2, at: 3m, for: 1m}}
  - {{kind: flapping_instance, service: web, period: 20s, at: 3m, for: 2m}}
  - {{kind: region_outage, region: us, at: 4m, for: 1m}}
  - {{kind: dependency_brownout, service: db, at: 5m, for: 1m}}
  - {{kind: retry_storm, service: db, retries: 3, at: 6m, for: 2m}}
  - {{kind: traffic_spike, service: web, factor: 3, at: 7m, for: 1m}}
  - {{kind: noisy_neighbor, service: web, instance: 1, at: 8m, for: 30m}}
"
            ),
            "t.yaml",
        )
        .unwrap();
        let t = s.truths();
        assert_eq!(t.len(), 10);
        assert_eq!(
            (
                t[0].kind,
                t[0].root_cause.as_str(),
                t[0].start_ms,
                t[0].end_ms
            ),
            ("bad_deploy", "db", 60_000, 600_000)
        );
        assert_eq!(
            (t[5].root_cause.as_str(), t[5].start_ms, t[5].end_ms),
            ("region/us", 240_000, 300_000)
        );
        // A fault that would outlast the run ends with it.
        assert_eq!(t[9].end_ms, 600_000);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path_and_value() {
        let p = problems(
            "faults:
  - {kind: instance_crash, service: wbe, at: 1m}
  - {kind: error_ramp, service: web, over: 1m, to: 1.5, at: 20m}
  - {kind: region_outage, region: asia, at: 1m}
  - {kind: bad_deploy, service: db, version: v1, at: 1m}
  - {kind: instance_crash, service: web, instance: 3, at: 1m}
",
        );
        let want = [
            "faults[0].service: 'wbe' is not a service (services: db, web)",
            "faults[1].at: 20m is not before the end of the run (10m)",
            "faults[1].to: 1.5 is not a fraction from 0 to 1",
            "faults[2].region: 'asia' is not a region (regions: eu, us)",
            "faults[3].version: 'v1' is already running on db: name the new version",
            "faults[4].instance: 3 is out of range: the service has 3 instance(s), counted from 0",
        ];
        assert_eq!(p, want);
    }

    #[test]
    fn a_misspelt_key_is_named_with_its_line() {
        let p = problems("faults:\n  - {kind: traffic_spike, service: web, factr: 3, at: 1m}\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("unknown field `factr`"), "{p:?}");
        assert!(
            p[0].starts_with(
                "faults[0]: unknown field `factr`, expected `service` or `factor` at line 13"
            ),
            "{p:?}"
        );
        let p = problems("faults:\n  - {kind: meteor, service: web, at: 1m}\n");
        assert!(p[0].contains("unknown variant `meteor`"), "{p:?}");
        let p = problems("seeed: 3\n");
        assert!(p[0].contains("unknown field `seeed`"), "{p:?}");
    }

    #[test]
    fn a_call_cycle_is_shown_along_its_path() {
        let cyclic = BASE.replace(
            "  - {from: web, to: db, retries: 2}",
            "  - {from: web, to: db}\n  - {from: db, to: web}",
        );
        let e = Scenario::parse(&cyclic, "t.yaml").unwrap_err();
        assert_eq!(e.problems[0].path, "dependencies");
        assert_eq!(
            e.problems[0].message,
            "the call graph has a cycle: db -> web -> db"
        );
    }

    #[test]
    fn services_regions_and_traffic_are_checked() {
        let bad = BASE
            .replace(
                "web: {instances: {eu: 2, us: 1}}",
                "web: {instances: {eu: 0, mars: 1}, error_rate: 2, slo: {availability: 1}}",
            )
            .replace("web: {rps: 100}", "web: {rps: 0}\n  nope: {rps: 5}");
        let e = Scenario::parse(&bad, "t.yaml").unwrap_err();
        let got: Vec<String> = e
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(
            got,
            [
                "services.web.error_rate: 2 is not a fraction from 0 to 1",
                "services.web.instances.mars: 'mars' is not a region (regions: eu, us)",
                "services.web.slo.availability: 1 must be above 0 and below 1 (e.g. 0.999)",
                "traffic.nope: 'nope' is not a service (services: db, web)",
                "traffic.web.rps: 0 must be above 0 and at most 100000",
            ]
        );
    }
}
