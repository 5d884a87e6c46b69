#!/usr/bin/env python3
"""Writes the hub scenarios: config.toml, input.jsonl and expected.jsonl.

The hub reads other agents' decisions, so each scenario runs the agents
that produce them (named in its `agents` line) and expects their decisions
too, in log order, by hand from their rules. Incident ids are
`inc-<sequence of the decision that opened it>`; where a command names an
incident the id is taken from a run of the prefix (like the rollback
acknowledgements), so `cargo build` first.
"""
import importlib.util
import json
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("guardgen", os.path.join(HERE, "..", "guard", "generate.py"))
g = importlib.util.module_from_spec(spec)
spec.loader.exec_module(g)

BREAKER = """[breaker]
scopes = ["service"]
[breaker.default]
wait_duration_in_open_state_ms = 10000
"""
ROLLBACK = """[rollback]
interval_s = 10
bake_time_s = 30
no_data_escalation_s = 60
"""
STABLE = "[hub]\nstability_s = 30\n"


class Scenario(g.Scenario):
    def __init__(self, name, doc, agents, config=""):
        head = "agents = [" + ", ".join(f'"{a}"' for a in agents) + "]\n"
        super().__init__(name, doc, config=head + config, folder=HERE)

    def hub(self, t, phase, subject, **data):
        self.expect(t, "incident", subject, phase=phase, **data)

    def breaker(self, t, subject, to):
        self.expect(t, "breaker", subject, to=to)

    def command_for_incident(self, t, action, subject, **kw):
        """A command whose target is the incident open on `subject` (id from a run)."""
        self.event("command", t, {"action": action, "target": "?inc:" + subject, **kw}, subject)

    def resolve_acks(self, config_path):
        super().resolve_acks(config_path)
        for i, e in enumerate(self.lines):
            target = e.get("data", {}).get("target", "") if e["type"] == "faultline.command" else ""
            if not target.startswith("?inc:"):
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
                for line in self.lines[:i]:
                    f.write(json.dumps(line) + "\n")
            out = subprocess.run([g.BIN, "process", "--config", config_path, "--input", f.name],
                                 check=True, capture_output=True, text=True).stdout
            os.unlink(f.name)
            ids = [d["data"]["incident_id"] for d in map(json.loads, out.splitlines())
                   if d["type"] == "faultline.incident" and target[5:] in d["data"]["services"]]
            e["data"]["target"] = ids[-1]


S = []

s = Scenario("01_breaker_open_opens_mitigates_and_resolves",
             "pay (60 per minute) fails 60 % at t=1: its breaker opens and the hub opens an incident (nothing at risk yet: no interval has closed). The interval [0, 10) closes on the tick at 11 with pay failing 60 %: 36/min at risk (medium). Half-open at 11 keeps the breaker signal unhealthy; healthy probes close it at 16, but the last closed interval still fails 60 %, so the incident stays open until [10, 20) closes healthy at t=21: mitigated, and resolved 30 s after that interval ended (stability_s), at t=50. Loss: 36/min from 10 to 20 s = 6.0.",
             ["breaker", "hub"], BREAKER + STABLE)
s.topology("pay", revenue=60.0)
s.traffic("pay", 0, 5, errors=60)
s.traffic("pay", 15, 60, errors=0)
s.breaker(1, "pay", "open")
s.hub(1, "opened", "pay", status="open", severity="low", services=["pay"], impact_per_minute=0.0,
      timeline=[{"kind": "breaker", "service": "pay", "summary": "breaker pay closed -> open"}])
s.breaker(11, "pay", "half_open")
s.hub(11, "updated", "pay", severity="medium", impact_per_minute=36.0, loss_estimate=0.0)
s.breaker(16, "pay", "closed")
s.hub(21, "mitigated", "pay", status="mitigated", impact_per_minute=0.0, loss_estimate=6.0)
s.hub(50, "resolved", "pay", status="resolved", loss_estimate=6.0,
      timeline=[{"summary": "breaker pay closed -> open"}, {"summary": "breaker pay open -> half_open"},
                {"summary": "breaker pay half_open -> closed"}])
S.append(s)

s = Scenario("02_unrelated_failures_open_two_incidents",
             "pay and search fail at the same time but neither depends on the other: two incidents.",
             ["breaker", "hub"], BREAKER)
s.topology("pay")
s.topology("search")
s.traffic("pay", 0, 5, errors=60)
s.traffic("search", 0, 5, errors=70)
s.breaker(1, "pay", "open")
s.hub(1, "opened", "pay", services=["pay"], incident_id="inc-4")
s.breaker(1, "search", "open")
s.hub(1, "opened", "search", services=["search"], incident_id="inc-7")
S.append(s)

s = Scenario("03_related_failures_join_one_incident",
             "web depends on api. api's breaker opens at t=1 (incident opened); web's opens at t=6: web is connected to api through the graph, so it joins the same incident (updated: now 2 services).",
             ["breaker", "hub"], BREAKER)
s.topology("web", ["api"])
s.topology("api")
s.traffic("api", 0, 10, errors=60)
s.traffic("web", 5, 10, errors=55)
s.breaker(1, "api", "open")
s.hub(1, "opened", "api", services=["api"], incident_id="inc-4")
s.breaker(6, "web", "open")
s.hub(6, "updated", "api", services=["api", "web"], incident_id="inc-4", status="open")
S.append(s)


def bad_deploy(s, until=90):
    """web -> api; v1 steady to 60, v2 deployed at 60 failing 60 % (web 50 %) until `until`."""
    s.topology("web", ["api"])
    s.topology("api")
    s.traffic("web", 0, 60)
    s.traffic("api", 0, 60, version="v1")
    s.deploy(60, "started", "v2", "v1", "api", strategy="rolling")
    s.traffic("api", 60, until, errors=60, version="v2")
    s.traffic("web", 60, until, errors=50)


s = Scenario("04_rollback_in_progress_holds_isolation",
             "A bad deploy of api (60 % errors) cascades to web. The guard isolates api when [60, 70) closes, which opens the incident. The rollback starts at t=90 (three failed analyses): under the adaptive rule the rollback proceeds and the isolation is held, so v1 gets the traffic that validates it. The rollback succeeds at t=101: the held isolation is cancelled (the deploy was the fault).",
             ["rollback", "guard", "hub"], ROLLBACK)
bad_deploy(s)
s.ack(91, "api")
s.traffic("api", 91, 105, version="v1")
s.traffic("web", 90, 105)
s.expect(70, "rollback", "api", phase="analysis", verdict="fail")
s.expect(70, "containment", "api", action="isolate", root_cause="api", edges=["web->api"])
s.hub(70, "opened", "api", services=["api", "web"], root_cause="api")
s.expect(80, "rollback", "api", phase="analysis", verdict="fail")
s.expect(90, "rollback", "api", phase="analysis", verdict="fail")
s.expect(90, "rollback", "api", phase="initiated")
s.hub(90, "updated", "api", coordination={"strategy": "adaptive", "verdict": "proceed", "agent": "rollback", "action": "initiated", "service": "api", "owner": "guard"})
s.hub(90, "updated", "api", coordination={"strategy": "adaptive", "verdict": "hold", "agent": "guard", "action": "isolate", "service": "api", "owner": "rollback"})
s.expect(101, "rollback", "api", phase="succeeded")
s.hub(101, "updated", "api", coordination={"verdict": "cancel", "agent": "guard", "action": "isolate"})
S.append(s)

s = Scenario("05_critical_incident_escalates_exactly_once",
             "pay is critical-tier with 1000/min at stake and fails 80 %. Its breaker opens at t=1 (incident: high, a critical-tier service). When [0, 10) closes at t=11 pay fails 80 % of its traffic: critical (800/min at risk), escalated once. It keeps failing: the breaker goes half-open and opens again, and nothing escalates a second time.",
             ["breaker", "hub"], BREAKER)
s.topology("pay", tier="critical", revenue=1000.0)
s.traffic("pay", 0, 20, errors=80)
s.breaker(1, "pay", "open")
s.hub(1, "opened", "pay", severity="high")
s.breaker(11, "pay", "half_open")
s.hub(11, "updated", "pay", severity="critical", impact_per_minute=800.0)
s.hub(11, "escalated", "pay", severity="critical", escalation="critical")
s.breaker(11, "pay", "open")
S.append(s)

s = Scenario("06_acknowledge_and_resolve_commands",
             "An operator acknowledges the incident by its id (acknowledged_by alice), then resolves it by naming the service: resolved with its timeline, although the breaker is still open.",
             ["breaker", "hub"], BREAKER)
s.topology("pay")
s.traffic("pay", 0, 5, errors=60)
s.command_for_incident(3, "acknowledge", "pay", by="alice")
s.command(4, "resolve", "pay", by="bob", reason="fixed the config by hand")
s.breaker(1, "pay", "open")
s.hub(1, "opened", "pay", status="open")
s.hub(3, "acknowledged", "pay", acknowledged_by="alice", status="open")
s.hub(4, "resolved", "pay", status="resolved", acknowledged_by="alice",
      reason="resolved by bob: fixed the config by hand", timeline=[{"kind": "breaker"}])
S.append(s)

s = Scenario("07_blocked_rollback_escalates",
             "A deploy that ran an irreversible migration fails its analyses: the rollback is blocked, which opens an incident and escalates (rollback_blocked) once.",
             ["rollback", "hub"], ROLLBACK)
s.topology("api")
s.traffic("api", 0, 60, version="v1")
s.deploy(60, "started", "v2", "v1", "api", strategy="rolling", irreversible_migration=True)
s.traffic("api", 60, 95, errors=60, version="v2")
for t in (70, 80, 90):
    s.expect(t, "rollback", "api", phase="analysis", verdict="fail")
s.expect(90, "rollback", "api", phase="blocked", blocked_by="irreversible_migration")
s.hub(90, "opened", "api")
s.hub(90, "escalated", "api", escalation="rollback_blocked")
S.append(s)

s = Scenario("08_sequential_strategy_holds_the_second_agent",
             "With strategy = sequential, pay's breaker acts on pay first; when the guard isolates pay at t=11 the hub holds it (one agent per service). The probes at 11 still fail and the breakers reopen; the healthy probes at 26 close pay's breaker, and the hub releases the isolation.",
             ["breaker", "guard", "hub"], BREAKER + "[hub]\nstrategy = \"sequential\"\n")
s.topology("web", ["pay"])
s.topology("pay")
s.traffic("pay", 0, 15, errors=60)
s.traffic("web", 0, 15, errors=55)
s.traffic("pay", 25, 30, errors=0)
s.traffic("web", 25, 30, errors=0)
s.breaker(1, "pay", "open")
s.hub(1, "opened", "pay", services=["pay"])
s.breaker(1, "web", "open")
s.hub(1, "updated", "pay", services=["pay", "web"])
s.breaker(11, "pay", "half_open")
s.breaker(11, "web", "half_open")
s.expect(11, "containment", "pay", action="isolate", root_cause="pay")
s.hub(11, "updated", "pay", root_cause="pay")
s.hub(11, "updated", "pay", coordination={"strategy": "sequential", "verdict": "hold", "agent": "guard", "action": "isolate", "owner": "breaker"})
s.breaker(11, "pay", "open")  # the probes at 11 still fail
s.breaker(11, "web", "open")
s.breaker(21, "pay", "half_open")
s.breaker(21, "web", "half_open")
s.breaker(26, "pay", "closed")
s.hub(26, "updated", "pay", coordination={"verdict": "release", "agent": "guard"})
s.breaker(26, "web", "closed")
S.append(s)

s = Scenario("09_incident_reopens_when_a_signal_returns",
             "pay's breaker closes at t=16 and the incident is mitigated when the healthy interval [10, 20) closes at t=21; pay fails again and its breaker reopens at t=41, within the stability period: the incident is open again (updated), not resolved.",
             ["breaker", "hub"], BREAKER + STABLE)
s.topology("pay")
s.traffic("pay", 0, 5, errors=60)
s.traffic("pay", 15, 40, errors=0)
s.traffic("pay", 40, 45, errors=90)
s.tick(60)
s.breaker(1, "pay", "open")
s.hub(1, "opened", "pay")
s.breaker(11, "pay", "half_open")
s.breaker(16, "pay", "closed")
s.hub(21, "mitigated", "pay", status="mitigated")
s.breaker(41, "pay", "open")
s.hub(41, "updated", "pay", status="open")
s.breaker(51, "pay", "half_open")
S.append(s)

s = Scenario("10_ineffective_rollback_escalates",
             "The rollback of api is carried out but the errors stay (the fault is elsewhere): ineffective, which escalates (rollback_ineffective) once. The rollback signal is over, but api's own traffic still fails 60 %, so the incident stays open.",
             ["rollback", "hub"], ROLLBACK)
s.topology("api")
s.traffic("api", 0, 60, version="v1")
s.deploy(60, "started", "v2", "v1", "api", strategy="rolling")
s.traffic("api", 60, 90, errors=60, version="v2")
s.ack(91, "api")
s.traffic("api", 91, 135, errors=60, version="v1")
for t in (70, 80, 90):
    s.expect(t, "rollback", "api", phase="analysis", verdict="fail")
s.expect(90, "rollback", "api", phase="initiated")
s.hub(90, "opened", "api")
s.expect(121, "rollback", "api", phase="ineffective")
s.hub(121, "escalated", "api", escalation="rollback_ineffective", status="open")
S.append(s)


def rejection():
    d = os.path.join(HERE, "90_config_rejections")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.toml"), "w") as f:
        f.write("# Every hub setting problem is reported at once, with its value.\n"
                "[hub]\npriority = [\"router\", \"guard\", \"guard\"]\nimpact_high = 500.0\n"
                "impact_critical = 50.0\nhigh_risk = 2.0\n")
    with open(os.path.join(d, "expected_errors.txt"), "w") as f:
        f.write("hub.priority: \"router\" is not a coordinated agent\n"
                "hub.priority: \"guard\" is listed twice\n"
                "hub.impact_critical: 50 is below impact_high (500)\n"
                "hub.high_risk: 2 is outside [0, 1]\n")


if __name__ == "__main__":
    for s in S:
        s.write()
    rejection()
    print(f"wrote {len(S)} hub scenarios")
