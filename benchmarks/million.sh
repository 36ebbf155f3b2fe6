#!/usr/bin/env bash
# One machine, a million connections: `wsframe serve --workers 60` (the built-in app,
# heartbeats on: ping after 30 s of silence, dead after 5 s more) held by
# `wsframe bench capacity` with every connection in a room of 3 (333,334 rooms, each on
# the worker that owns it). Written for the 16-core / 128 GiB machine, 20,000 fds per
# process: 60 workers x ~16,700 connections, 67 load processes x <= 15,000 connections,
# each from 127.0.0.x source addresses of its own, at most ~13,600 connections per address
# (connect() is cheap only in half of the ~28,000 ephemeral ports: see docs/howto/capacity.md).
#
# Prints (among the rest) RSS per connection summed over the supervisor and every worker,
# the connect rate, and the survivors after the hold; the JSON report lands in
# benchmarks/results/. Knobs (environment): CONNECTIONS WORKERS RATE HOLD ROOM_SIZE
# TIME_LIMIT PYTHON. Smoke test on a small box:
#   CONNECTIONS=3000 WORKERS=2 RATE=3000 HOLD=10 benchmarks/million.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
CONNECTIONS="${CONNECTIONS:-1000000}"
WORKERS="${WORKERS:-60}"
RATE="${RATE:-20000}"          # connects per second offered, over all load processes
HOLD="${HOLD:-60}"             # > 30 s: every connection sees at least one heartbeat ping
ROOM_SIZE="${ROOM_SIZE:-3}"
TIME_LIMIT="${TIME_LIMIT:-540}"
OUT=benchmarks/results
mkdir -p "$OUT"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"

ulimit -n "$(ulimit -Hn)" || true
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "fd limit $(ulimit -n), $($PY -m wsframe --version | tr '\n' ' ')"
for knob in net.core.somaxconn net.ipv4.ip_local_port_range net.ipv4.tcp_max_syn_backlog \
            fs.nr_open fs.file-max net.netfilter.nf_conntrack_max; do
  echo "# $knob = $(sysctl -n "$knob" 2>/dev/null || echo n/a)"
done
if [ -w /proc/sys/net/core/somaxconn ]; then   # root: lift the limits that bite first
  sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 || true
  sysctl -qw net.netfilter.nf_conntrack_max=4194304 2>/dev/null || true
fi
conntrack="$(sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null || echo 0)"
if [ "$conntrack" != 0 ] && [ "$conntrack" -lt "$CONNECTIONS" ]; then
  echo "# warning: nf_conntrack_max $conntrack < $CONNECTIONS (one entry per connection); connections may be dropped"
fi

exec "$PY" -m wsframe bench capacity \
  --connections "$CONNECTIONS" --rate "$RATE" --hold "$HOLD" --room-size "$ROOM_SIZE" \
  --time-limit "$TIME_LIMIT" \
  --server-args "--workers $WORKERS --heartbeat 30 --heartbeat-timeout 5 --no-compression" \
  --json "$OUT/million-$WORKERS-workers-$STAMP.json"
