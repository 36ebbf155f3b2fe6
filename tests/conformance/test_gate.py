"""The Autobahn gate script itself (.ci/conformance): it cannot pass without running."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATE = os.path.join(ROOT, ".ci", "conformance")


def test_missing_runner_fails_the_gate(tmp_path):
    # Issue 10: it printed "skipped" and exited 0, so CI passed a gate that never ran.
    env = dict(os.environ, AUTOBAHN_RUNNER=str(tmp_path / "no-runner-here"))
    out = subprocess.run(["bash", GATE, "compiled"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0
    assert "FAILED" in out.stderr and "no Autobahn runner" in out.stderr
    assert "skipped" not in out.stdout + out.stderr


def test_testees_run_with_only_the_message_size_raised():
    script = open(GATE, encoding="utf-8").read()
    serve = next(line for line in script.splitlines() if line.startswith("SERVE="))
    assert "--max-message-size 16M" in serve
    for flag in ("--max-fragments", "--max-queue", "--heartbeat", "--max-frame-size"):
        assert flag not in serve, flag
    driver = open(os.path.join(ROOT, "tests", "conformance", "client_driver.py")).read()
    assert "--max-fragments" not in driver and "--heartbeat" not in driver
