//! Envoy's priority-level arithmetic: how much traffic each locality gets
//! as its health drops, and when to give up on health altogether (panic).
//!
//! Localities are ordered by priority (the caller's own region first). A
//! level's *health* is its healthy share of hosts times the overprovisioning
//! factor (1.4 by default), capped at 100 %: a region with 72 % of its hosts
//! healthy is treated as fully able (72 × 1.4 ≥ 100) and keeps all its
//! traffic, one with 50 % healthy keeps 70 % and the rest spills to the next
//! level. When the levels' health sums to less than 100 %, the loads are
//! normalised so that all traffic still goes somewhere. When the healthy
//! share of all hosts falls below the panic threshold (50 %), health is
//! ignored and traffic spreads over every host: overloading the few healthy
//! ones would finish them off. The router and the client use this one
//! implementation, so what the router announces is what a client does.

/// Envoy's default overprovisioning factor.
pub const OVERPROVISIONING: f64 = 1.4;
/// Envoy's default panic threshold, percent of hosts healthy.
pub const PANIC_THRESHOLD: f64 = 50.0;

/// Hosts of one priority level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelHosts {
    /// Hosts that may take traffic.
    pub healthy: u32,
    /// All hosts.
    pub total: u32,
}

/// Traffic per level.
#[derive(Clone, Debug, PartialEq)]
pub struct Loads {
    /// Percent per level, in the given order, summing to 100 (or all 0 when
    /// there are no hosts at all).
    pub percent: Vec<u32>,
    /// Whether health is being ignored (too few healthy hosts overall).
    pub panic: bool,
}

/// Splits traffic over priority levels the way Envoy does.
pub fn priority_loads(levels: &[LevelHosts], overprovisioning: f64, panic_threshold: f64) -> Loads {
    let total: u32 = levels.iter().map(|l| l.total).sum();
    let healthy: u32 = levels.iter().map(|l| l.healthy.min(l.total)).sum();
    if total == 0 {
        return Loads {
            percent: vec![0; levels.len()],
            panic: false,
        };
    }
    let panic = f64::from(healthy) * 100.0 < panic_threshold * f64::from(total);
    if panic {
        // Every host counts: traffic follows the hosts, level by level.
        let shares: Vec<f64> = levels.iter().map(|l| f64::from(l.total)).collect();
        return Loads {
            percent: apportion(&shares),
            panic: true,
        };
    }
    let health: Vec<f64> = levels
        .iter()
        .map(|l| {
            if l.total == 0 {
                0.0
            } else {
                (overprovisioning * 100.0 * f64::from(l.healthy.min(l.total)) / f64::from(l.total))
                    .min(100.0)
            }
        })
        .collect();
    let sum: f64 = health.iter().sum();
    let mut left = 100.0;
    let shares: Vec<f64> = health
        .iter()
        .map(|h| {
            let share = if sum < 100.0 {
                h * 100.0 / sum
            } else {
                h.min(left)
            };
            left -= share;
            share
        })
        .collect();
    Loads {
        percent: apportion(&shares),
        panic: false,
    }
}

/// Whole percentages summing to exactly 100 in proportion to `shares`
/// (largest remainder; ties go to the earlier entry). All zero if the
/// shares are.
pub fn apportion(shares: &[f64]) -> Vec<u32> {
    let sum: f64 = shares.iter().map(|s| s.max(0.0)).sum();
    if sum <= 0.0 || !sum.is_finite() {
        return vec![0; shares.len()];
    }
    let exact: Vec<f64> = shares.iter().map(|s| s.max(0.0) * 100.0 / sum).collect();
    let mut out: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
    let given: u32 = out.iter().sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in order.iter().take(100u32.saturating_sub(given) as usize) {
        out[i] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(levels: &[(u32, u32)]) -> Loads {
        let levels: Vec<_> = levels
            .iter()
            .map(|&(healthy, total)| LevelHosts { healthy, total })
            .collect();
        priority_loads(&levels, OVERPROVISIONING, PANIC_THRESHOLD)
    }

    #[test]
    fn half_healthy_local_region_keeps_seventy_percent() {
        let l = loads(&[(5, 10), (10, 10)]);
        assert_eq!(l.percent, vec![70, 30]);
        assert!(!l.panic);
    }

    #[test]
    fn seventy_two_percent_healthy_needs_no_failover() {
        assert_eq!(loads(&[(18, 25), (10, 10)]).percent, vec![100, 0]);
        // Just below: 71.4 % × 1.4 = 99.96 %.
        assert_eq!(loads(&[(5, 7), (10, 10)]).percent, vec![100, 0]);
        assert_eq!(loads(&[(7, 10), (10, 10)]).percent, vec![98, 2]);
    }

    #[test]
    fn spills_level_by_level_and_normalises_when_all_are_weak() {
        assert_eq!(
            loads(&[(0, 10), (5, 10), (10, 10)]).percent,
            vec![0, 70, 30]
        );
        // Both levels at 60 %: health 84 + 84 ≥ 100, greedy.
        assert_eq!(loads(&[(6, 10), (6, 10)]).percent, vec![84, 16]);
        // 30 % + 80 % healthy of 10 each is 55 % overall (no panic);
        // health 42 + 100 → greedy 42 / 58.
        assert_eq!(loads(&[(3, 10), (8, 10)]).percent, vec![42, 58]);
    }

    #[test]
    fn panic_below_half_healthy_spreads_over_all_hosts() {
        let l = loads(&[(2, 10), (2, 10)]);
        assert!(l.panic);
        assert_eq!(l.percent, vec![50, 50]);
        let l = loads(&[(1, 4), (0, 0)]);
        assert!(l.panic);
        assert_eq!(l.percent, vec![100, 0]);
        // Exactly half is not panic.
        assert!(!loads(&[(5, 10)]).panic);
    }

    #[test]
    fn apportion_sums_to_one_hundred() {
        assert_eq!(apportion(&[1.0, 1.0, 1.0]), vec![34, 33, 33]);
        assert_eq!(apportion(&[0.0, 0.0]), vec![0, 0]);
        assert_eq!(apportion(&[2.0, 1.0]), vec![67, 33]);
        assert_eq!(apportion(&[]), Vec::<u32>::new());
    }
}
