//! The selection plan: which endpoints may take traffic now, grouped by the
//! traffic shares that apply to them (region, then version), with each
//! group's weight.
//!
//! The plan is rebuilt only when something it depends on changes (a
//! decision, health, an endpoint's probes running out or its failures
//! accruing) or when an ejection or time out it honours expires, so a pick
//! costs a group choice and an endpoint choice, never a pass over every
//! endpoint's state.

use std::collections::BTreeMap;

use super::locality::{priority_loads, LevelHosts};
use super::{wrr, Host};
use crate::events::decision::{RouteDecision, RouteLevel, RouteStrategy};
use crate::events::Timestamp;

/// Endpoints sharing one region/version share.
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// Indices of the member hosts.
    pub members: Vec<usize>,
    /// Their weights (for `weighted`).
    pub weights: Vec<i64>,
    /// One period of smooth weighted round robin over `weights`, when short enough.
    pub cycle: Option<Vec<u32>>,
}

/// What a pick chooses from.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Groups with at least one member.
    pub groups: Vec<Group>,
    /// Group weights (any positive scale).
    pub weights: Vec<i64>,
    /// One period of smooth weighted round robin over the groups, when short enough.
    pub cycle: Option<Vec<u32>>,
    /// Group index per host (`u32::MAX` when the host is not selectable).
    pub group_of: Vec<u32>,
    /// The earliest ejection end after which the plan is stale.
    pub valid_until: Option<Timestamp>,
}

/// Inputs to a plan besides the hosts.
pub struct PlanInput<'a> {
    /// The latest route decision for the service.
    pub route: Option<&'a RouteDecision>,
    /// Instance → ejected until (None: while its cause lasts).
    pub ejected: &'a BTreeMap<String, Option<Timestamp>>,
    /// Split by Envoy priority levels from the client's own health view.
    pub locality: Option<(&'a str, f64, f64)>,
    /// The time of the pick.
    pub now: Timestamp,
}

fn shares(route: Option<&RouteDecision>, level: RouteLevel) -> BTreeMap<&str, u32> {
    route
        .map(|r| {
            r.weights
                .iter()
                .filter(|w| w.level == level)
                .map(|w| (w.target.as_str(), w.weight))
                .collect()
        })
        .unwrap_or_default()
}

/// Builds the plan.
pub fn build(hosts: &[Host], input: &PlanInput<'_>) -> Plan {
    let mut valid_until: Option<Timestamp> = None;
    let mut until = |t: Timestamp| valid_until = Some(valid_until.map_or(t, |v| v.min(t)));
    let selectable: Vec<bool> = hosts
        .iter()
        .map(|h| {
            let accrued = h.accrual.out_until(input.now).map(&mut until).is_some();
            let ejected = match input.ejected.get(h.info.id.as_str()) {
                Some(Some(t)) if *t > input.now => {
                    until(*t);
                    true
                }
                Some(Some(_)) => false,
                Some(None) => true,
                None => false,
            };
            h.healthy && !ejected && !accrued && h.gate.would_admit()
        })
        .collect();
    let healthy = selectable.iter().filter(|&&s| s).count();
    let mut panic = healthy == 0
        || input
            .route
            .is_some_and(|r| r.strategy == RouteStrategy::Panic);

    // Region shares: the router's, else the client's own locality view.
    let region_of = |h: &Host| h.info.region.clone().unwrap_or_default();
    let mut region_share: BTreeMap<String, f64> = shares(input.route, RouteLevel::Region)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), f64::from(v)))
        .collect();
    if region_share.is_empty() {
        if let Some((local, overprovisioning, panic_threshold)) = input.locality {
            let mut levels: BTreeMap<String, LevelHosts> = BTreeMap::new();
            for (h, &s) in hosts.iter().zip(&selectable) {
                let l = levels.entry(region_of(h)).or_insert(LevelHosts {
                    healthy: 0,
                    total: 0,
                });
                l.total += 1;
                l.healthy += u32::from(s);
            }
            let mut order: Vec<String> = levels.keys().cloned().collect();
            order.sort_by_key(|r| r != local);
            let counts: Vec<LevelHosts> = order.iter().map(|r| levels[r]).collect();
            let loads = priority_loads(&counts, overprovisioning, panic_threshold);
            panic |= loads.panic;
            region_share = order
                .into_iter()
                .zip(loads.percent)
                .map(|(r, p)| (r, f64::from(p)))
                .collect();
        }
    }
    let version_share = shares(input.route, RouteLevel::Version);
    let instance_weight = shares(input.route, RouteLevel::Instance);

    let usable = |i: usize| panic || selectable[i];
    let mut keyed: BTreeMap<(String, String), Group> = BTreeMap::new();
    for (i, h) in hosts.iter().enumerate() {
        if !usable(i) {
            continue;
        }
        let region = if region_share.is_empty() {
            String::new()
        } else {
            region_of(h)
        };
        let version = if version_share.is_empty() {
            String::new()
        } else {
            h.info.version.clone().unwrap_or_default()
        };
        let g = keyed.entry((region, version)).or_default();
        g.members.push(i);
        let w = instance_weight
            .get(h.info.id.as_str())
            .copied()
            .unwrap_or(h.info.weight);
        g.weights.push(i64::from(w));
    }
    // Version shares renormalised within each region over the versions present.
    let mut present: BTreeMap<&str, f64> = BTreeMap::new();
    for (region, version) in keyed.keys() {
        *present.entry(region.as_str()).or_default() +=
            f64::from(version_share.get(version.as_str()).copied().unwrap_or(0));
    }
    let mut plan = Plan {
        group_of: vec![u32::MAX; hosts.len()],
        valid_until,
        ..Plan::default()
    };
    for ((region, version), group) in &keyed {
        let r = if region_share.is_empty() {
            1.0
        } else {
            region_share.get(region).copied().unwrap_or(0.0)
        };
        let v = if version_share.is_empty() {
            1.0
        } else {
            let total = present[region.as_str()];
            let share = f64::from(version_share.get(version.as_str()).copied().unwrap_or(0));
            if total > 0.0 {
                share / total
            } else {
                0.0
            }
        };
        // Basis points of traffic, so integer credits keep the shares.
        let w = (r * v * 100.0).round() as i64;
        if w <= 0 || group.members.is_empty() {
            continue;
        }
        let gi = plan.groups.len() as u32;
        for &m in &group.members {
            plan.group_of[m] = gi;
        }
        plan.groups.push(group.clone());
        plan.weights.push(w);
    }
    if plan.groups.is_empty() {
        // The shares point nowhere usable: every usable host, one group.
        let members: Vec<usize> = (0..hosts.len()).filter(|&i| usable(i)).collect();
        if !members.is_empty() {
            for &m in &members {
                plan.group_of[m] = 0;
            }
            let weights = members
                .iter()
                .map(|&m| i64::from(hosts[m].info.weight))
                .collect();
            plan.groups.push(Group {
                members,
                weights,
                cycle: None,
            });
            plan.weights.push(1);
        }
    }
    for g in &mut plan.groups {
        g.cycle = wrr::cycle(&g.weights);
    }
    plan.cycle = wrr::cycle(&plan.weights);
    plan
}
