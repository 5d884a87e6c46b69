//! The coordination desk: which agent acts on which service, and the hub's
//! say when a second one wants to.
//!
//! An *action* is a decision that changes how a service is treated: a
//! rollback (from `initiated` until it ends), a guard containment (until
//! its `lift`), a service breaker open (until it closes). When an action
//! starts on a service where another agent already acts, the strategy
//! decides and the desk returns its verdicts; the agent turns them into
//! `faultline.incident` decisions. When an action ends, held ones are
//! looked at again. An agent replacing its own action (the guard raising
//! `open_edges` to `isolate`) inherits the standing of the one it replaces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::HubConfig;
use crate::events::decision::{CoordinationStrategy, CoordinationVerdict};

/// One action on a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `rollback`, `guard` or `breaker`.
    pub agent: String,
    /// The decision that started it.
    pub decision_id: String,
    /// Its action (`initiated`, `isolate`, `open`, ...).
    pub action: String,
    /// The incident it belongs to.
    pub incident: String,
}

/// A verdict on an action.
#[derive(Clone, Debug, PartialEq)]
pub struct Say {
    /// The verdict.
    pub verdict: CoordinationVerdict,
    /// The action it is about.
    pub action: Action,
    /// The agent already acting, if any.
    pub owner: Option<String>,
}

/// Actions in force and held, per service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Desk {
    active: BTreeMap<String, Vec<Action>>,
    held: BTreeMap<String, Vec<Action>>,
}

fn say(verdict: CoordinationVerdict, action: &Action, owner: Option<&str>) -> Say {
    Say {
        verdict,
        action: action.clone(),
        owner: owner.map(str::to_owned),
    }
}

impl Desk {
    /// Whether `agent` acts on `service` now.
    pub fn acting(&self, service: &str, agent: &str) -> bool {
        self.active
            .get(service)
            .is_some_and(|v| v.iter().any(|a| a.agent == agent))
    }

    /// `action` starts on `service`.
    pub fn start(&mut self, c: &HubConfig, service: &str, action: Action) -> Vec<Say> {
        use CoordinationVerdict::*;
        let held = self.held.entry(service.to_owned()).or_default();
        if let Some(h) = held.iter_mut().find(|h| h.agent == action.agent) {
            *h = action.clone();
            return vec![say(Hold, &action, None)];
        }
        let active = self.active.entry(service.to_owned()).or_default();
        if let Some(a) = active.iter_mut().find(|a| a.agent == action.agent) {
            *a = action;
            return Vec::new();
        }
        let others: Vec<String> = active.iter().map(|a| a.agent.clone()).collect();
        let Some(owner) = others.first().cloned() else {
            active.push(action);
            return Vec::new();
        };
        let mut says = Vec::new();
        let proceed = match c.strategy {
            CoordinationStrategy::Parallel => true,
            CoordinationStrategy::Sequential => false,
            CoordinationStrategy::Priority => {
                others.iter().all(|o| c.rank(&action.agent) < c.rank(o))
            }
            CoordinationStrategy::Adaptive => match action.agent.as_str() {
                // Containment of a service being rolled back waits for the verdict.
                "guard" => !others.iter().any(|o| o == "rollback"),
                // A rollback goes first: containment in force is suspended, so
                // the rolled-back service gets the traffic that validates it.
                "rollback" => {
                    let (guards, rest): (Vec<Action>, Vec<Action>) =
                        active.drain(..).partition(|a| a.agent == "guard");
                    *active = rest;
                    for g in guards {
                        says.push(say(Hold, &g, Some("rollback")));
                        held.push(g);
                    }
                    true
                }
                _ => true,
            },
        };
        if proceed {
            says.insert(0, say(Proceed, &action, Some(&owner)));
            active.push(action);
        } else {
            says.push(say(Hold, &action, Some(&owner)));
            held.push(action);
        }
        says
    }

    /// `agent`'s action on `service` ended; `fixed` when it cured the
    /// service (a rollback validated as succeeded).
    pub fn end(&mut self, c: &HubConfig, service: &str, agent: &str, fixed: bool) -> Vec<Say> {
        use CoordinationVerdict::*;
        if let Some(v) = self.held.get_mut(service) {
            v.retain(|a| a.agent != agent);
        }
        let Some(active) = self.active.get_mut(service) else {
            return Vec::new();
        };
        let before = active.len();
        active.retain(|a| a.agent != agent);
        if active.len() == before {
            return Vec::new();
        }
        let mut says = Vec::new();
        let held = self.held.entry(service.to_owned()).or_default();
        let mut waiting = std::mem::take(held);
        waiting.reverse();
        while let Some(h) = waiting.pop() {
            let others: Vec<&str> = active.iter().map(|a| a.agent.as_str()).collect();
            let free = match c.strategy {
                CoordinationStrategy::Parallel => true,
                CoordinationStrategy::Sequential => others.is_empty(),
                CoordinationStrategy::Priority => {
                    others.iter().all(|o| c.rank(&h.agent) < c.rank(o))
                }
                CoordinationStrategy::Adaptive => !others.contains(&"rollback"),
            };
            if !free {
                held.push(h);
            } else if c.strategy == CoordinationStrategy::Adaptive && agent == "rollback" && fixed {
                says.push(say(Cancel, &h, None));
            } else {
                says.push(say(Release, &h, None));
                active.push(h);
            }
        }
        self.active.retain(|_, v| !v.is_empty());
        self.held.retain(|_, v| !v.is_empty());
        says
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CoordinationVerdict::*;

    fn act(agent: &str, id: &str) -> Action {
        Action {
            agent: agent.into(),
            decision_id: id.into(),
            action: "x".into(),
            incident: "inc-1".into(),
        }
    }

    fn config(strategy: CoordinationStrategy) -> HubConfig {
        HubConfig {
            strategy,
            ..HubConfig::default()
        }
    }

    fn verdicts(says: &[Say]) -> Vec<(CoordinationVerdict, String)> {
        says.iter()
            .map(|s| (s.verdict, s.action.decision_id.clone()))
            .collect()
    }

    #[test]
    fn adaptive_holds_containment_during_a_rollback_and_cancels_it_on_success() {
        let c = config(CoordinationStrategy::Adaptive);
        let mut d = Desk::default();
        assert!(d.start(&c, "api", act("rollback", "r1")).is_empty());
        assert_eq!(
            verdicts(&d.start(&c, "api", act("guard", "g1"))),
            [(Hold, "g1".into())]
        );
        // The guard raises its action while held: still held.
        assert_eq!(
            verdicts(&d.start(&c, "api", act("guard", "g2"))),
            [(Hold, "g2".into())]
        );
        assert_eq!(
            verdicts(&d.end(&c, "api", "rollback", true)),
            [(Cancel, "g2".into())]
        );
        assert!(!d.acting("api", "guard"));
    }

    #[test]
    fn adaptive_releases_containment_when_the_rollback_did_not_help() {
        let c = config(CoordinationStrategy::Adaptive);
        let mut d = Desk::default();
        d.start(&c, "api", act("guard", "g1"));
        // The rollback proceeds and suspends the containment in force.
        assert_eq!(
            verdicts(&d.start(&c, "api", act("rollback", "r1"))),
            [(Proceed, "r1".into()), (Hold, "g1".into())]
        );
        assert_eq!(
            verdicts(&d.end(&c, "api", "rollback", false)),
            [(Release, "g1".into())]
        );
        assert!(d.acting("api", "guard"));
    }

    #[test]
    fn sequential_waits_and_priority_lets_the_first_ranked_through() {
        let c = config(CoordinationStrategy::Sequential);
        let mut d = Desk::default();
        d.start(&c, "db", act("breaker", "b1"));
        assert_eq!(
            verdicts(&d.start(&c, "db", act("guard", "g1"))),
            [(Hold, "g1".into())]
        );
        assert_eq!(
            verdicts(&d.end(&c, "db", "breaker", false)),
            [(Release, "g1".into())]
        );

        let c = config(CoordinationStrategy::Priority);
        let mut d = Desk::default();
        d.start(&c, "db", act("breaker", "b1"));
        assert_eq!(
            verdicts(&d.start(&c, "db", act("guard", "g1"))),
            [(Proceed, "g1".into())]
        );
        assert_eq!(
            verdicts(&d.start(&c, "db", act("rollback", "r1"))),
            [(Proceed, "r1".into())]
        );
        let mut d = Desk::default();
        d.start(&c, "db", act("rollback", "r1"));
        assert_eq!(
            verdicts(&d.start(&c, "db", act("breaker", "b1"))),
            [(Hold, "b1".into())]
        );
    }

    #[test]
    fn parallel_records_the_overlap_and_never_holds() {
        let c = config(CoordinationStrategy::Parallel);
        let mut d = Desk::default();
        assert!(d.start(&c, "db", act("rollback", "r1")).is_empty());
        let says = d.start(&c, "db", act("guard", "g1"));
        assert_eq!(verdicts(&says), [(Proceed, "g1".into())]);
        assert_eq!(says[0].owner.as_deref(), Some("rollback"));
    }
}
