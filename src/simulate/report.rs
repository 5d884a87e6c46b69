//! What the arms achieved, measured against the scenario's ground truth.
//!
//! Everything here is derived from the runs' tallies, actions, rollouts and
//! findings, after the fact: a pure function of the runs, so the same
//! scenario and seed give the same report byte for byte. Numbers are
//! rounded to what is worth reading (ratios to 6 places, seconds to 0.1,
//! money to cents) before they are written.
//!
//! Definitions, as `simulations/README.md` gives them:
//!
//! * **success ratio**: user-facing requests (into entry services) that
//!   succeeded, over all of them.
//! * **SLO-violation minutes**: minutes in which some entry service's
//!   requests broke its SLO (error ratio above `1 - availability`, or p99
//!   above `latency_p99_ms`).
//! * **revenue lost**: per service and 10-second bucket, its revenue per
//!   minute × the bucket's length × the fraction of calls into it that
//!   failed.
//! * **detect / mitigate**: seconds from a fault's start to the arm's first
//!   action that noticed a problem (an alarm, a failed check, a breaker) or
//!   changed the traffic, on the faulty service or a service calling it
//!   (directly or not), before the fault ended.
//! * **prediction**: the predictor's alarms, merged per service when less
//!   than a minute apart; an alarm is true when it falls inside a fault (or
//!   the minute after) on a service it reaches. Precision = true alarms /
//!   alarms; recall = faults with a true alarm / faults; lead = time from
//!   the first true alarm to the first SLO-violation minute of the fault
//!   (positive: users were warned of).
//! * **root cause**: the guard's first ranking inside a fault, compared with
//!   its ground truth (region outages have no single service and are not
//!   scored).

use serde::Serialize;

use super::arms::{ArmRun, Prepared};
use super::faults::Fault;
use super::scenario::FaultKind;
use super::tally::{Tally, BUCKET_MS};
use super::windows::Hist;
use super::world::World;

/// Alarms on one service less than this apart are one alarm, ms.
const ALARM_MERGE_MS: f64 = 60_000.0;
/// An alarm this long after a fault ended still counts for it, ms.
const ALARM_GRACE_MS: f64 = 60_000.0;

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed used.
    pub seed: u64,
    /// Simulated seconds.
    pub duration_s: f64,
    /// The faults' ground truth, in timeline order.
    pub faults: Vec<Truth>,
    /// The good deploys (a rollback of one is wrong).
    pub good_deploys: Vec<String>,
    /// Per arm, keyed by its name, in arm order.
    pub arms: Arms,
}

/// The arms' reports in arm order, written as an object keyed by name.
#[derive(Clone, Debug, Default)]
pub struct Arms(pub Vec<(&'static str, ArmReport)>);

impl Arms {
    /// The arms' names and reports.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ArmReport)> {
        self.0.iter().map(|(n, a)| (*n, a))
    }

    /// The reports.
    pub fn values(&self) -> impl Iterator<Item = &ArmReport> {
        self.0.iter().map(|(_, a)| a)
    }

    /// The names.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(n, _)| *n)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Arms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, arm) in &self.0 {
            m.serialize_entry(name, arm)?;
        }
        m.end()
    }
}

/// One fault's ground truth.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    /// Its kind.
    pub kind: &'static str,
    /// Its root cause: a service, or `region/<name>`.
    pub root_cause: String,
    /// Start, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
}

/// One arm's results.
#[derive(Clone, Debug, Serialize)]
pub struct ArmReport {
    /// User-facing requests.
    pub requests: u64,
    /// Those that failed.
    pub failed_requests: u64,
    /// Succeeded / all.
    pub success_ratio: f64,
    /// Minutes with an entry service out of its SLO.
    pub slo_violation_minutes: u32,
    /// Revenue lost to failed calls.
    pub revenue_lost: f64,
    /// Actions the policy took.
    pub actions: usize,
    /// Per fault, in timeline order.
    pub faults: Vec<FaultOutcome>,
    /// Deploys rolled back, right and wrong.
    pub rollbacks: Rollbacks,
    /// The predictor's alarms against the ground truth (faultline only).
    pub prediction: Option<Prediction>,
    /// Faults whose root cause the guard ranked first, over faults scored
    /// (faultline only).
    pub root_cause_top1: Option<f64>,
    /// Per minute: user-facing error ratio and p99 latency (ms).
    pub minutes: Vec<Minute>,
    /// Per minute with one: the first action that changed traffic.
    pub markers: Vec<Marker>,
}

/// What an arm did about one fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultOutcome {
    /// The fault's kind.
    pub kind: &'static str,
    /// Its root cause.
    pub root_cause: String,
    /// Seconds from its start to the first detection, if any.
    pub detect_s: Option<f64>,
    /// Seconds from its start to the first mitigation, if any.
    pub mitigate_s: Option<f64>,
    /// The guard's first ranking inside it (faultline only).
    pub ranked_root_cause: Option<String>,
}

/// Deploys rolled back.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Rollbacks {
    /// Bad deploys in the scenario.
    pub bad_deploys: usize,
    /// Of those, rolled back.
    pub bad_rolled_back: usize,
    /// Good deploys in the scenario.
    pub good_deploys: usize,
    /// Of those, rolled back (wrongly).
    pub good_rolled_back: usize,
}

/// Predictor alarms against the ground truth.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    /// Alarms (merged per service within a minute).
    pub alarms: usize,
    /// True alarms / alarms (`None` without alarms).
    pub precision: Option<f64>,
    /// Faults with a true alarm / faults.
    pub recall: Option<f64>,
    /// Median over faults of first SLO-violation minute − first true alarm, s.
    pub lead_s: Option<f64>,
}

/// One minute, user-facing.
#[derive(Clone, Debug, Serialize)]
pub struct Minute {
    /// Failed / requests.
    pub error_ratio: f64,
    /// p99 latency, ms.
    pub p99_ms: f64,
}

/// A decision marker for the charts.
#[derive(Clone, Debug, Serialize)]
pub struct Marker {
    /// When, s.
    pub t_s: f64,
    /// What.
    pub label: String,
}

/// The report of `runs` of `p`.
pub fn build(p: &Prepared, runs: &[ArmRun]) -> Report {
    let truths = p.scenario.truths();
    Report {
        scenario: p.scenario.name.clone(),
        seed: p.seed,
        duration_s: secs(p.scenario.duration.ms() as f64),
        faults: truths
            .iter()
            .map(|t| Truth {
                kind: t.kind,
                root_cause: t.root_cause.clone(),
                start_s: secs(t.start_ms as f64),
                end_s: secs(t.end_ms as f64),
            })
            .collect(),
        good_deploys: p
            .scenario
            .deploys
            .iter()
            .map(|d| format!("{} {} at {}", d.service, d.version, d.at))
            .collect(),
        arms: Arms(runs.iter().map(|r| (r.arm.as_str(), arm(p, r))).collect()),
    }
}

fn arm(p: &Prepared, r: &ArmRun) -> ArmReport {
    let w = &p.world;
    let (requests, failed) = r.tally.totals();
    let violations = violation_minutes(w, &r.tally);
    let scopes: Vec<Vec<usize>> = p.faults.iter().map(|f| scope(w, f)).collect();
    let faults = p
        .faults
        .iter()
        .zip(&scopes)
        .zip(p.scenario.truths())
        .map(|((f, scope), truth)| {
            let first = |pick: fn(&super::policy::Action) -> bool| {
                r.actions
                    .iter()
                    .find(|a| {
                        pick(a) && a.t >= f.start && a.t <= f.end && scope.contains(&a.service)
                    })
                    .map(|a| secs(a.t - f.start))
            };
            FaultOutcome {
                kind: truth.kind,
                root_cause: truth.root_cause,
                detect_s: first(|a| a.detect || a.mitigate),
                mitigate_s: first(|a| a.mitigate),
                ranked_root_cause: r.findings.as_ref().and_then(|fd| {
                    fd.root_causes
                        .iter()
                        .find(|(t, _)| *t >= f.start && *t <= f.end)
                        .map(|(_, c)| c.clone())
                }),
            }
        })
        .collect::<Vec<_>>();
    let root_cause_top1 = r.findings.as_ref().and_then(|_| {
        let scored: Vec<bool> = faults
            .iter()
            .filter(|o| !o.root_cause.starts_with("region/"))
            .map(|o| o.ranked_root_cause.as_deref() == Some(o.root_cause.as_str()))
            .collect();
        ratio(scored.iter().filter(|x| **x).count(), scored.len())
    });
    let prediction = r.findings.as_ref().map(|fd| {
        let alarms = merge_alarms(&fd.alarms);
        let hits = |a: &(f64, usize), f: &Fault, scope: &[usize]| {
            a.0 >= f.start && a.0 <= f.end + ALARM_GRACE_MS && scope.contains(&a.1)
        };
        let true_alarms = alarms
            .iter()
            .filter(|a| p.faults.iter().zip(&scopes).any(|(f, s)| hits(a, f, s)))
            .count();
        let mut leads: Vec<f64> = p
            .faults
            .iter()
            .zip(&scopes)
            .filter_map(|(f, s)| {
                let alarm = alarms.iter().find(|a| hits(a, f, s))?.0;
                let breach = violations
                    .iter()
                    .map(|m| *m as f64 * 60_000.0)
                    .find(|m| *m + 60_000.0 > f.start && *m <= f.end)?;
                Some(breach.max(f.start) - alarm)
            })
            .collect();
        leads.sort_by(f64::total_cmp);
        let detected = p
            .faults
            .iter()
            .zip(&scopes)
            .filter(|(f, s)| alarms.iter().any(|a| hits(a, f, s)))
            .count();
        Prediction {
            alarms: alarms.len(),
            precision: ratio(true_alarms, alarms.len()),
            recall: ratio(detected, p.faults.len()),
            lead_s: leads.get(leads.len() / 2).map(|l| secs(*l)),
        }
    });
    ArmReport {
        requests,
        failed_requests: failed,
        success_ratio: round(
            if requests == 0 {
                1.0
            } else {
                1.0 - failed as f64 / requests as f64
            },
            1e6,
        ),
        slo_violation_minutes: violations.len() as u32,
        revenue_lost: round(revenue_lost(w, &r.tally), 100.0),
        actions: r.actions.len(),
        faults,
        rollbacks: rollbacks(r),
        prediction,
        root_cause_top1,
        minutes: minutes(&r.tally),
        markers: markers(w, r),
    }
}

/// The services a fault reaches: its service and every service calling it,
/// directly or not; all services for a region outage.
fn scope(w: &World, f: &Fault) -> Vec<usize> {
    match (&f.kind, f.service) {
        (FaultKind::RegionOutage { .. }, _) | (_, None) => (0..w.services.len()).collect(),
        (_, Some(s)) => w.upstream(s),
    }
}

/// Alarms merged per service when less than [`ALARM_MERGE_MS`] apart.
fn merge_alarms(alarms: &[(f64, usize)]) -> Vec<(f64, usize)> {
    let mut last: std::collections::BTreeMap<usize, f64> = Default::default();
    let mut out = Vec::new();
    for &(t, s) in alarms {
        if last.get(&s).is_none_or(|l| t - l >= ALARM_MERGE_MS) {
            out.push((t, s));
        }
        last.insert(s, t);
    }
    out
}

/// Buckets per minute.
const PER_MINUTE: usize = (60_000.0 / BUCKET_MS) as usize;

/// Minutes (from 0) in which some entry broke its SLO.
fn violation_minutes(w: &World, tally: &Tally) -> Vec<usize> {
    let minutes = tally.len().div_ceil(PER_MINUTE);
    (0..minutes)
        .filter(|m| {
            w.entries.iter().enumerate().any(|(k, e)| {
                let slo = &w.services[w.edges[e.edge].to].spec.slo;
                let (requests, failed, latency) = minute(&tally.users[k], *m);
                requests > 0
                    && (failed as f64 / requests as f64 > 1.0 - slo.availability
                        || latency.quantile(0.99).unwrap_or(0.0) > slo.latency_p99_ms)
            })
        })
        .collect()
}

/// One entry's requests, failures and latencies over minute `m`.
fn minute(buckets: &[super::tally::UserBucket], m: usize) -> (u64, u64, Hist) {
    let mut latency = Hist::default();
    let (mut requests, mut failed) = (0, 0);
    for b in buckets.iter().skip(m * PER_MINUTE).take(PER_MINUTE) {
        requests += b.requests;
        failed += b.failed;
        latency.merge(&b.latency);
    }
    (requests, failed, latency)
}

/// Revenue per minute × minutes × failed fraction, per service and bucket.
fn revenue_lost(w: &World, tally: &Tally) -> f64 {
    w.services
        .iter()
        .zip(&tally.calls)
        .map(|(s, buckets)| {
            let per_bucket = s.spec.revenue_per_minute * BUCKET_MS / 60_000.0;
            buckets
                .iter()
                .filter(|(calls, _)| *calls > 0)
                .map(|(calls, failed)| per_bucket * *failed as f64 / *calls as f64)
                .sum::<f64>()
        })
        .sum()
}

fn rollbacks(r: &ArmRun) -> Rollbacks {
    let mut out = Rollbacks::default();
    for d in &r.rollouts.all {
        let back = usize::from(d.reverted_at.is_some());
        if d.fault.is_some() {
            out.bad_deploys += 1;
            out.bad_rolled_back += back;
        } else {
            out.good_deploys += 1;
            out.good_rolled_back += back;
        }
    }
    out
}

/// User-facing error ratio and p99 per minute, over every entry.
fn minutes(tally: &Tally) -> Vec<Minute> {
    (0..tally.len().div_ceil(PER_MINUTE))
        .map(|m| {
            let mut latency = Hist::default();
            let (mut requests, mut failed) = (0, 0);
            for entry in &tally.users {
                let (r, f, l) = minute(entry, m);
                requests += r;
                failed += f;
                latency.merge(&l);
            }
            Minute {
                error_ratio: round(
                    ratio(failed as usize, requests as usize).unwrap_or(0.0),
                    1e6,
                ),
                p99_ms: round(latency.quantile(0.99).unwrap_or(0.0), 10.0),
            }
        })
        .collect()
}

/// The first traffic-changing action of each minute, named.
fn markers(w: &World, r: &ArmRun) -> Vec<Marker> {
    let mut acts: Vec<_> = r.actions.iter().filter(|a| a.mitigate).collect();
    acts.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut out: Vec<Marker> = Vec::new();
    for a in acts {
        let minute = (a.t / 60_000.0).floor();
        if out.last().is_some_and(|m| (m.t_s / 60.0).floor() == minute) {
            continue;
        }
        let label = if a.label.is_empty() {
            w.services[a.service].name.clone()
        } else {
            a.label.clone()
        };
        out.push(Marker {
            t_s: secs(a.t),
            label,
        });
    }
    out
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| round(n as f64 / d as f64, 1e6))
}

fn secs(ms: f64) -> f64 {
    round(ms / 1000.0, 10.0)
}

fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}
