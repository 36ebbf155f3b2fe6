"""The browser clients' reconnect delay grows (issue 10): run their JavaScript in Node.js.

wsframe.js (wsframe/delivery/static/wsframe.js, which the demo page uses) and
the tutorial's track.html (docs/tutorial.md) each keep their backoff code between
``// --- backoff`` and ``// --- end backoff ---``; this test cuts it out and
drives it through a simulated outage. Before the fix, every failed retry
after a long connection started again from the first ceiling.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = ["wsframe/delivery/static/wsframe.js", "docs/tutorial.md"]
USES = {"wsframe/delivery/static/wsframe.js": ("nextDelay(this._retry, Date.now()",
                                               "this._retry.openedAt = Date.now()"),
        "docs/tutorial.md": ("nextDelay(retry, Date.now())", "retry.openedAt = Date.now()")}

# A day in the life of a page: (event, time in ms). "open" = onopen fired,
# "close" = onclose fired (after an open connection or a failed attempt).
SCENARIO = [
    ("open", 0), ("close", 60_000),                      # a good minute-long connection
    ("close", 60_500), ("close", 61_500), ("close", 63_500), ("close", 67_500),
    ("close", 75_500), ("close", 91_500), ("close", 121_500), ("close", 151_500),  # server down
    ("open", 160_000), ("close", 162_000),               # open 2 s only: no reset
    ("open", 200_000), ("close", 215_000),               # open 15 s: reset
]
EXPECTED_CEILINGS = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 500]

DRIVER = r"""
const code = require("fs").readFileSync(0, "utf8");
const scenario = JSON.parse(process.argv[1]);
const nextDelay = new Function(code + "\nreturn nextDelay;")();
function run(random) {
  const state = { attempt: 0, openedAt: null }, out = [];
  for (const [event, now] of scenario) {
    if (event === "open") state.openedAt = now;       // what onopen does
    else out.push(nextDelay(state, now, random));     // what onclose does
  }
  return out;
}
let r = 0.37;
console.log(JSON.stringify({ ceilings: run(() => 1), delays: run(() => (r = (r * 7.13) % 1)) }));
"""


def backoff_code(path):
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    match = re.search(r"// --- backoff[^\n]*\n(.*?)// --- end backoff ---", text, re.S)
    assert match, f"no backoff block in {path}"
    return match.group(1)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.parametrize("page", PAGES)
def test_reconnect_ceilings_grow_and_reset_only_after_a_real_connection(page):
    proc = subprocess.run(["node", "-e", DRIVER, json.dumps(SCENARIO)], input=backoff_code(page),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ceilings"] == EXPECTED_CEILINGS
    for delay, ceiling in zip(result["delays"], result["ceilings"]):
        assert 0 <= delay <= ceiling  # full jitter: uniform in [0, ceiling]
    assert len(set(result["delays"])) > 1


def test_pages_use_the_tested_function():
    for page in PAGES:
        text = open(os.path.join(ROOT, page), encoding="utf-8").read()
        for use in USES[page]:
            assert use in text, (page, use)
    demo = open(os.path.join(ROOT, "wsframe/tools/demo/static/index.html"), encoding="utf-8").read()
    assert 'import { WsFrame } from "/wsframe.js"' in demo
