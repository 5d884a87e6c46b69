#!/usr/bin/env python3
"""Writes config.toml, input.jsonl and expected.jsonl for the rollback scenarios.

The expected decisions are written here by hand from the rules (each
scenario's doc line says which), never captured from the output. The only
thing taken from a run is the id of a rollback step that an actuator
acknowledges (`faultline.actuation` names the decision it carried out), so
the script needs the debug binary: `cargo build && python3
tests/scenarios/rollback/generate.py`.

Time layout shared by most scenarios: v1 serves alone for a minute (the
pre-deploy baseline), v2 is deployed at t=60, and with `interval_s = 10`
analyses fall at t=70, 80, 90, ... Windows are published at odd seconds so
none sits on an analysis boundary.
"""
import json
import os
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../.."))
BIN = os.path.join(ROOT, "target/debug/faultline")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
BASE = """agents = ["predictor", "breaker", "router", "rollback"]
[breaker]
scopes = ["system"]
[rollback]
interval_s = 10
bake_time_s = 30
no_data_escalation_s = 60
"""


def at(s):
    return (T0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def out_time(s):
    """Times as faultline writes them: no fractional part when whole."""
    return (T0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scenario:
    def __init__(self, name, doc, config="", folder=HERE):
        self.name, self.doc, self.config, self.folder = name, doc, config, folder
        self.lines, self.n, self.expected = [], 0, []

    def event(self, kind, t, data, subject="api"):
        self.n += 1
        e = {"specversion": "1.0", "id": f"e{self.n}", "source": "test",
             "type": f"faultline.{kind}", "subject": subject, "time": at(t)}
        if data is not None:
            e["data"] = data
        self.lines.append(e)

    def window(self, t, version, requests=100, errors=0, p99=200.0, region=None):
        d = {"version": version, "interval_ms": 2000, "requests": requests, "errors": errors,
             "latency_ms": {"p99": p99}}
        if region:
            d["region"] = region
        self.event("window", t, d)

    def traffic(self, t0, t1, version, **kw):
        """A window every 2 s at odd seconds in [t0, t1)."""
        t = t0 + 1 if t0 % 2 == 0 else t0
        while t < t1:
            self.window(t, version, **kw)
            t += 2

    def baseline(self, t1=60, version="v1"):
        """The stable version alone: 0-1 errors per 100 requests (0.2 %)."""
        t = 1
        while t < t1:
            self.window(t, version, errors=1 if t % 10 == 1 else 0)
            t += 2

    def deploy(self, t, phase, version, previous=None, **kw):
        d = {"phase": phase, "version": version}
        if previous:
            d["previous_version"] = previous
        d.update(kw)
        self.event("deploy", t, d)

    def command(self, t, action, **kw):
        self.event("command", t, {"action": action, **kw})

    def ack(self, t, status="succeeded"):
        """Acknowledges the latest initiated/step decision (id resolved by a
        run; `?first` in a hand-made actuation names the first one instead)."""
        self.event("actuation", t, {"decision_id": "?", "status": status})

    def tick(self, t):
        self.event("tick", t, None)

    def expect(self, t, phase, **data):
        self.expected.append({"time": out_time(t), "data": {"phase": phase, **data}})

    def config_text(self):
        return f"# {self.doc}\n{BASE}{self.config}"

    def resolve_acks(self, config_path):
        for i, e in enumerate(self.lines):
            if e["type"] != "faultline.actuation" or not e["data"]["decision_id"].startswith("?"):
                continue
            pick = 0 if e["data"]["decision_id"] == "?first" else -1
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
                for line in self.lines[:i + 1]:
                    f.write(json.dumps(line) + "\n")
            out = subprocess.run([BIN, "process", "--config", config_path, "--input", f.name],
                                 check=True, capture_output=True, text=True).stdout
            os.unlink(f.name)
            steps = [d for d in map(json.loads, out.splitlines())
                     if d["type"] == "faultline.rollback"
                     and d["data"]["phase"] in ("initiated", "step")]
            if not steps:
                raise SystemExit(f"{self.name}: nothing to acknowledge at line {i + 1}")
            e["data"]["decision_id"] = steps[pick]["id"]

    def write(self):
        d = os.path.join(self.folder, self.name)
        os.makedirs(d, exist_ok=True)
        config = os.path.join(d, "config.toml")
        with open(config, "w") as f:
            f.write(self.config_text())
        # Events in time order; ties keep the order they were written in.
        self.lines.sort(key=lambda e: e["time"])
        self.resolve_acks(config)
        with open(os.path.join(d, "input.jsonl"), "w") as f:
            for line in self.lines:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        with open(os.path.join(d, "expected.jsonl"), "w") as f:
            for line in self.expected:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")


S = []


def bad_rolling(s, errors=20, until=90, p99=200.0, strategy="rolling", **deploy):
    """v1 baseline, v2 rolled out at 60 and failing until `until`."""
    s.baseline()
    s.deploy(60, "started", "v2", "v1", strategy=strategy, **deploy)
    s.traffic(60, until, "v2", errors=errors, p99=p99)


def fails(s, times, first=1, **kw):
    for k, t in enumerate(times):
        s.expect(t, "analysis", verdict="fail", failures=first + k, **kw)


# ---- analysis and budgets ---------------------------------------------------

s = Scenario("01_error_regression_immediate", "A rolling deploy failing 20 % of requests (limit 5 %, a critical metric) fails three analyses in a row: rolled back at budget x interval = 30 s after the deploy, immediately (critical, one region), acknowledged, and validated when v1 serves under the limit.")
bad_rolling(s)
s.ack(91)
s.traffic(91, 104, "v1")
fails(s, [70, 80, 90], from_version="v2", to_version="v1")
s.expect(90, "initiated", strategy="immediate", from_version="v2", to_version="v1", step=1, steps=1,
         canary_weight=0, attempt=1, failures=3)
s.expect(101, "succeeded", strategy="immediate", to_version="v1", verdict="pass")
S.append(s)

s = Scenario("02_latency_regression", "A p99 of 1500 ms against a 1000 ms limit (latency is critical by default) fails like an error regression: three analyses, then an immediate rollback.")
bad_rolling(s, errors=0, p99=1500.0, until=96)
fails(s, [70, 80, 90], metrics=[{"name": "error_rate", "verdict": "pass"}, {"name": "latency_p99", "verdict": "high", "limit": 1000.0}])
s.expect(90, "initiated", strategy="immediate", step=1, steps=1)
S.append(s)

s = Scenario("03_healthy_canary_promoted", "A healthy canary walks 10 -> 25 -> 50 -> 100 % with every analysis passing, then becomes known-good once it has been complete for the 30 s bake time; analysis stops there.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="canary", canary_weight=10)
s.deploy(75, "progressed", "v2", "v1", canary_weight=25)
s.deploy(95, "progressed", "v2", "v1", canary_weight=50)
s.deploy(115, "completed", "v2", "v1")
s.traffic(60, 160, "v1", errors=0)
s.traffic(60, 160, "v2", errors=0)
for t, w in [(70, 10), (80, 25), (90, 25), (100, 50), (110, 50), (120, 100), (130, 100), (140, 100)]:
    s.expect(t, "analysis", verdict="pass", score=100.0, canary_weight=w, failures=0, known_good=None)
s.expect(150, "analysis", verdict="pass", canary_weight=100, known_good="v2")
S.append(s)


def pattern(s, marks, t0=60, good=0, bad=20, **kw):
    """One interval per mark (F bad, P good), then a tick to close the last."""
    for k, m in enumerate(marks):
        s.traffic(t0 + 10 * k, t0 + 10 * k + 10, "v2", errors=bad if m == "F" else good, **kw)
    s.tick(t0 + 10 * len(marks))


s = Scenario("04_consecutive_budget_resets_on_pass", "With the consecutive budget (3) the pattern fail, pass, fail, pass, fail never rolls back: each pass resets the run.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling")
pattern(s, "FPFPF")
for t, v, f in [(70, "fail", 1), (80, "pass", 0), (90, "fail", 1), (100, "pass", 0), (110, "fail", 1)]:
    s.expect(t, "analysis", verdict=v, failures=f)
S.append(s)

s = Scenario("05_cumulative_budget_counts_every_failure", "With the cumulative budget (Flagger's threshold) the same fail, pass, fail, pass, fail pattern rolls back at the third failure.",
             'budget = "cumulative"\n')
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling")
pattern(s, "FPFPF")
for t, v, f in [(70, "fail", 1), (80, "pass", 1), (90, "fail", 2), (100, "pass", 2), (110, "fail", 3)]:
    s.expect(t, "analysis", verdict=v, failures=f)
s.expect(110, "initiated", strategy="immediate", failures=3)
S.append(s)

s = Scenario("06_no_traffic_is_inconclusive_then_escalates", "A deploy with no traffic at all is inconclusive (said once, not every interval), never a pass or a failure; after no_data_escalation_s (60 s) of silence it escalates.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling")
s.tick(140)
s.expect(70, "inconclusive", verdict="inconclusive", requests=0, escalate=False, score=None)
s.expect(120, "inconclusive", verdict="inconclusive", requests=0, escalate=True)
S.append(s)

s = Scenario("07_small_sample_is_inconclusive", "Ten requests per interval at 30 % errors is fewer than min_requests (50): inconclusive and held, however bad the rate looks.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling")
s.traffic(60, 100, "v2", requests=2, errors=1)
s.expect(70, "inconclusive", verdict="inconclusive", requests=10, failures=0)
S.append(s)

s = Scenario("08_large_sample_same_rate_fails", "The same 30 % error rate over 400-500 requests per interval is conclusive: three failures and a rollback.")
bad_rolling(s, errors=30, until=96)
fails(s, [70, 80, 90], metrics=[{"name": "error_rate", "observed": 30.0, "verdict": "high"}, {"name": "latency_p99", "verdict": "pass"}])
s.expect(90, "initiated", strategy="immediate")
S.append(s)

s = Scenario("09_single_spike_does_not_roll_back", "One bad interval uses one unit of the budget; the passes after it reset the run and nothing is rolled back.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling")
pattern(s, "FPPP")
for t, v, f in [(70, "fail", 1), (80, "pass", 0), (90, "pass", 0), (100, "pass", 0)]:
    s.expect(t, "analysis", verdict=v, failures=f)
S.append(s)

s = Scenario("10_flapping_metric_causes_one_action", "A metric flapping between fail and pass for minutes leads to exactly one rollback (cumulative budget); redeploying the same flapping revision is blocked, never rolled back twice.",
             'budget = "cumulative"\n')
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling")
pattern(s, "FPFPF")
s.ack(111)
s.traffic(111, 124, "v1")
s.deploy(130, "started", "v2", "v1", strategy="rolling")
pattern(s, "FPFPF", t0=130)
for t, v, f in [(70, "fail", 1), (80, "pass", 1), (90, "fail", 2), (100, "pass", 2), (110, "fail", 3)]:
    s.expect(t, "analysis", verdict=v, failures=f)
s.expect(110, "initiated", strategy="immediate")
s.expect(121, "succeeded")
for t, v, f in [(140, "fail", 1), (150, "pass", 1), (160, "fail", 2), (170, "pass", 2), (180, "fail", 3)]:
    s.expect(t, "analysis", verdict=v, failures=f)
s.expect(180, "blocked", from_version="v2", escalate=True)
S.append(s)

s = Scenario("11_stability_period_holds_the_next_rollback", "After a rollback ends, the stability period (60 s) holds further automatic rollbacks: v3 failing right after is held (said in each analysis) and rolled back at the first failing analysis after the period.",
             "stability_period_s = 60\n")
bad_rolling(s)
s.ack(91)
s.traffic(91, 110, "v1")
s.deploy(110, "started", "v3", "v1", strategy="rolling")
s.traffic(110, 176, "v3", errors=20)
fails(s, [70, 80, 90], from_version="v2")
s.expect(90, "initiated", from_version="v2")
s.expect(101, "succeeded", from_version="v2")
fails(s, [120, 130], from_version="v3")
for t, f in [(140, 3), (150, 4), (160, 5)]:
    s.expect(t, "analysis", verdict="fail", failures=f, from_version="v3")
s.expect(170, "analysis", verdict="fail", failures=6)
s.expect(170, "initiated", from_version="v3", to_version="v1")
S.append(s)

s = Scenario("12_storm_guard_blocks_the_fourth_rollback", "Three automatic rollbacks of one service within an hour are allowed; the fourth bad deploy in that hour is blocked and escalated.",
             "stability_period_s = 0\n")
s.baseline()
t = 60
for k, v in enumerate(["v2", "v3", "v4", "v5"]):
    s.deploy(t, "started", v, "v1", strategy="rolling")
    s.traffic(t, t + 30, v, errors=20)
    fails(s, [t + 10, t + 20, t + 30], from_version=v)
    if k < 3:
        s.ack(t + 31)
        s.traffic(t + 31, t + 44, "v1")
        s.expect(t + 30, "initiated", from_version=v, to_version="v1")
        s.expect(t + 41, "succeeded", from_version=v)
    else:
        s.expect(t + 30, "blocked", from_version=v, escalate=True)
    t += 50
s.tick(t)
S.append(s)

s = Scenario("13_irreversible_migration_is_blocked_and_frozen", "A failing deploy that ran an irreversible migration is never rolled back automatically: blocked, deploys frozen, escalated; the next deploy is blocked too (still analysed, still frozen).")
bad_rolling(s, irreversible_migration=True)
s.deploy(100, "started", "v3", "v2", strategy="rolling")
s.traffic(100, 112, "v3")
fails(s, [70, 80, 90], freeze=False)
s.expect(90, "blocked", from_version="v2", escalate=True, freeze=True)
s.expect(100, "blocked", from_version="v3", escalate=True, freeze=True)
s.expect(110, "analysis", from_version="v3", verdict="pass", freeze=True)
S.append(s)

s = Scenario("14_rollback_that_does_not_help_is_ineffective", "After the rollback the error rate stays at 20 % (the fault is elsewhere): after validate_intervals (3) the rollback is marked ineffective and escalated, and nothing is rolled back again.")
bad_rolling(s)
s.ack(91)
s.traffic(91, 160, "v1", errors=20)
fails(s, [70, 80, 90])
s.expect(90, "initiated", strategy="immediate")
s.expect(121, "ineffective", strategy="immediate", escalate=True, verdict="fail")
S.append(s)

# ---- strategies -------------------------------------------------------------

s = Scenario("15_strategy_gradual", "Only a non-critical metric fails (latency, weight 3: score 25 < 50): the auto strategy is gradual, stepping 50 % then 0 % back with an interval between acknowledged steps, then validated.",
             "[rollback.metrics.latency_p99]\ncritical = false\nweight = 3.0\n")
bad_rolling(s, errors=0, p99=2000.0)
s.ack(91)
s.traffic(91, 101, "v1")
s.traffic(91, 101, "v2", p99=2000.0)
s.tick(101)
s.ack(102)
s.traffic(102, 114, "v1")
fails(s, [70, 80, 90], score=25.0)
s.expect(90, "initiated", strategy="gradual", step=1, steps=2, canary_weight=50)
s.expect(101, "step", strategy="gradual", step=2, steps=2, canary_weight=0, attempt=1)
s.expect(112, "succeeded", strategy="gradual")
S.append(s)

s = Scenario("16_strategy_canary_reverse", "A failing canary at 30 % is walked down 20, 10, 0 (canary_step 10), one acknowledged step per interval, then validated on the stable version.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="canary", canary_weight=30)
s.traffic(60, 126, "v1")
s.traffic(60, 113, "v2", errors=20)
s.ack(91)
s.tick(101)
s.ack(102)
s.tick(112)
s.ack(113)
fails(s, [70, 80, 90], canary_weight=30)
s.expect(90, "initiated", strategy="canary_reverse", step=1, steps=3, canary_weight=20)
s.expect(101, "step", strategy="canary_reverse", step=2, steps=3, canary_weight=10)
s.expect(112, "step", strategy="canary_reverse", step=3, steps=3, canary_weight=0)
s.expect(123, "succeeded", strategy="canary_reverse")
S.append(s)

s = Scenario("17_strategy_blue_green", "A failing blue/green deploy is switched back to the previous stack in one step.")
bad_rolling(s, strategy="blue_green")
s.ack(91)
s.traffic(91, 104, "v1")
fails(s, [70, 80, 90])
s.expect(90, "initiated", strategy="blue_green", step=1, steps=1, canary_weight=0)
s.expect(101, "succeeded", strategy="blue_green")
S.append(s)

s = Scenario("18_strategy_database_pitr_needs_approval", "A service whose preference is database_pitr asks for approval (escalating) and does nothing until an operator approves; then it restores to the deploy's start.",
             '[rollback.service.api]\nstrategy = "database_pitr"\n')
bad_rolling(s, until=116)
s.command(115, "approve_rollback", by="alice")
s.ack(116)
s.traffic(116, 128, "v1")
fails(s, [70, 80, 90])
s.expect(90, "approval_required", strategy="database_pitr", step=0, attempt=0, escalate=True,
         restore_to=out_time(60))
s.expect(115, "initiated", strategy="database_pitr", step=1, steps=1, restore_to=out_time(60), attempt=1)
s.expect(126, "succeeded", strategy="database_pitr")
S.append(s)

s = Scenario("19_strategy_staged_by_region", "A deploy across eu and us is rolled back region by region: eu first, validated on eu's own traffic, then us, then done.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling", regions=["eu", "us"])
s.traffic(60, 91, "v2", errors=20, region="eu")
s.traffic(60, 102, "v2", errors=20, region="us")
s.ack(91)
s.traffic(91, 115, "v1", region="eu")
s.ack(102)
s.traffic(102, 115, "v1", region="us")
fails(s, [70, 80, 90])
s.expect(90, "initiated", strategy="staged", step=1, steps=2, regions=["eu"], canary_weight=None)
s.expect(101, "step", strategy="staged", step=2, steps=2, regions=["us"])
s.expect(112, "succeeded", strategy="staged", step=2)
S.append(s)

s = Scenario("20_strategy_emergency_freezes", "An 80 % error rate (>= emergency_error_rate 50 %) is an emergency: everything back at once, deploys frozen and people paged; a deploy during the freeze is blocked, and after an operator's unfreeze the next deploy is analysed normally.")
bad_rolling(s, errors=80)
s.ack(91)
s.traffic(91, 104, "v1")
s.deploy(105, "started", "v3", "v1", strategy="rolling")
s.command(106, "unfreeze", by="alice")
s.deploy(107, "started", "v4", "v1", strategy="rolling")
s.traffic(107, 119, "v4")
fails(s, [70, 80, 90], freeze=False)
s.expect(90, "initiated", strategy="emergency", escalate=True, freeze=True, canary_weight=0)
s.expect(101, "succeeded", strategy="emergency", freeze=True)
s.expect(105, "blocked", from_version="v3", freeze=True, escalate=True)
s.expect(117, "analysis", from_version="v4", verdict="pass", freeze=False)
S.append(s)

# ---- the lock, acknowledgements and operators -------------------------------

s = Scenario("21_unacknowledged_step_retries_with_backoff", "Without an acknowledgement the step is asked for again after 30 s, then after 60 s more (the wait doubles); after max_attempts (3) the rollback fails and escalates.")
bad_rolling(s)
s.tick(300)
fails(s, [70, 80, 90])
s.expect(90, "initiated", attempt=1)
s.expect(120, "initiated", attempt=2)
s.expect(180, "initiated", attempt=3)
s.expect(300, "failed", escalate=True, attempt=3)
S.append(s)

s = Scenario("22_failed_actuation_is_retried", "An actuator reporting failure gets the same step again after the backoff (30 s); the second attempt is acknowledged and validated.")
bad_rolling(s)
s.ack(91, status="failed")
s.tick(121)
s.ack(122)
s.traffic(122, 134, "v1")
fails(s, [70, 80, 90])
s.expect(90, "initiated", attempt=1)
s.expect(121, "initiated", attempt=2)
s.expect(132, "succeeded")
S.append(s)

s = Scenario("23_abort_stops_a_rollback_in_progress", "An operator's abort_rollback in the middle of a canary reverse stops it where it is: no further steps, no validation.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="canary", canary_weight=30)
s.traffic(60, 140, "v1")
s.traffic(60, 140, "v2", errors=20)
s.ack(91)
s.tick(101)
s.command(103, "abort_rollback", by="alice", reason="investigating")
s.tick(140)
fails(s, [70, 80, 90])
s.expect(90, "initiated", strategy="canary_reverse", canary_weight=20)
s.expect(101, "step", step=2, canary_weight=10)
s.expect(103, "aborted", strategy="canary_reverse", step=2)
S.append(s)

s = Scenario("24_abort_during_analysis_disables_rollback", "abort_rollback while a deploy is only being analysed turns automatic rollback off for it: its analysis stops and nothing is rolled back.")
bad_rolling(s, until=130)
s.command(85, "abort_rollback", by="alice")
s.tick(130)
fails(s, [70, 80])
s.expect(85, "aborted", from_version="v2", to_version="v1", failures=2)
S.append(s)

s = Scenario("25_dry_run_metric_never_acts", "A dry-run metric is judged and reported (latency high) but never counts: every analysis passes and nothing is rolled back.",
             "[rollback.metrics.latency_p99]\ndry_run = true\n")
bad_rolling(s, errors=0, p99=2000.0, until=96)
for t in [70, 80, 90]:
    s.expect(t, "analysis", verdict="pass", score=100.0,
             metrics=[{"name": "error_rate", "verdict": "pass"},
                      {"name": "latency_p99", "verdict": "high", "dry_run": True}])
S.append(s)

s = Scenario("26_marginal_is_the_hysteresis_band", "A marginal analysis (a non-critical metric failing: score 50) neither counts against the consecutive budget nor resets it: fail, marginal, fail, marginal, fail rolls back.",
             "[rollback.metrics.latency_p99]\ncritical = false\n")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="rolling")
for k, m in enumerate("FMFMF"):
    s.traffic(60 + 10 * k, 70 + 10 * k, "v2", errors=20 if m == "F" else 0,
              p99=2000.0 if m == "M" else 200.0)
s.tick(110)
for t, v, f in [(70, "fail", 1), (80, "marginal", 1), (90, "fail", 2), (100, "marginal", 2), (110, "fail", 3)]:
    s.expect(t, "analysis", verdict=v, failures=f)
s.expect(110, "initiated", strategy="immediate")
S.append(s)

s = Scenario("27_judge_catches_a_rise_below_the_limit", "3 % errors is under the 5 % limit, but against v1's 0.2 % it is significantly (Mann-Whitney p < 0.05) and materially (>= 1 point and >= 1.5x) worse: high, and rolled back.")
bad_rolling(s, errors=3, until=96)
fails(s, [70, 80, 90], metrics=[{"name": "error_rate", "observed": 3.0, "baseline": 0.2, "p_value": 0.0, "verdict": "high"}, {"name": "latency_p99", "verdict": "pass"}])
s.expect(90, "initiated", strategy="immediate")
S.append(s)

s = Scenario("28_effect_size_guard", "1.2 % errors against 1.0 % over 10,000-request windows is statistically significant but below the effect-size guard (1 point): the analysis passes.")
s.traffic(0, 60, "v1", requests=10000, errors=100)
s.deploy(60, "started", "v2", "v1", strategy="rolling")
s.traffic(60, 96, "v2", requests=10000, errors=120)
for t in [70, 80, 90]:
    s.expect(t, "analysis", verdict="pass", metrics=[{"name": "error_rate", "observed": 1.2, "baseline": 1.0, "p_value": 0.0, "verdict": "pass"}, {"name": "latency_p99", "verdict": "pass"}])
S.append(s)

s = Scenario("29_known_good_is_the_rollback_point", "v1 bakes and becomes known-good; v2 completes but is replaced by v3 before its bake ends; v3 fails and is rolled back to v1 (known-good), not to v2 (merely previous).")
s.deploy(0, "started", "v1", strategy="rolling")
s.deploy(1, "completed", "v1")
s.traffic(0, 76, "v1")
s.deploy(50, "started", "v2", "v1", strategy="rolling")
s.deploy(51, "completed", "v2", "v1")
s.traffic(50, 76, "v2")
s.deploy(76, "started", "v3", "v2", strategy="rolling")
s.traffic(76, 110, "v3", errors=20)
for t in [10, 20, 30]:
    s.expect(t, "analysis", from_version="v1", verdict="pass", known_good=None)
s.expect(40, "analysis", from_version="v1", verdict="pass", known_good="v1")
for t in [60, 70]:
    s.expect(t, "analysis", from_version="v2", verdict="pass", known_good="v1")
for k, t in enumerate([86, 96, 106]):
    s.expect(t, "analysis", from_version="v3", to_version="v1", verdict="fail", failures=k + 1)
s.expect(106, "initiated", from_version="v3", to_version="v1")
S.append(s)

s = Scenario("30_no_rollback_point_is_blocked", "A service's first deploy has nothing to go back to: when it fails the rollback is blocked and escalated, not invented.")
s.deploy(0, "started", "v1", strategy="rolling")
s.traffic(0, 36, "v1", errors=20)
fails(s, [10, 20, 30], from_version="v1", to_version=None)
s.expect(30, "blocked", from_version="v1", to_version=None, escalate=True, freeze=False)
S.append(s)

s = Scenario("31_deploy_progress_during_rollback_is_not_a_new_deploy", "Deploy tooling reporting the canary weight it sets while carrying out a canary reverse (progressed, v2 at 20 %) is our own step coming back: the rollback goes on, nothing is aborted or re-analysed.")
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="canary", canary_weight=30)
s.traffic(60, 126, "v1")
s.traffic(60, 113, "v2", errors=20)
s.ack(91)
s.deploy(92, "progressed", "v2", "v1", canary_weight=20)
s.tick(101)
s.ack(102)
s.deploy(103, "progressed", "v2", "v1", canary_weight=10)
s.tick(112)
s.ack(113)
fails(s, [70, 80, 90])
s.expect(90, "initiated", strategy="canary_reverse", canary_weight=20)
s.expect(101, "step", canary_weight=10)
s.expect(112, "step", canary_weight=0)
s.expect(123, "succeeded")
S.append(s)

s = Scenario("32_recovery_is_judged_against_the_baseline", "A rollback called for by the judge (3 % against v1's 0.2 %, under the 5 % limit) is validated the same way: still 3 % after it means the fault is elsewhere (ineffective), not a success because 3 % < 5 %.")
bad_rolling(s, errors=3)
s.ack(91)
s.traffic(91, 130, "v1", errors=3)
fails(s, [70, 80, 90])
s.expect(90, "initiated", strategy="immediate")
s.expect(121, "ineffective", escalate=True, verdict="fail",
         metrics=[{"name": "error_rate", "observed": 3.0, "baseline": 0.2, "verdict": "high"}, {"name": "latency_p99", "verdict": "pass"}])
S.append(s)

s = Scenario("33_late_acknowledgement_of_an_earlier_attempt_counts", "The actuator acknowledges the first attempt after the retry went out: that is the step done, the rollback moves on to validation.")
bad_rolling(s)
s.tick(120)
s.event("actuation", 121, {"decision_id": "?first", "status": "succeeded"})
s.traffic(121, 134, "v1")
fails(s, [70, 80, 90])
s.expect(90, "initiated", attempt=1)
s.expect(120, "initiated", attempt=2)
s.expect(131, "succeeded")
S.append(s)

s = Scenario("34_no_traffic_after_a_rollback_is_not_success", "After the last step no traffic arrives for validate_intervals (3): the rollback is reported inconclusive and escalated, never assumed to have worked.")
bad_rolling(s)
s.ack(91)
s.tick(130)
fails(s, [70, 80, 90])
s.expect(90, "initiated")
s.expect(121, "inconclusive", verdict="inconclusive", escalate=True, requests=0)
S.append(s)

# ---- the router follows the rollback agent's canary weights ----------------

s = Scenario("15_canary_weights_follow_rollback", "The router splits versions by the rollback agent's canary weight: 30 % on the canary while it is analysed, then 20, 10 as canary_reverse walks it down, and back to one version at 0 (the rollback decisions are in the output too).",
             folder=os.path.join(HERE, "../router"))
s.event("topology", 0, {"instances": [{"id": f"i{k}", "region": "eu"} for k in range(4)]})
s.baseline()
s.deploy(60, "started", "v2", "v1", strategy="canary", canary_weight=30)
s.traffic(60, 126, "v1")
s.traffic(60, 113, "v2", errors=20)
s.ack(91)
s.tick(101)
s.ack(102)
s.tick(112)
s.ack(113)


def route(t, canary=None):
    weights = [] if canary is None else [
        {"level": "version", "target": "v2", "weight": canary},
        {"level": "version", "target": "v1", "weight": 100 - canary}]
    s.expected.append({"time": out_time(t), "type": "faultline.route", "data": {
        "strategy": "weighted" if canary is None else "canary_split", "weights": weights}})


s.expect(70, "analysis", canary_weight=30)
route(70, 30)
s.expect(80, "analysis", canary_weight=30)
s.expect(90, "analysis", canary_weight=30)
s.expect(90, "initiated", canary_weight=20)
route(90, 20)
s.expect(101, "step", canary_weight=10)
route(101, 10)
s.expect(112, "step", canary_weight=0)
route(112)
s.expect(123, "succeeded", canary_weight=0)
S.append(s)

for s in S:
    s.write()
print(f"wrote {len(S)} scenarios")
