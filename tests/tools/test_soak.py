"""benchmarks/soak.py at toy scale: it runs every load at once, stops everything, gives a verdict.

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

import pytest

pytest.importorskip("wsframe._compiled.loadgen", reason="the load engine is not built")

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
