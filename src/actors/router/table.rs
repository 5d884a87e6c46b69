//! A service's routing table from its hosts' state: which hosts are out and
//! why, how traffic splits over regions (Envoy priority levels) and whether
//! health is being ignored (panic). Pure; the agent compares tables and
//! emits a decision only when one changes materially.

use std::collections::BTreeMap;

use super::config::RouterConfig;
use crate::client::locality::{apportion, priority_loads, LevelHosts};
use crate::events::decision::{Ejection, EjectionTrigger, RouteLevel, RouteStrategy, RouteWeight};
use crate::events::Timestamp;

/// What the table is computed from, per host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostView<'a> {
    /// Instance id.
    pub id: &'a str,
    /// Region ("" when unknown).
    pub region: &'a str,
    /// Whether anything (health or traffic) has been heard from it.
    pub signal: bool,
    /// Why it is out of selection, if it is.
    pub out: Option<Ejection>,
}

/// The material content of a table.
pub type Key<'a> = (
    RouteStrategy,
    &'a [RouteWeight],
    Vec<(&'a str, EjectionTrigger, Option<Timestamp>)>,
);

/// A version split the rollback agent decided: `weight` percent on `canary`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    /// The version under analysis or being rolled back.
    pub canary: String,
    /// The stable version.
    pub stable: String,
    /// Percent of traffic on `canary`, 1–99.
    pub weight: u32,
}

/// The routing table.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// How traffic is sent.
    pub strategy: RouteStrategy,
    /// Shares.
    pub weights: Vec<RouteWeight>,
    /// Hosts out of selection.
    pub ejected: Vec<Ejection>,
    /// Hosts known.
    pub hosts: u32,
    /// Hosts selectable.
    pub healthy_hosts: u32,
    /// Panic or failover in words, for the reason.
    pub summary: String,
}

impl Table {
    /// What makes two tables materially different: strategy, shares, and
    /// which hosts are out, why and until when (not the numbers behind).
    pub fn key(&self) -> Key<'_> {
        (
            self.strategy,
            &self.weights,
            self.ejected
                .iter()
                .map(|e| (e.instance.as_str(), e.trigger, e.until))
                .collect(),
        )
    }
}

/// Computes the table. Regions are ordered by `config.regions`, then by
/// name. A version split from the rollback agent adds version weights (and
/// names the strategy `canary_split` unless panic or failover says more). A region nothing has been heard from counts as fully healthy:
/// traffic fails over only on a health signal, never on silence.
pub fn compute(hosts: &[HostView<'_>], split: Option<&Split>, config: &RouterConfig) -> Table {
    let total = hosts.len() as u32;
    let healthy = hosts.iter().filter(|h| h.out.is_none()).count() as u32;
    let ejected: Vec<Ejection> = hosts.iter().filter_map(|h| h.out.clone()).collect();
    let mut regions: BTreeMap<&str, (LevelHosts, bool)> = BTreeMap::new();
    for h in hosts {
        let (l, heard) = regions.entry(h.region).or_insert((
            LevelHosts {
                healthy: 0,
                total: 0,
            },
            false,
        ));
        l.total += 1;
        l.healthy += u32::from(h.out.is_none());
        *heard |= h.signal;
    }
    let mut order: Vec<&str> = regions.keys().copied().collect();
    order.sort_by_key(|r| {
        (
            config
                .regions
                .iter()
                .position(|c| c == r)
                .unwrap_or(usize::MAX),
            r.to_string(),
        )
    });
    let levels: Vec<LevelHosts> = order
        .iter()
        .map(|r| {
            let (l, heard) = regions[r];
            if heard {
                l
            } else {
                LevelHosts {
                    healthy: l.total,
                    total: l.total,
                }
            }
        })
        .collect();
    let loads = priority_loads(&levels, config.overprovisioning, config.panic_threshold);
    let pct_healthy = if total == 0 {
        100.0
    } else {
        100.0 * f64::from(healthy) / f64::from(total)
    };
    let (strategy, weights, summary) = if loads.panic {
        let shares = vec![1.0; hosts.len()];
        let weights = hosts
            .iter()
            .zip(apportion(&shares))
            .map(|(h, w)| RouteWeight {
                level: RouteLevel::Instance,
                target: h.id.to_owned(),
                weight: w,
            })
            .collect();
        (
            RouteStrategy::Panic,
            weights,
            format!(
                "panic: {healthy} of {total} hosts healthy ({pct_healthy:.0}% < {}%), traffic spreads over all hosts",
                config.panic_threshold
            ),
        )
    } else if order.len() > 1 && config.regions.is_empty() {
        active_active(&order, &levels)
    } else if order.len() > 1 {
        let weights: Vec<RouteWeight> = order
            .iter()
            .zip(&loads.percent)
            .map(|(r, &w)| RouteWeight {
                level: RouteLevel::Region,
                target: (*r).to_owned(),
                weight: w,
            })
            .collect();
        let primary = &levels[0];
        let primary_pct = if primary.total == 0 {
            0.0
        } else {
            100.0 * f64::from(primary.healthy) / f64::from(primary.total)
        };
        let summary = if loads.percent[0] >= 100 {
            format!(
                "{} {primary_pct:.0}% healthy x {} keeps all traffic",
                order[0], config.overprovisioning
            )
        } else {
            let spill: Vec<String> = weights[1..]
                .iter()
                .filter(|w| w.weight > 0)
                .map(|w| format!("{}% to {}", w.weight, w.target))
                .collect();
            format!(
                "{} {primary_pct:.0}% healthy x {} = {}% stays, {} fails over",
                order[0],
                config.overprovisioning,
                loads.percent[0],
                spill.join(", ")
            )
        };
        (RouteStrategy::LocalityPriority, weights, summary)
    } else {
        (
            RouteStrategy::Weighted,
            Vec::new(),
            format!("{healthy} of {total} hosts selectable"),
        )
    };
    let (strategy, weights, summary) = match split {
        Some(c) => {
            let mut weights = weights;
            weights.push(RouteWeight {
                level: RouteLevel::Version,
                target: c.canary.clone(),
                weight: c.weight,
            });
            weights.push(RouteWeight {
                level: RouteLevel::Version,
                target: c.stable.clone(),
                weight: 100 - c.weight,
            });
            let strategy = match strategy {
                RouteStrategy::Weighted => RouteStrategy::CanarySplit,
                other => other,
            };
            let summary = format!(
                "{summary}; versions {} {}% / {} {}% (rollback agent)",
                c.canary,
                c.weight,
                c.stable,
                100 - c.weight
            );
            (strategy, weights, summary)
        }
        None => (strategy, weights, summary),
    };
    Table {
        strategy,
        weights,
        ejected,
        hosts: total,
        healthy_hosts: healthy,
        summary,
    }
}

/// Regions with no failover order configured all serve (active-active):
/// each region's share is its healthy hosts, so every host in service
/// carries the same load wherever it is. Envoy's overprovisioning factor is
/// for a preferred region keeping its traffic; with no preference it would
/// only load the hosts of a degraded region beyond the others (a region
/// with two of three hosts left and the factor 1.4 sends each of them 40 %
/// more than a host elsewhere: the simulator saw that tip them over, one
/// after the other). While every region keeps its full share there are no
/// region weights at all: traffic goes by host.
fn active_active(
    order: &[&str],
    levels: &[LevelHosts],
) -> (RouteStrategy, Vec<RouteWeight>, String) {
    let effective: Vec<f64> = levels
        .iter()
        .map(|l| f64::from(l.healthy.min(l.total)))
        .collect();
    let reduced: Vec<String> = order
        .iter()
        .zip(levels.iter().zip(&effective))
        .filter(|(_, (l, e))| **e < f64::from(l.total))
        .map(|(r, (l, _))| {
            format!(
                "{r} {:.0}% healthy",
                100.0 * f64::from(l.healthy) / f64::from(l.total.max(1)),
            )
        })
        .collect();
    if reduced.is_empty() {
        return (
            RouteStrategy::Weighted,
            Vec::new(),
            format!(
                "{} regions active and healthy: traffic by host",
                order.len()
            ),
        );
    }
    let percent = apportion(&effective);
    let weights: Vec<RouteWeight> = order
        .iter()
        .zip(&percent)
        .map(|(r, &w)| RouteWeight {
            level: RouteLevel::Region,
            target: (*r).to_owned(),
            weight: w,
        })
        .collect();
    let split: Vec<String> = weights
        .iter()
        .map(|w| format!("{} {}%", w.target, w.weight))
        .collect();
    (
        RouteStrategy::LocalityPriority,
        weights,
        format!(
            "{} keeps less than its share: {}",
            reduced.join(", "),
            split.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decision::EjectionTrigger;

    fn hosts(down: &[&'static str]) -> Vec<HostView<'static>> {
        ["eu0", "eu1", "eu2", "eu3", "us0", "us1", "us2", "us3"]
            .into_iter()
            .map(|id| HostView {
                id,
                region: &id[..2],
                signal: true,
                out: down.contains(&id).then(|| Ejection {
                    instance: id.to_owned(),
                    trigger: EjectionTrigger::Health,
                    until: None,
                    ejections: 0,
                    observed: 0.0,
                    threshold: 0.0,
                }),
            })
            .collect()
    }

    fn shares(t: &Table) -> Vec<(String, u32)> {
        t.weights
            .iter()
            .map(|w| (w.target.clone(), w.weight))
            .collect()
    }

    #[test]
    fn without_a_failover_order_every_healthy_region_serves() {
        let c = RouterConfig::default();
        let t = compute(&hosts(&[]), None, &c);
        assert_eq!(t.strategy, RouteStrategy::Weighted);
        assert!(t.weights.is_empty(), "{t:?}");
        // One eu host of four down: shares by healthy hosts, 3 to 4.
        let t = compute(&hosts(&["eu0"]), None, &c);
        assert_eq!(t.strategy, RouteStrategy::LocalityPriority);
        assert_eq!(shares(&t), [("eu".into(), 43), ("us".into(), 57)]);
        // Three down: 1 to 4.
        let t = compute(&hosts(&["eu0", "eu1", "eu2"]), None, &c);
        assert_eq!(shares(&t), [("eu".into(), 20), ("us".into(), 80)]);
        assert!(t.summary.starts_with("eu 25% healthy"), "{}", t.summary);
    }

    #[test]
    fn with_a_failover_order_the_first_region_takes_all_it_can() {
        let raw = "[router]\nregions = [\"us\", \"eu\"]\n";
        let c = crate::config::Config::from_toml(raw, "t").unwrap().router;
        let t = compute(&hosts(&[]), None, &c);
        assert_eq!(shares(&t), [("us".into(), 100), ("eu".into(), 0)]);
    }
}
