"""How ``wsframe bench`` spreads its load over source addresses (no load engine needed).

The capacity run that stalled near 141,000 of 150,000 connections (10 load
processes, one 127.0.0.x each) was the kernel's port search: past half of
``ip_local_port_range`` per source address, every ``connect()`` walks the used
half first. The plan now keeps each address under that half.
"""
import argparse
import math

import pytest

from wsframe.tools import bench
from wsframe.tools.bench.probes import PORT_MARGIN, cheap_ports_per_source


def _args(sources=""):
    return argparse.Namespace(sources=sources)


def test_cheap_ports_are_half_the_ephemeral_range(tmp_path):
    range_file = tmp_path / "ip_local_port_range"
    range_file.write_text("32768\t60999\n")
    assert cheap_ports_per_source(str(range_file)) == 28232 // 2 - PORT_MARGIN
    range_file.write_text("1024 65535\n")
    assert cheap_ports_per_source(str(range_file)) == 64512 // 2 - PORT_MARGIN
    # unreadable or garbage: the default range's figure, never zero or an exception
    assert cheap_ports_per_source(str(tmp_path / "missing")) == 28232 // 2 - PORT_MARGIN
    range_file.write_text("nonsense")
    assert cheap_ports_per_source(str(range_file)) == 28232 // 2 - PORT_MARGIN


def test_the_150k_plan_keeps_every_address_under_the_cheap_ports(monkeypatch):
    monkeypatch.setattr(bench, "cheap_ports_per_source", lambda: 13616)
    shares = bench._split(150000, 10)              # 10 load processes of 15,000
    plan = bench._sources(_args(), shares)
    assert len(plan) == 10
    flat = [address for addresses in plan for address in addresses]
    assert len(flat) == len(set(flat)) == 20        # each process has addresses of its own
    assert flat[0] == "127.0.0.2" and "127.0.0.1" not in flat
    for share, addresses in zip(shares, plan):
        assert math.ceil(share / len(addresses)) <= 13616


def test_many_addresses_skip_network_and_broadcast_octets(monkeypatch):
    monkeypatch.setattr(bench, "cheap_ports_per_source", lambda: 1000)
    plan = bench._sources(_args(), [400000])       # 400 addresses: past 127.0.0.255
    flat = plan[0]
    assert len(flat) == len(set(flat)) == 400
    assert not any(a.endswith((".0", ".255")) for a in flat)
    assert flat[-1].startswith("127.0.1.")


def test_publisher_share_gets_its_own_address(monkeypatch):
    monkeypatch.setattr(bench, "cheap_ports_per_source", lambda: 13616)
    plan = bench._sources(_args(), [5000, 5000, 1])
    assert [len(p) for p in plan] == [1, 1, 1]
    assert len({p[0] for p in plan}) == 3


def test_explicit_pool_is_split_and_a_small_one_is_noted(monkeypatch, capsys):
    monkeypatch.setattr(bench, "cheap_ports_per_source", lambda: 13616)
    plan = bench._sources(_args("127.0.0.2-127.0.0.5"), [10000, 10000])
    assert plan == [["127.0.0.2", "127.0.0.4"], ["127.0.0.3", "127.0.0.5"]]
    assert capsys.readouterr().out == ""
    bench._sources(_args("127.0.0.2-127.0.0.3"), [30000, 30000])
    assert "per source address" in capsys.readouterr().out


def test_more_than_loopback_holds_is_refused(monkeypatch):
    monkeypatch.setattr(bench, "cheap_ports_per_source", lambda: 1)
    with pytest.raises(ValueError, match="127.0.0.0/8"):
        bench._sources(_args(), [1 << 24])
