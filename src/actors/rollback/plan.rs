//! Which rollback strategy fits, and the steps it takes.
//!
//! Selection (`strategy = "auto"`), first match wins:
//!
//! 1. the new version's error rate at or above `emergency_error_rate`:
//!    `emergency` (no time for care: everything back, freeze, page);
//! 2. a canary still taking part of the traffic: `immediate` when a
//!    critical metric fails (the stable version already serves, warm, so
//!    the failing share goes at once, as Flagger and Argo abort), else
//!    `canary_reverse`, its share taken off step by step;
//! 3. a blue/green deploy: `blue_green` (the old stack is still there);
//! 4. a deploy that covers several regions: `staged`, a wave per region;
//! 5. a critical metric failing: `immediate`; otherwise (only the score
//!    fell, e.g. a non-critical latency regression): `gradual`, so the
//!    stable version warms up rather than taking all traffic cold.
//!
//! `database_pitr` is never chosen automatically: a point-in-time restore
//! loses writes, so only a per-service preference selects it, and it waits
//! for approval. Irreversible migrations never get this far (blocked).

use super::config::{Preference, RollbackConfig};
use crate::events::decision::RollbackStrategy;
use crate::events::observation::DeployStrategy;

/// What the choice depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct Context<'a> {
    /// How the deploy rolled out.
    pub deploy: Option<DeployStrategy>,
    /// Percent of traffic on the new version now (100 when unknown).
    pub weight: u32,
    /// Regions the deploy covers.
    pub regions: &'a [String],
    /// The new version's error rate in the failing analysis, percent.
    pub error_rate: Option<f64>,
    /// Whether a critical metric failed.
    pub critical: bool,
}

/// The strategy for `ctx` under `preference`.
pub fn select(
    ctx: &Context<'_>,
    preference: Preference,
    config: &RollbackConfig,
) -> RollbackStrategy {
    if let Preference::Fixed(s) = preference {
        return s;
    }
    if ctx
        .error_rate
        .is_some_and(|e| e >= config.emergency_error_rate)
    {
        RollbackStrategy::Emergency
    } else if ctx.deploy == Some(DeployStrategy::Canary) && ctx.weight < 100 {
        if ctx.critical {
            RollbackStrategy::Immediate
        } else {
            RollbackStrategy::CanaryReverse
        }
    } else if ctx.deploy == Some(DeployStrategy::BlueGreen) {
        RollbackStrategy::BlueGreen
    } else if ctx.regions.len() > 1 {
        RollbackStrategy::Staged
    } else if ctx.critical {
        RollbackStrategy::Immediate
    } else {
        RollbackStrategy::Gradual
    }
}

/// One step: the weight left on the bad version, or the regions switched back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Percent of traffic left on the bad version after the step.
    pub weight: Option<u32>,
    /// Regions this step rolls back (staged).
    pub regions: Vec<String>,
}

fn weight(w: u32) -> Step {
    Step {
        weight: Some(w),
        regions: Vec::new(),
    }
}

/// The steps `strategy` takes from `ctx`; never empty, and the last one
/// leaves nothing on the bad version.
pub fn steps(strategy: RollbackStrategy, ctx: &Context<'_>, config: &RollbackConfig) -> Vec<Step> {
    match strategy {
        RollbackStrategy::Gradual => {
            let v: Vec<Step> = config
                .gradual_steps
                .iter()
                .filter(|w| **w < ctx.weight)
                .map(|w| weight(*w))
                .collect();
            if v.is_empty() {
                vec![weight(0)]
            } else {
                v
            }
        }
        RollbackStrategy::CanaryReverse => {
            let mut v = Vec::new();
            let mut w = ctx.weight.min(100);
            while w > 0 {
                w = w.saturating_sub(config.canary_step);
                v.push(weight(w));
            }
            if v.is_empty() {
                v.push(weight(0));
            }
            v
        }
        RollbackStrategy::Staged if !ctx.regions.is_empty() => ctx
            .regions
            .iter()
            .map(|r| Step {
                weight: None,
                regions: vec![r.clone()],
            })
            .collect(),
        _ => vec![weight(0)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(deploy: DeployStrategy, weight: u32, regions: &[String]) -> Context<'_> {
        Context {
            deploy: Some(deploy),
            weight,
            regions,
            error_rate: Some(10.0),
            critical: true,
        }
    }

    #[test]
    fn selection_follows_the_context() {
        let c = RollbackConfig::default();
        let two = ["eu".to_owned(), "us".to_owned()];
        let auto = Preference::Auto;
        let pick = |x: &Context<'_>| select(x, auto, &c);
        assert_eq!(
            pick(&ctx(DeployStrategy::Canary, 20, &[])),
            RollbackStrategy::Immediate,
            "a canary failing a critical metric goes at once"
        );
        let mut soft = ctx(DeployStrategy::Canary, 20, &[]);
        soft.critical = false;
        assert_eq!(pick(&soft), RollbackStrategy::CanaryReverse);
        assert_eq!(
            pick(&ctx(DeployStrategy::Canary, 100, &[])),
            RollbackStrategy::Immediate
        );
        assert_eq!(
            pick(&ctx(DeployStrategy::BlueGreen, 100, &[])),
            RollbackStrategy::BlueGreen
        );
        assert_eq!(
            pick(&ctx(DeployStrategy::Rolling, 100, &two)),
            RollbackStrategy::Staged
        );
        let mut x = ctx(DeployStrategy::Rolling, 100, &[]);
        x.critical = false;
        assert_eq!(pick(&x), RollbackStrategy::Gradual);
        x.error_rate = Some(60.0);
        assert_eq!(pick(&x), RollbackStrategy::Emergency);
        let fixed = Preference::Fixed(RollbackStrategy::DatabasePitr);
        assert_eq!(select(&x, fixed, &c), RollbackStrategy::DatabasePitr);
    }

    #[test]
    fn steps_walk_down_to_zero() {
        let c = RollbackConfig::default();
        let w = |s: Vec<Step>| s.into_iter().map(|s| s.weight).collect::<Vec<_>>();
        let x = ctx(DeployStrategy::Canary, 25, &[]);
        assert_eq!(
            w(steps(RollbackStrategy::CanaryReverse, &x, &c)),
            [Some(15), Some(5), Some(0)]
        );
        let x = ctx(DeployStrategy::Rolling, 100, &[]);
        assert_eq!(
            w(steps(RollbackStrategy::Gradual, &x, &c)),
            [Some(50), Some(0)]
        );
        let x = ctx(DeployStrategy::Canary, 30, &[]);
        assert_eq!(w(steps(RollbackStrategy::Gradual, &x, &c)), [Some(0)]);
        assert_eq!(w(steps(RollbackStrategy::Immediate, &x, &c)), [Some(0)]);
        let two = ["eu".to_owned(), "us".to_owned()];
        let x = ctx(DeployStrategy::Rolling, 100, &two);
        let s = steps(RollbackStrategy::Staged, &x, &c);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].regions, ["us"]);
    }
}
