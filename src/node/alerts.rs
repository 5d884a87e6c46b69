//! Hub escalations to Alertmanager (its v2 API: `POST <url>/api/v2/alerts`).
//!
//! Alertmanager expects clients to re-send active alerts periodically and
//! to send an alert with `endsAt` in the past once it is over. The forwarder
//! therefore does not follow escalation *decisions* (a node restarted from a
//! snapshot would not see them again) but the hub's *state*: every open
//! incident that has escalated is an active alert, posted at once when the
//! hub escalates and again every `alert_repeat_s`; an incident that resolves
//! or leaves the hub's state is posted once more as resolved. Active alerts
//! carry `endsAt` three repeat periods ahead, so Alertmanager resolves them
//! by itself if the node goes away. Failed posts are retried with backoff;
//! an alert is never dropped for a failed post, since the next cycle sends
//! the whole current set again.
//!
//! [`Forwarder`] is the pure part (which alerts to post at a given time);
//! [`run`] is the shell (timer, wake-ups, HTTP).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{wall_now, Shared};
use crate::actors::hub::incident::Incident;
use crate::events::decision::IncidentStatus;
use crate::events::Timestamp;

/// One alert as Alertmanager's v2 API takes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Identity and routing: `alertname`, `incident`, `service`, `severity`.
    pub labels: BTreeMap<String, String>,
    /// Human context: summary, triggers, services, impact.
    pub annotations: BTreeMap<String, String>,
    /// When the incident started (event time).
    pub starts_at: String,
    /// When it stops being active unless re-sent (or when it ended).
    pub ends_at: String,
    /// Where to look: the node's state endpoint for the incident's service.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// Which alerts to post, remembering what was posted before.
#[derive(Debug, Default)]
pub struct Forwarder {
    /// Active alerts last computed, by incident id.
    active: BTreeMap<String, Alert>,
    /// Ended alerts not yet delivered.
    ended: BTreeMap<String, Alert>,
}

impl Forwarder {
    /// The alerts to post now for the hub's open `incidents`: every escalated
    /// active one, plus the ended ones not yet delivered. `hold` is how long
    /// an active alert stays active without being re-sent; `base_url` is
    /// the node's HTTP address for `generatorURL`.
    pub fn batch(
        &mut self,
        incidents: &[Incident],
        now: Timestamp,
        hold: Duration,
        base_url: &str,
    ) -> Vec<Alert> {
        let until = Timestamp::from_nanos(now.nanos().saturating_add(hold.as_nanos() as i64));
        let mut next = BTreeMap::new();
        for i in incidents {
            if i.escalated.is_empty() || i.status == IncidentStatus::Resolved {
                continue;
            }
            next.insert(i.id.clone(), alert(i, until, base_url));
        }
        for (id, old) in std::mem::take(&mut self.active) {
            let changed = next.get(&id).is_none_or(|a| a.labels != old.labels);
            if changed {
                // Over, or re-labelled (severity rose): end the old identity.
                self.ended.insert(
                    format!(
                        "{id}/{}",
                        old.labels.get("severity").cloned().unwrap_or_default()
                    ),
                    Alert {
                        ends_at: now.to_rfc3339(),
                        ..old
                    },
                );
            }
        }
        self.active = next;
        self.active
            .values()
            .chain(self.ended.values())
            .cloned()
            .collect()
    }

    /// The last batch was delivered: ended alerts need not be sent again.
    pub fn delivered(&mut self) {
        self.ended.clear();
    }
}

fn alert(i: &Incident, until: Timestamp, base_url: &str) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_owned(), "FaultlineEscalation".to_owned());
    labels.insert("incident".to_owned(), i.id.clone());
    labels.insert("service".to_owned(), i.subject.clone());
    labels.insert("severity".to_owned(), i.severity.as_str().to_owned());
    let triggers: Vec<String> = (i.escalated.iter())
        .map(|t| {
            serde_json::to_value(t)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    let services: Vec<&str> = i.services.iter().map(String::as_str).collect();
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary".to_owned(),
        format!(
            "{} incident {} on {} escalated ({})",
            i.severity.as_str(),
            i.id,
            i.subject,
            triggers.join(", ")
        ),
    );
    annotations.insert("triggers".to_owned(), triggers.join(","));
    annotations.insert("services".to_owned(), services.join(","));
    if let Some(root) = &i.root_cause {
        annotations.insert("root_cause".to_owned(), root.clone());
    }
    annotations.insert("impact_per_minute".to_owned(), format!("{:.2}", i.impact));
    annotations.insert("loss_estimate".to_owned(), format!("{:.2}", i.loss));
    if let Some(last) = i.timeline.last() {
        annotations.insert("description".to_owned(), last.summary.clone());
    }
    let started = i.timeline.first().map_or(i.last, |e| e.time);
    Alert {
        labels,
        annotations,
        starts_at: started.to_rfc3339(),
        ends_at: until.to_rfc3339(),
        generator_url: format!("{base_url}/v1/state/hub/{}", i.subject),
    }
}

/// Where and how often to post.
#[derive(Clone, Debug)]
pub struct AlertTarget {
    /// `<webhook>/api/v2/alerts`.
    pub url: String,
    /// Re-send period.
    pub repeat: Duration,
    /// One request's timeout.
    pub timeout: Duration,
    /// The node's own base URL, for `generatorURL`.
    pub base_url: String,
}

/// Forwards until `stop` turns true. Wakes every `repeat` and whenever the
/// hub writes an escalation or a resolution (`shared.alert_wake`).
pub async fn run(
    target: AlertTarget,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(target.timeout))
        .build()
        .into();
    let mut fwd = Forwarder::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(target.repeat) => {}
            _ = shared.alert_wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // While the hub replays history, its state is the past: wait.
        let caught_up = shared.statuses().get("hub").is_some_and(|s| s.caught_up);
        if !caught_up {
            continue;
        }
        let incidents = match shared.views.query(&shared.running, "hub", None) {
            Ok(a) => a
                .state
                .get("incidents")
                .cloned()
                .and_then(|v| serde_json::from_value::<Vec<Incident>>(v).ok())
                .unwrap_or_default(),
            Err(_) => continue,
        };
        let batch = fwd.batch(&incidents, wall_now(), target.repeat * 3, &target.base_url);
        if batch.is_empty() {
            continue;
        }
        let body = serde_json::to_vec(&batch).unwrap_or_default();
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=4 {
            let (agent, url, body) = (agent.clone(), target.url.clone(), body.clone());
            let sent = tokio::task::spawn_blocking(move || {
                agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(&body[..])
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match sent {
                Ok(()) => {
                    fwd.delivered();
                    shared.metrics.alerts_sent.inc_by(batch.len() as u64);
                    tracing::debug!(alerts = batch.len(), "alerts delivered");
                    break;
                }
                Err(e) => {
                    shared.metrics.alert_failures.inc();
                    tracing::warn!(url = %target.url, attempt, error = %e, "alert post failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    backoff *= 2;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decision::{EscalationTrigger, Severity};

    fn incident(id: &str, severity: Severity, escalated: bool) -> Incident {
        let mut i = Incident::new(id.to_owned(), "pay", Timestamp::from_nanos(1_000_000_000));
        i.severity = severity;
        if escalated {
            i.escalated.insert(EscalationTrigger::Critical);
        }
        i
    }

    const T: Duration = Duration::from_secs(180);

    #[test]
    fn only_escalated_incidents_alert_and_stay_active_ahead() {
        let mut f = Forwarder::default();
        let now = Timestamp::from_nanos(10_000_000_000);
        let b = f.batch(
            &[
                incident("inc-1", Severity::Critical, true),
                incident("inc-2", Severity::Low, false),
            ],
            now,
            T,
            "http://n",
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].labels["incident"], "inc-1");
        assert_eq!(b[0].labels["severity"], "critical");
        assert_eq!(b[0].annotations["triggers"], "critical");
        assert_eq!(b[0].starts_at, "1970-01-01T00:00:01Z");
        assert_eq!(b[0].ends_at, "1970-01-01T00:03:10Z");
        assert_eq!(b[0].generator_url, "http://n/v1/state/hub/pay");
        let json = serde_json::to_value(&b).unwrap();
        assert!(json[0].get("startsAt").is_some() && json[0].get("generatorURL").is_some());
    }

    #[test]
    fn resolved_incident_is_sent_ended_until_delivered() {
        let mut f = Forwarder::default();
        let t = |s: i64| Timestamp::from_nanos(s * 1_000_000_000);
        f.batch(&[incident("inc-1", Severity::Critical, true)], t(10), T, "");
        // Gone from the hub's state: one ended alert, kept until delivered.
        let b = f.batch(&[], t(20), T, "");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].ends_at, t(20).to_rfc3339());
        assert_eq!(
            f.batch(&[], t(30), T, "").len(),
            1,
            "not delivered: sent again"
        );
        f.delivered();
        assert!(f.batch(&[], t(40), T, "").is_empty());
    }

    #[test]
    fn a_severity_change_ends_the_old_label_set() {
        let mut f = Forwarder::default();
        let t = |s: i64| Timestamp::from_nanos(s * 1_000_000_000);
        f.batch(&[incident("inc-1", Severity::High, true)], t(10), T, "");
        f.delivered();
        let b = f.batch(&[incident("inc-1", Severity::Critical, true)], t(20), T, "");
        let sev: Vec<(&str, &str)> = b
            .iter()
            .map(|a| (a.labels["severity"].as_str(), a.ends_at.as_str()))
            .collect();
        assert_eq!(
            sev,
            vec![
                ("critical", "1970-01-01T00:03:20Z"),
                ("high", "1970-01-01T00:00:20Z")
            ]
        );
    }
}
