//! The agent interface: a deterministic fold with timers and snapshots.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::events::{Data, Event, Timestamp};
use crate::log::Seq;

/// A decision an agent wants appended; the engine derives its envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// The service decided about (`_system` for system-wide).
    pub subject: String,
    /// The decision.
    pub data: Data,
    /// Set by the engine to the proposing agent's name.
    pub agent: &'static str,
}

impl Proposal {
    /// A proposal about `subject`.
    pub fn new(subject: impl Into<String>, data: Data) -> Self {
        Self {
            subject: subject.into(),
            data,
            agent: "",
        }
    }
}

/// One agent's pure core as the engine drives it.
///
/// Implementations must be deterministic: no clock, no unseeded randomness, no
/// hash-ordered iteration that reaches an output or a snapshot.
pub trait Agent: Send {
    /// Name used in decision ids, sources and subjects (`breaker`).
    fn name(&self) -> &'static str;

    /// Applies record `seq`; pushes any decisions to `out`.
    fn apply(&mut self, seq: Seq, record: &Event, out: &mut Vec<Proposal>);

    /// The earliest time at which a timer of this agent is due.
    fn next_deadline(&self) -> Option<Timestamp>;

    /// The agent's state, encoded (msgpack).
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with a snapshot taken by [`Agent::snapshot`].
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;

    /// What this agent currently holds about `service` (JSON), for enforcers
    /// that query state instead of replaying the log; `None` when it knows
    /// nothing of the service. With no service: an overview of the agent
    /// (at least the services it knows). Read-only; never changes the fold.
    fn view(&self, service: Option<&str>) -> Option<serde_json::Value>;
}

/// The view of an agent whose state is one entry per service: the entry
/// (JSON) for a service, the service names for the overview.
pub fn map_view<T: Serialize>(
    services: &std::collections::BTreeMap<String, T>,
    service: Option<&str>,
) -> Option<serde_json::Value> {
    match service {
        None => Some(services_view(services.keys())),
        Some(s) => serde_json::to_value(services.get(s)?).ok(),
    }
}

/// The overview most agents give: the services they hold state for.
pub fn services_view<'a>(names: impl Iterator<Item = &'a String>) -> serde_json::Value {
    serde_json::json!({ "services": names.collect::<Vec<_>>() })
}

/// Encodes an agent's state for [`Agent::snapshot`] (msgpack, named fields).
pub fn encode_state<T: Serialize>(state: &T, agent: &str) -> Vec<u8> {
    rmp_serde::to_vec_named(state).unwrap_or_else(|e| panic!("{agent} state encodes: {e}"))
}

/// Decodes a state written by [`encode_state`] for [`Agent::restore`].
pub fn decode_state<T: DeserializeOwned>(bytes: &[u8], agent: &str) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("{agent} state does not decode: {e}"))
}

/// Runs `f` on the value under `key`, made by `make` first if absent: one
/// search when the key exists (what [`slot`] cannot do, since the value it
/// returns would have to outlive the search that found it), and an
/// allocation only when it is new. For the per-event path of agents.
pub fn in_slot<V, R>(
    map: &mut std::collections::BTreeMap<String, V>,
    key: &str,
    make: impl FnOnce() -> V,
    f: impl FnOnce(&mut V) -> R,
) -> R {
    match map.get_mut(key) {
        Some(v) => f(v),
        None => f(map.entry(key.to_owned()).or_insert_with(make)),
    }
}

/// The value under `key`, inserted as default first if absent. Unlike
/// `entry(key.to_owned())` it allocates only when the key is new, which
/// matters on the per-event path of every agent.
pub fn slot<'a, V: Default>(
    map: &'a mut std::collections::BTreeMap<String, V>,
    key: &str,
) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("just inserted")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn in_slot_makes_a_value_only_for_a_new_key() {
        let mut map: BTreeMap<String, u32> = BTreeMap::from([("a".to_owned(), 1)]);
        let mut made = 0;
        // Adds one to the value under `key`, making 10 first for a new key.
        let mut bump = |map: &mut BTreeMap<String, u32>, key: &str| {
            let got = in_slot(
                map,
                key,
                || {
                    made += 1;
                    10
                },
                |v| {
                    *v += 1;
                    *v
                },
            );
            (got, made)
        };
        assert_eq!(
            bump(&mut map, "a"),
            (2, 0),
            "an existing value is used as it is"
        );
        assert_eq!(
            bump(&mut map, "b"),
            (11, 1),
            "a new key gets a made value first"
        );
        assert_eq!(
            map,
            BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 11)])
        );
    }
}
