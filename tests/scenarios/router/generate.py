#!/usr/bin/env python3
"""Writes input.jsonl and config.toml for the router scenarios.

expected.jsonl is written by hand from the rules (see each config's first
comment line), never captured from the output. Run from anywhere:
`python3 tests/scenarios/router/generate.py`.

15_canary_weights_follow_rollback is written by ../rollback/generate.py: it
acknowledges rollback steps, whose ids that script resolves.
"""
import json
import os
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
AGENTS = 'agents = ["predictor", "breaker", "router", "rollback"]\n'
QUIET = """[breaker]
scopes = ["system"]
"""


def at(s):
    return (T0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Scenario:
    def __init__(self, name, doc, config=""):
        self.name, self.doc, self.config = name, doc, config
        self.lines, self.n = [], 0

    def event(self, kind, t, data, subject="api"):
        self.n += 1
        self.lines.append({"specversion": "1.0", "id": f"e{self.n}", "source": "test",
                           "type": f"faultline.{kind}", "subject": subject, "time": at(t), "data": data})

    def topology(self, t, hosts):
        self.event("topology", t, {"instances": [{"id": i, "region": r} for i, r in hosts]})

    def req(self, t, inst, status, region=None):
        d = {"instance": inst, "status": status}
        if region:
            d["region"] = region
        self.event("request", t, d)

    def window(self, t, inst, requests, errors):
        self.event("window", t, {"instance": inst, "interval_ms": 10000, "requests": requests, "errors": errors})

    def health(self, t, inst, status):
        self.event("health", t, {"instance": inst, "status": status})

    def tick(self, t):
        self.event("tick", t, None)

    def write(self):
        d = os.path.join(HERE, self.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.toml"), "w") as f:
            quiet = "" if "[breaker]" in self.config else QUIET
            f.write(f"# {self.doc}\n{AGENTS}{quiet}{self.config}")
        with open(os.path.join(d, "input.jsonl"), "w") as f:
            for line in self.lines:
                if line["data"] is None:
                    del line["data"]
                f.write(json.dumps(line, separators=(",", ":")) + "\n")


def hosts(n, prefix="i", region="eu"):
    return [(f"{prefix}{k}", region) for k in range(n)]


S = []

s = Scenario("01_consecutive_5xx_ejects", "Five 5xx in a row eject the instance for the base ejection time (30 s); other hosts' successes in between do not reset its run.")
s.topology(0, hosts(10))
for k in range(5):
    s.req(1 + k, "i3", 503)
    s.req(1 + k, "i4", 200)
S.append(s)

s = Scenario("02_ejection_expires_on_time", "An ejection ends at its until (a tick at exactly T+30 s brings the host back), and the table returns to all hosts.")
s.topology(0, hosts(10))
for k in range(5):
    s.req(1 + k, "i3", 500)
s.tick(34.999)
s.tick(35)
S.append(s)

s = Scenario("03_ejection_time_grows_and_caps", "The n-th ejection lasts base x n, capped at max_ejection_time_s: 10 s, 20 s, then 25 s (cap) when the host fails again as soon as it is back (no analysis interval passes to decay the count).",
             "[router]\nbase_ejection_time_s = 10\nmax_ejection_time_s = 25\ninterval_s = 1000\n")
s.topology(0, hosts(10))
for k in range(5):
    s.req(1 + k, "i3", 500)        # ejected at 5 until 15
for k in range(5):
    s.req(15 + k, "i3", 500)       # back at 15, ejected at 19 until 39
for k in range(5):
    s.req(39 + k, "i3", 500)       # back at 39, ejected at 43 until 68 (cap 25 s)
S.append(s)

s = Scenario("04_max_ejection_percent", "At most 10 % of hosts (here one of ten) are ejected as outliers at once: the second failing host stays in.")
s.topology(0, hosts(10))
for k in range(5):
    s.req(1 + k, "i1", 500)
    s.req(1 + k, "i2", 500)
S.append(s)

s = Scenario("05_success_rate_outlier", "At the end of the 10 s analysis interval a host whose success rate (70 %) is below mean - 1.9 sd of the five hosts (93.2 - 1.9 x 11.6 = 71.16 %) with >= 100 requests is ejected.")
s.topology(0, hosts(5))
for k in range(4):
    s.window(5, f"i{k}", 200, 2)
s.window(5, "i4", 200, 60)
s.tick(15)
S.append(s)

s = Scenario("06_failure_percentage", "With success-rate detection out of reach (minimum hosts 100), a host failing 90 % of >= 50 requests is ejected by the failure-percentage rule (threshold 85 %) at the end of the interval.",
             "[router]\nsuccess_rate_minimum_hosts = 100\n")
s.topology(0, hosts(5))
for k in range(4):
    s.window(5, f"i{k}", 60, 0)
s.window(5, "i4", 60, 54)
s.tick(15)
S.append(s)

s = Scenario("07_ejection_count_decays_while_healthy", "A host that spends an analysis interval back in service has its ejection count decremented: ejected again later, it is out for the base time, not twice it.",
             "[router]\ninterval_s = 10\n")
s.topology(0, hosts(10))
for k in range(5):
    s.req(1 + k, "i3", 500)        # ejected at 5 until 35 (count 1)
for k in range(10):
    s.req(36 + k * 5, "i3", 200)   # healthy intervals
for k in range(5):
    s.req(100 + k, "i3", 500)      # ejected at 104 until 134 (count back to 1)
S.append(s)

s = Scenario("08_failover_at_half_healthy", "Local region eu at 50 % healthy x 1.4 overprovisioning keeps 70 % of traffic, 30 % fails over to us (Envoy priority levels); at 75 % it keeps all.",
             "[router]\nregions = [\"eu\", \"us\"]\n")
s.topology(0, hosts(4, "eu", "eu") + hosts(4, "us", "us"))
s.health(1, "eu0", "unhealthy")
s.health(2, "eu1", "unhealthy")
S.append(s)

s = Scenario("09_no_failover_at_72_percent", "72 % of eu healthy x 1.4 = 100.8 % >= 100 %: eu keeps all traffic while 7 of its 25 hosts go down.",
             "[router]\nregions = [\"eu\", \"us\"]\n")
s.topology(0, hosts(25, "eu", "eu") + hosts(5, "us", "us"))
for k in range(7):
    s.health(1 + k, f"eu{k}", "offline")
S.append(s)

s = Scenario("10_panic_mode", "Below 50 % healthy (1 of 4) the router announces panic: traffic spreads over every host, healthy or not, rather than crushing the last one.")
s.topology(0, hosts(4))
for k in range(3):
    s.health(1 + k, f"i{k}", "unhealthy")
S.append(s)

s = Scenario("11_instance_breaker_removes_instance", "An open instance breaker takes the instance out of selection until the breaker leaves open (outlier ejection switched off to show the breaker path).",
             "[router]\nconsecutive_5xx = 0\nfailure_percentage_threshold = 0\n[breaker]\nscopes = [\"instance\"]\n[breaker.default]\nsliding_window_size = 4\nminimum_number_of_calls = 4\nwait_duration_in_open_state_ms = 5000\npermitted_number_of_calls_in_half_open_state = 1\n")
s.topology(0, hosts(3))
for k in range(4):
    s.req(1 + k, "i1", 500)
s.req(10, "i1", 200)
S.append(s)

s = Scenario("12_health_down_and_back", "A host reported unhealthy leaves selection at once and returns when reported healthy again.")
s.topology(0, hosts(3))
s.health(1, "i2", "unhealthy")
s.health(2, "i2", "degraded")
S.append(s)

s = Scenario("13_healthy_traffic_emits_nothing", "Successful traffic over many analysis intervals changes nothing material: no decision at all.")
s.topology(0, hosts(3))
for k in range(60):
    s.req(k, f"i{k % 3}", 200)
s.req(61, "i1", 500)
S.append(s)

s = Scenario("14_window_all_failed_is_a_run", "A window in which every request failed extends the run of failures (5 of 5 eject); a window with any success resets it, since the order inside is unknown.")
s.topology(0, hosts(10))
s.window(1, "i1", 4, 4)
s.window(2, "i1", 6, 5)
s.window(3, "i1", 4, 4)
s.window(4, "i1", 1, 1)
S.append(s)

for s in S:
    s.write()
