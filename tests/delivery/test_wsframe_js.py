"""wsframe.js against the client's rules of docs/protocol.md §5, in Node.js: a scripted
WebSocket and a virtual clock drive the paths a real browser cannot be made to take on
cue (retries until "failed", a gap and its repair, liveness, backoff ceilings, 4409, the
outbox bound, a reload from storage). tests/delivery/test_browser.py runs it for real."""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "wsframe_js_rules.mjs")
CLIENT = os.path.join(ROOT, "wsframe", "delivery", "static", "wsframe.js")
CHECKS = ["hello_and_storage", "retries_then_failed", "acks_and_resend_after_welcome",
          "publications_in_order", "backoff", "liveness", "connect_timeout", "constructor_throws", "not_selected",
          "session_taken", "outbox_bound_and_validation", "reload"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_wsframe_js_follows_the_clients_rules():
    proc = subprocess.run(["node", SCRIPT, CLIENT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [word for check in CHECKS for word in ("ok", check)]
