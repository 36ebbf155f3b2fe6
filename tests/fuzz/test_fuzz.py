"""Fuzzing the parsers: HTTP heads and handshakes, frames (both paths), inflate (both paths).

Default run (seconds): every target on its seeds, a small hypothesis budget,
and a short atheris run per target (2,000 inputs) where atheris installs.
``python -m pytest -m fuzz tests/fuzz`` runs the long campaign:
``FUZZ_SECONDS`` (default 60) of coverage-guided atheris per target, or
hypothesis with a large example budget where atheris is missing.
What the campaign found is written down in benchmarks/RESULTS.md ("Fuzzing").
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.fuzz.targets import SEEDS, TARGETS

HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_atheris = pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris is not installed")


def run_atheris(name, tmp_path, *options, timeout):
    """One libFuzzer run of a target in a child process; (exit status, stats, output)."""
    cmd = [sys.executable, "-m", "tests.fuzz.run", name, "-print_final_stats=1",
           "-max_len=4096", "-rss_limit_mb=1024", "-timeout=10",
           f"-artifact_prefix={tmp_path}/", *options, str(tmp_path / "corpus")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", proc.stderr, re.M))
    return proc.returncode, stats, proc.stderr


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds(name):
    for seed in SEEDS[name]:
        TARGETS[name](seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600))
def test_hypothesis_smoke(name, data):
    TARGETS[name](data)


@needs_atheris
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_atheris_smoke(name, tmp_path):
    code, stats, output = run_atheris(name, tmp_path, "-runs=2000", timeout=100)
    assert code == 0, output[-3000:]
    assert int(stats["number_of_executed_units"]) >= 2000
    assert not list(tmp_path.glob("crash-*"))


# --- the long campaign (-m fuzz) ------------------------------------------------------

@pytest.mark.fuzz
@needs_atheris
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_atheris_campaign(name, tmp_path):
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    code, stats, output = run_atheris(name, tmp_path, f"-max_total_time={seconds}",
                                      timeout=seconds + 120)
    print(f"fuzz {name}: {stats.get('number_of_executed_units')} executions in {seconds} s, "
          f"peak RSS {stats.get('peak_rss_mb')} MB, exit {code}")
    assert code == 0, output[-3000:]
    assert not list(tmp_path.glob("crash-*"))


@pytest.mark.fuzz
@pytest.mark.skipif(HAVE_ATHERIS, reason="atheris runs the campaign")
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=4096))
def test_hypothesis_campaign(name, data):
    TARGETS[name](data)
