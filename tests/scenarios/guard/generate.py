#!/usr/bin/env python3
"""Writes config.toml, input.jsonl and expected.jsonl for the guard scenarios
(and, with --hub, the hub scenarios in ../hub).

Expected decisions are written here by hand from the rules in the guard's
and the hub's module docs, never captured from a run. The only value taken
from a run is the id of a rollback step an actuator acknowledges (hub
scenario 04), so that scenario needs the debug binary (`cargo build`).

Time layout shared by the scenarios: the guard cuts time into 10 s
intervals and needs 6 healthy points per service before its own statistics
judge it, so every scenario starts with 70 s of steady traffic: one window
per service at t = 1, 6, 11, ... (never on an interval boundary), 100
requests, 1 % errors, p99 50 ms. An interval [k0, k0+10) closes on the first
record at or after k0+10, i.e. at t = k0+11, which is the time the guard's
decisions carry.
"""
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
HUB = os.path.join(HERE, "..", "hub")
ROOT = os.path.abspath(os.path.join(HERE, "../../.."))
BIN = os.path.join(ROOT, "target/debug/faultline")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
GUARD_ONLY = 'agents = ["guard"]\n'


def at(s):
    return (T0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def out_time(s):
    return (T0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scenario:
    def __init__(self, name, doc, config=GUARD_ONLY, folder=HERE):
        self.name, self.doc, self.config, self.folder = name, doc, config, folder
        self.lines, self.n, self.expected = [], 0, []

    def event(self, kind, t, data, subject):
        self.n += 1
        e = {"specversion": "1.0", "id": f"e{self.n}", "source": "test",
             "type": f"faultline.{kind}", "subject": subject, "time": at(t)}
        if data is not None:
            e["data"] = data
        self.lines.append(e)

    def topology(self, service, deps=(), tier=None, revenue=None):
        """Declares `service` at t=0."""
        d = {"dependencies": [{"callee": c} for c in deps]}
        if tier:
            d["tier"] = tier
        if revenue is not None:
            d["revenue_per_minute"] = revenue
        self.event("topology", 0, d, service)

    def traffic(self, service, t0, t1, errors=1, p99=50.0, requests=100, caller=None, version=None):
        """One window every 5 s at t = 1, 6, 11, ... in [t0, t1)."""
        t = t0 + (1 - t0) % 5
        while t < t1:
            d = {"interval_ms": 5000, "requests": requests, "errors": errors,
                 "latency_ms": {"p99": p99}}
            if caller:
                d["caller"] = caller
            if version:
                d["version"] = version
            self.event("window", t, d, service)
            t += 5

    def tick(self, t):
        self.event("tick", t, None, "_system")

    def command(self, t, action, subject, **kw):
        self.event("command", t, {"action": action, **kw}, subject)

    def deploy(self, t, phase, version, previous, subject, **kw):
        self.event("deploy", t, {"phase": phase, "version": version,
                                 "previous_version": previous, **kw}, subject)

    def ack(self, t, subject):
        self.event("actuation", t, {"decision_id": "?", "status": "succeeded"}, subject)

    def expect(self, t, kind, subject, **data):
        self.expected.append({"time": out_time(t), "type": f"faultline.{kind}",
                              "subject": subject, "data": data})

    def contain(self, t, action, root, **data):
        self.expect(t, "containment", root, action=action, root_cause=root, **data)

    def write(self):
        d = os.path.join(self.folder, self.name)
        os.makedirs(d, exist_ok=True)
        config = os.path.join(d, "config.toml")
        with open(config, "w") as f:
            f.write(f"# {self.doc}\n{self.config}")
        self.lines.sort(key=lambda e: e["time"])
        self.resolve_acks(config)
        with open(os.path.join(d, "input.jsonl"), "w") as f:
            for line in self.lines:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        with open(os.path.join(d, "expected.jsonl"), "w") as f:
            for line in self.expected:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")

    def resolve_acks(self, config_path):
        for i, e in enumerate(self.lines):
            if e["type"] != "faultline.actuation" or e["data"]["decision_id"] != "?":
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
                for line in self.lines[:i + 1]:
                    f.write(json.dumps(line) + "\n")
            out = subprocess.run([BIN, "process", "--config", config_path, "--input", f.name],
                                 check=True, capture_output=True, text=True).stdout
            os.unlink(f.name)
            steps = [d for d in map(json.loads, out.splitlines())
                     if d["type"] == "faultline.rollback" and d["data"]["phase"] in ("initiated", "step")]
            e["data"]["decision_id"] = steps[-1]["id"]


def steady(s, services, t1=70, callers=None):
    for svc in services:
        s.traffic(svc, 0, t1, caller=(callers or {}).get(svc))


def chain(s):
    """web -> api -> db, declared."""
    s.topology("web", ["api"], tier="critical", revenue=100.0)
    s.topology("api", ["db"], tier="high", revenue=50.0)
    s.topology("db", [], tier="high")


S = []

# ---- localisation and containment -----------------------------------------

s = Scenario("01_db_brownout_localised_to_db_edges_opened_before_breakers",
             "A database brownout under web -> api -> db: db fails 30 % and slows, its callers fail 25 % and 20 %. All three turn anomalous in the interval [70, 80); the ranking puts db first (its own dependencies are healthy; api's and web's callee is failing) and api->db is opened at t=81, while every failure rate is still under the 50 % at which the service breakers trip. At t=100 the cascade deepens (db 60 %, api 55 %, web 52 %): the breakers trip on the first windows over 50 %, and the guard raises its containment of db to isolation when [100, 110) closes.",
             config='agents = ["breaker", "guard"]\n[breaker]\nscopes = ["service"]\n')
chain(s)
steady(s, ["web", "api", "db"])
s.traffic("db", 70, 100, errors=30, p99=400.0, caller="api")
s.traffic("api", 70, 100, errors=25, p99=450.0, caller="web")
s.traffic("web", 70, 100, errors=20, p99=500.0)
s.traffic("db", 100, 115, errors=60, p99=900.0, caller="api")
s.traffic("api", 100, 115, errors=55, p99=900.0, caller="web")
s.traffic("web", 100, 115, errors=52, p99=900.0)
s.contain(81, "open_edges", "db", edges=["api->db"], affected=["api", "web"],
          candidates=[{"service": "db"}, {"service": "api"}, {"service": "web"}],
          impact_per_minute=32.5)
for svc in ["db", "api", "web"]:
    s.expect(101, "breaker", svc, to="open", target=svc)
s.contain(111, "isolate", "db", edges=["api->db"], affected=["api", "web"])
S.append(s)

s = Scenario("02_failing_service_with_healthy_dependencies_is_its_own_root_cause",
             "api fails 40 % from t=70 while db stays healthy; web, its caller, fails 30 %. api is ranked first (its dependency is healthy), web second, and web->api is opened.")
chain(s)
steady(s, ["web", "api", "db"])
s.traffic("api", 70, 90, errors=40, caller="web")
s.traffic("web", 70, 90, errors=30)
s.traffic("db", 70, 90)
s.contain(81, "open_edges", "api", edges=["web->api"], affected=["web"],
          candidates=[{"service": "api"}, {"service": "web"}])
S.append(s)

s = Scenario("03_hard_failure_isolates_every_edge_in",
             "pay fails 80 %: at or above isolate_error_rate (50 %) the guard isolates it, opening every edge into it, also batch->pay whose caller shows no trouble (batch publishes nothing).")
s.topology("web", ["pay"], tier="critical")
s.topology("batch", ["pay"], tier="low")
s.topology("pay", [])
steady(s, ["web", "pay"])
s.traffic("pay", 70, 90, errors=80)
s.traffic("web", 70, 90, errors=60)
s.contain(81, "isolate", "pay", edges=["batch->pay", "web->pay"], affected=["batch", "web"])
S.append(s)

s = Scenario("04_slow_root_cause_sheds_low_priority_callers",
             "db slows to 5x its p99 with few errors; api (critical tier) slows with it, reports (low tier) also calls db. db is the root cause; it is degraded, not failing, so the low-tier caller's edge reports->db is shed and the critical caller keeps its traffic.")
s.topology("api", ["db"], tier="critical")
s.topology("reports", ["db"], tier="low")
s.topology("db", [])
steady(s, ["api", "db", "reports"])
s.traffic("db", 70, 90, errors=2, p99=250.0)
s.traffic("api", 70, 90, errors=2, p99=300.0)
s.traffic("reports", 70, 90)
s.contain(81, "shed", "db", edges=["reports->db"], affected=["api", "reports"])
S.append(s)

s = Scenario("05_containment_lifts_after_recovery_not_before",
             "db fails 30 % from t=70 to t=120; its callers recover at t=90 (the opened edges protect them) but db does not: no lift while db is still failing. db is healthy from t=120; after lift_after = 3 healthy intervals ([120,130), [130,140), [140,150)) the containment lifts at t=151.")
chain(s)
steady(s, ["web", "api", "db"])
s.traffic("db", 70, 120, errors=30)
s.traffic("api", 70, 90, errors=25)
s.traffic("web", 70, 90, errors=20)
s.traffic("api", 90, 160)
s.traffic("web", 90, 160)
s.traffic("db", 120, 160)
s.contain(81, "open_edges", "db", edges=["api->db"])
s.contain(151, "lift", "db", lifted="open_edges", edges=["api->db"])
S.append(s)

s = Scenario("06_retry_storm_is_budgeted_and_lifted",
             "web serves 100 requests per window and normally makes 3 calls to api for each. From t=70 its retries make it 9 calls per request (amplification 3 against the 2x threshold): a retry budget of 20 % on web->api at t=81. Back to 3 calls per request at t=90; after three calm intervals the budget lifts at t=121.")
s.topology("web", ["api"])
s.topology("api", [])
s.traffic("web", 0, 130)
s.traffic("api", 0, 70, requests=300, caller="web")
s.traffic("api", 70, 90, requests=900, caller="web")
s.traffic("api", 90, 130, requests=300, caller="web")
s.contain(81, "retry_budget", "api", edges=["web->api"], amplification=3.0,
          retry_budget_percent=20.0, affected=["web"])
s.contain(121, "lift", "api", lifted="retry_budget", edges=["web->api"])
S.append(s)

s = Scenario("07_one_anomalous_service_alone_is_not_a_cascade",
             "db fails 40 % but nothing else is anomalous (min_anomalous = 2): there is nothing to localise and the guard stays silent; db's own breaker is the tool for a lone failure.")
chain(s)
steady(s, ["web", "api", "db"])
s.traffic("db", 70, 100, errors=40)
s.traffic("api", 70, 100)
s.traffic("web", 70, 100)
S.append(s)

s = Scenario("08_a_tie_has_no_confidence_and_contains_nothing",
             "Two independent leaves (search and pay, both called by web) fail identically at the same time, and web is healthy: the ranking ties (confidence 0 < min_confidence 0.5), so the guard does not guess.")
s.topology("web", ["search", "pay"])
s.topology("search", [])
s.topology("pay", [])
steady(s, ["web", "search", "pay"])
s.traffic("search", 70, 100, errors=30)
s.traffic("pay", 70, 100, errors=30)
s.traffic("web", 70, 100)
S.append(s)

s = Scenario("09_edges_learned_from_the_caller_field",
             "No topology at all: the graph is learned from the caller field of the windows (web calls api, api calls db). The db brownout is localised on the learned graph exactly as on a declared one.")
steady(s, ["web", "api", "db"], callers={"api": "web", "db": "api"})
s.traffic("db", 70, 90, errors=30, caller="api")
s.traffic("api", 70, 90, errors=25, caller="web")
s.traffic("web", 70, 90, errors=20)
s.contain(81, "open_edges", "db", edges=["api->db"], affected=["api", "web"],
          candidates=[{"service": "db"}, {"service": "api"}, {"service": "web"}])
S.append(s)

s = Scenario("10_cycle_ranked_by_onset",
             "api and cache call each other (a cycle), so each has an anomalous callee and graph position cannot tell them apart. cache goes bad first (interval [70, 80)), api an interval later: onset order ranks cache first (0.625 against 0.467), and the walks over the cycle terminate. Onset alone is weak evidence, so the confidence is low (0.316): this policy acts from 0.3.",
             config=GUARD_ONLY + "[guard]\nmin_confidence = 0.3\n")
s.topology("api", ["cache"])
s.topology("cache", ["api"])
steady(s, ["api", "cache"])
s.traffic("cache", 70, 100, errors=30)
s.traffic("api", 70, 80)
s.traffic("api", 80, 100, errors=30)
s.contain(91, "open_edges", "cache", edges=["api->cache"], affected=["api"],
          candidates=[{"service": "cache", "score": 0.625}, {"service": "api", "score": 0.467}],
          confidence=0.316)
S.append(s)

s = Scenario("11_breaker_decisions_are_evidence_before_any_history",
             "From the first second pay fails 60 % and web 55 %: the guard has no baseline yet, but both service breakers open on their first windows, and open breakers are anomalies. pay (whose dependencies are healthy) is the root cause; its breaker is open, so it is isolated when [0, 10) closes.",
             config='agents = ["breaker", "guard"]\n[breaker]\nscopes = ["service"]\n')
s.topology("web", ["pay"])
s.topology("pay", [])
s.traffic("pay", 0, 15, errors=60)
s.traffic("web", 0, 15, errors=55)
s.expect(1, "breaker", "pay", to="open")
s.expect(1, "breaker", "web", to="open")
s.contain(11, "isolate", "pay", edges=["web->pay"], affected=["web"])
S.append(s)

s = Scenario("12_containment_only_rises_until_lifted",
             "db first slows (shed the low-tier caller), then fails 20 % (open the suffering caller's edge, keeping the shed one), then 70 % (isolate); when it improves to 20 % again the containment stays at isolation: it only ever rises until the root cause has recovered.")
s.topology("api", ["db"], tier="critical")
s.topology("reports", ["db"], tier="low")
s.topology("db", [])
steady(s, ["api", "db", "reports"])
s.traffic("db", 70, 80, errors=2, p99=250.0)
s.traffic("db", 80, 90, errors=20, p99=250.0)
s.traffic("db", 90, 100, errors=70, p99=250.0)
s.traffic("db", 100, 110, errors=20, p99=250.0)
s.traffic("api", 70, 110, errors=2, p99=300.0)
s.traffic("reports", 70, 110)
s.contain(81, "shed", "db", edges=["reports->db"])
s.contain(91, "open_edges", "db", edges=["api->db", "reports->db"])
s.contain(101, "isolate", "db", edges=["api->db", "reports->db"])
S.append(s)


def rejection():
    d = os.path.join(HERE, "90_config_rejections")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.toml"), "w") as f:
        f.write("# Every guard setting problem is reported at once, with its value.\n"
                "[guard]\nisolate_error_rate = 5.0\nopen_edges_error_rate = 10.0\n"
                "storm_amplification = 1.0\nmin_history = 1\nmin_confidence = 1.5\n")
    with open(os.path.join(d, "expected_errors.txt"), "w") as f:
        f.write("guard.isolate_error_rate: 5 is below open_edges_error_rate (10)\n"
                "guard.storm_amplification: 1 must be above 1\n"
                "guard.min_history: 1 is outside 3..=history (30)\n"
                "guard.min_confidence: 1.5 is outside [0, 1]\n")


if __name__ == "__main__":
    for s in S:
        s.write()
    rejection()
    print(f"wrote {len(S)} guard scenarios")
