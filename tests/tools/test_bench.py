"""``wsframe bench`` end to end: short bounded runs against wsframe and a peer server."""
import json
import os
import subprocess
import sys

import pytest

from wsframe.tools.bench.fleet import engine_available, percentile

pytestmark = pytest.mark.skipif(not engine_available(), reason="load engine not built")

PEER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "benchmarks", "peers", "websockets_server.py")


def bench(*args, timeout=120):
    out = subprocess.run([sys.executable, "-m", "wsframe", "bench", *args, "--json", "-"],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    start = out.stdout.index("\n{")  # the table comes first, then the JSON report
    return json.loads(out.stdout[start:]), out.stdout[:start]


@pytest.fixture
def peer_server():
    pytest.importorskip("websockets")
    proc = subprocess.Popen([sys.executable, PEER, "--port", "0"], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    port = int(line.rsplit(":", 1)[1])
    yield proc, port
    proc.terminate()
    proc.wait(10)


def test_capacity_against_own_server():
    report, table = bench("capacity", "--connections", "300", "--rate", "3000", "--hold", "1",
                          "--server-args", "--heartbeat 0.5")
    assert report["ceiling"] == 300 and report["stop_reason"] == "target reached"
    assert report["result"]["survivors"] == 300
    assert report["rss_per_connection"] and report["rss_per_connection"] > 0
    assert report["peak"]["fds"] >= 300
    assert "RSS per connection" in table and "load side" in table


def test_capacity_reports_why_it_stopped(peer_server):
    proc, port = peer_server
    report, _ = bench("capacity", f"ws://127.0.0.1:{port}/", "--pid", str(proc.pid),
                      "--connections", "200", "--rate", "2000", "--hold", "0.5")
    assert report["ceiling"] == 200 and report["rss_per_connection"] > 0
    # a port nobody listens on: refused
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "wsframe", "bench", "capacity",
                          f"ws://127.0.0.1:{free}/", "--connections", "10", "--hold", "0.2",
                          "--json", "-"], capture_output=True, text=True, timeout=60)
    assert "ECONNREFUSED" in out.stdout


def test_echo_against_own_server_and_peer(peer_server):
    ours, _ = bench("echo", "--connections", "10", "--inflight", "4", "--duration", "1",
                    "--warmup", "0.2", "--server-args", "--heartbeat 0")
    assert ours["messages_per_second"] > 0 and ours["latency_us"]["p99"] > 0
    proc, port = peer_server
    theirs, table = bench("echo", f"ws://127.0.0.1:{port}/", "--connections", "10",
                          "--duration", "1", "--warmup", "0.2", "--size", "4K", "--binary")
    assert theirs["messages_per_second"] > 0 and "round trip" in table


def test_broadcast_against_own_server_and_peer(peer_server):
    ours, _ = bench("broadcast", "--members", "50", "--rate", "50", "--duration", "1",
                    "--server-args", "--heartbeat 0")
    assert ours["members"] == 50 and ours["deliveries"] == ours["messages_sent"] * 50
    proc, port = peer_server
    theirs, _ = bench("broadcast", f"ws://127.0.0.1:{port}/room/t", "--members", "20",
                      "--rate", "20", "--duration", "1")
    assert theirs["deliveries"] > 0


def test_refuses_non_loopback_without_flag():
    out = subprocess.run([sys.executable, "-m", "wsframe", "bench", "echo", "ws://10.1.2.3/"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "loopback" in out.stdout


def test_plot_and_percentiles(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "rss.png"
    subprocess.run([sys.executable, "-m", "wsframe", "bench", "capacity", "--connections", "100",
                    "--hold", "0.5", "--plot", str(png)], check=True, capture_output=True,
                   timeout=60)
    assert png.stat().st_size > 1000
    assert percentile([(10, 50), (20, 50)], 0.5) == 10 and percentile([], 0.9) == 0


def test_bench_from_a_folder_with_a_wsframe_directory(tmp_path):
    # Issue 10: a `wsframe/` folder in the current directory shadowed the installed
    # package in the server bench starts (`python -m wsframe`): ImportError.
    (tmp_path / "wsframe").mkdir()
    (tmp_path / "wsframe" / "__init__.py").write_text("raise ImportError('shadowed')\n")
    out = subprocess.run([sys.executable, "-P", "-m", "wsframe", "bench", "echo",
                          "--connections", "2", "--duration", "0.3", "--warmup", "0",
                          "--server-args", "--heartbeat 0", "--json", "-"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "shadowed" not in out.stderr

