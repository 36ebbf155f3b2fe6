"""benchmarks/soak.py at toy scale: it runs every load at once, stops everything, gives a verdict;
and the verdict's rules (memory flat, hostile peers contained) on made-up samples.

The numbers themselves (memory flat over 15 minutes at 15,000 connections)
come from the full run; this only checks the script end to end: a real
``wsframe serve``, 200 held connections, traffic, churn and hostile peers
for a few seconds, a JSON report with every check, the exit code matching
the verdict, and no process left behind.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.soak_verdict import MIB, hostile_check, memory_check

ROOT = Path(__file__).resolve().parents[2]
CHECKS = {"server alive", "memory flat", "no held connection dropped", "publishers survived",
          "room traffic flowed", "churn failures 0", "hostile peers contained"}


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except OSError:
        return False


def test_soak_smoke(tmp_path):
    pytest.importorskip("wsframe._compiled.loadgen", reason="the load engine is not built")
    report_path = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--connections", "200",
         "--duration", "5", "--sample-interval", "0.5", "--churn-rate", "40",
         "--publishers", "20", "--publish-rate", "50", "--hostile", "1",
         "--heartbeat", "2", "--heartbeat-timeout", "5", "--json", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert "verdict: " in run.stdout, run.stdout + run.stderr
    report = json.loads(report_path.read_text())
    assert report["verdict"] in ("PASS", "FAIL")
    assert run.returncode == (0 if report["verdict"] == "PASS" else 1), run.stdout
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == CHECKS
    # what does not depend on how busy the machine is must hold at any scale
    for name in ("server alive", "no held connection dropped", "publishers survived",
                 "room traffic flowed"):
        assert checks[name]["ok"], checks[name]["detail"]
    held = report["results"]["held"]
    assert held["survivors"] == 200 and held["pings_answered"] > 0   # heartbeat every 2 s
    assert report["results"]["churn"]["attempted"] > 0
    assert {p["kind"] for p in report["results"]["hostile"]["peers"]} == {
        "never_reader", "ping_flooder", "slowloris"}
    hold = [s for s in report["samples"] if s["phase"] == "hold"]
    assert len(hold) >= 6 and all(s["rss"] > 0 for s in hold)
    assert checks["memory flat"]["first_third_rss"] > 0
    # the server and every process the script started are gone
    started = [report["server"]["pid"], *report["processes"]["load_workers"],
               *report["processes"]["peers"]]
    assert len(started) == 1 + 2 + 2
    assert not [pid for pid in started if _running(pid)]


# ---- the verdict's rules, on made-up samples -------------------------------------------------
LIMITS = SimpleNamespace(flat_pct=5.0, flat_mib=8.0)
HOLD = {"hold_start": 10.0, "hold_end": 100.0}


def samples(rss_at):
    """One sample a second over 0-100 s (the hold is 10-100 s), RSS from rss_at(t) in MiB."""
    return [{"t": float(t), "rss": int(rss_at(t) * MIB)} for t in range(0, 101)]


@pytest.mark.parametrize("rss_at, flat", [
    (lambda t: 100, True),
    (lambda t: 100 if t < 50 else 107.9, True),        # under max(5 MiB, 8 MiB)
    (lambda t: 100 if t < 50 else 108.5, False),
    (lambda t: 300 if t < 50 else 314, True),          # 5% of 300 MiB = 15 MiB
    (lambda t: 300 if t < 50 else 316, False),
    (lambda t: 100 + t * 0.2, False),                  # a steady leak: +12 MiB between thirds
    (lambda t: 500 if t < 10 else 100, True),          # the ramp before the hold does not count
    (lambda t: 100 if t != 95 else 900, True),         # one spike: medians
])
def test_memory_flat_rule(rss_at, flat):
    result = memory_check(samples(rss_at), HOLD, LIMITS)
    assert result["ok"] is flat, result["detail"]


def test_memory_needs_a_hold_and_samples():
    assert not memory_check(samples(lambda t: 100), {}, LIMITS)["ok"]
    few = [s for s in samples(lambda t: 100) if s["t"] in (20.0, 90.0)]
    assert not memory_check(few, HOLD, LIMITS)["ok"]


def peer(kind, cut_off=0, open_at_end=True, idle=0.0):
    return {"kind": kind, "opens": 1 + cut_off, "cut_off": cut_off, "bytes_sent": 0,
            "max_bytes_one_connection": 0, "longest_connection_s": 1.0,
            "open_at_end": open_at_end, "took_nothing_for_s": idle}


@pytest.mark.parametrize("peers, span, contained", [
    ([peer("never_reader", cut_off=3), peer("ping_flooder", idle=30), peer("slowloris", 2)],
     90, True),
    ([peer("never_reader", idle=2)], 90, False),      # still taking bytes: growing somewhere
    ([peer("ping_flooder", idle=12)], 90, True),      # held still for 10 s+
    ([peer("slowloris")], 90, False),                 # never dropped in a long hold
    ([peer("slowloris")], 10, True),                  # a hold too short to see the bound
])
def test_hostile_rule(peers, span, contained):
    result = hostile_check({"peers": peers}, {"hold_start": 0.0, "hold_end": float(span)})
    assert result["ok"] is contained, result["detail"]


def test_hostile_without_a_result_fails():
    assert not hostile_check({"error": "no result"}, HOLD)["ok"]
