#!/usr/bin/env python3
"""Writes the input.jsonl of the predictor scenarios (seeded, reproducible).

Run from this directory: python3 generate.py. Each scenario is one service
publishing faultline.window events, with noise like a real service's
(Poisson-ish traffic with 3 % overdispersion, binomial errors, 4 % jitter on
latency quantiles).
"""
import json, math, random

T0 = 1767225600  # 2026-01-01T00:00:00Z


def ts(s):
    import datetime
    return datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def topology(service, slo):
    return {"specversion": "1.0", "id": f"topo-{service}", "source": "gen", "type": "faultline.topology",
            "subject": service, "time": ts(T0), "data": {"tier": "critical", "slo": slo}}


def window(rng, service, i, t, interval, rps, error_rate, p50, p99):
    n = max(1, int(rng.gauss(rps * interval, math.sqrt(rps * interval) + 0.03 * rps * interval)))
    p = error_rate / 100.0
    errors = min(n, max(0, int(round(rng.gauss(n * p, math.sqrt(n * p * (1 - p)) + 1e-9)))))
    j = lambda v: round(v * (1 + rng.gauss(0, 0.04)), 2)
    return {"specversion": "1.0", "id": f"w-{i}", "source": "gen", "type": "faultline.window", "subject": service,
            "time": ts(t), "data": {"interval_ms": interval * 1000, "requests": n, "errors": errors,
                                     "latency_ms": {"p50": j(p50), "p99": j(p99)}}}


def write(name, events):
    with open(f"{name}/input.jsonl", "w") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")


def latency_leak():
    # 10 s windows; one hour healthy, then p99 climbs 3 ms per window (18 ms a
    # minute) from 120 ms towards its 500 ms SLO, crossing it after ~21 min.
    rng = random.Random(1)
    ev = [topology("checkout", {"availability": 0.999, "latency_p99_ms": 500.0})]
    for i in range(1, 360 + 160):
        leak = max(0, i - 360) * 3.0
        ev.append(window(rng, "checkout", i, T0 + 10 * i, 10, 120.0, 0.1, 40.0 + leak / 6, 120.0 + leak))
    write("01_latency_leak", ev)


def error_ramp():
    # 10 s windows; one hour at 0.1 % errors, then the error rate climbs
    # 0.01 percentage points per window towards the 1.44 % limit (99.9 %
    # availability at burn rate 14.4), crossing it after ~22 min.
    rng = random.Random(2)
    ev = [topology("payments", {"availability": 0.999})]
    for i in range(1, 360 + 180):
        rate = 0.1 + max(0, i - 360) * 0.01
        ev.append(window(rng, "payments", i, T0 + 10 * i, 10, 200.0, rate, 35.0, 140.0))
    write("02_error_rate_rising", ev)


def seasonal_week():
    # 5 minute windows for 7 days; traffic swings 3x between night and day,
    # latency rises a little with load; nothing is wrong.
    rng = random.Random(3)
    ev = [topology("catalog", {"availability": 0.999, "latency_p99_ms": 800.0})]
    for i in range(1, 7 * 288 + 1):
        t = T0 + 300 * i
        day = (t % 86400) / 86400.0
        load = 1.0 + 0.5 * math.sin(2 * math.pi * (day - 0.25)) + 0.1 * math.sin(4 * math.pi * day)
        ev.append(window(rng, "catalog", i, t, 300, 100.0 * load, 0.1, 30.0 + 5 * load, 150.0 + 40 * load))
    write("03_seasonal_week_clean", ev)


if __name__ == "__main__":
    import os
    for d in ["01_latency_leak", "02_error_rate_rising", "03_seasonal_week_clean"]:
        os.makedirs(d, exist_ok=True)
    latency_leak()
    error_ramp()
    seasonal_week()
