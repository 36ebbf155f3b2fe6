#!/usr/bin/env bash
# Every benchmark behind benchmarks/RESULTS.md, in one go (about 40 minutes on
# two cores; run it on an otherwise idle machine, and do not edit files under
# benchmarks/ while it runs: bash reads this script as it goes). Results land
# in benchmarks/results/; RESULTS.md is written from them by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT=benchmarks/results
mkdir -p "$OUT"
STEPS="${STEPS:-micro servers memory compression soak plots}"

if [[ " $STEPS " == *" micro "* ]]; then
  # codec and sans-IO core micro-benchmarks (pytest-benchmark); the core on both paths
  $PY -m pytest benchmarks/test_codec.py -q --benchmark-json="$OUT/codec.json" > "$OUT/codec.txt"
  # three runs each, reported best of three (benchmarks/report.py says why)
  for run in 1 2 3; do
    $PY -m pytest benchmarks/test_protocol.py -q \
        --benchmark-json="$OUT/protocol-compiled-$run.json" > "$OUT/protocol-compiled-$run.txt"
    WSFRAME_NO_EXTENSIONS=1 $PY -m pytest benchmarks/test_protocol.py -q -k "receive and wsframe" \
        --benchmark-json="$OUT/protocol-pure-$run.json" > "$OUT/protocol-pure-$run.txt"
  done
  $PY benchmarks/report.py --slim "$OUT/codec.json" "$OUT"/protocol-*.json
fi
if [[ " $STEPS " == *" servers "* ]]; then
  # side by side: echo, broadcast, memory per idle connection (10,000 and 19,000)
  $PY benchmarks/compare_servers.py > "$OUT/servers.txt"
  $PY benchmarks/plot_capacity.py --connections 10000
fi
if [[ " $STEPS " == *" memory "* ]]; then
  $PY benchmarks/memory_per_connection.py --connections 10000 --only wsframe > "$OUT/memory.md"
fi
if [[ " $STEPS " == *" compression "* ]]; then
  $PY benchmarks/compression.py > "$OUT/compression.md"
fi
if [[ " $STEPS " == *" soak "* ]]; then
  # 19,000 connections held for 4 minutes with the user's heartbeat (30 s / 5 s)
  $PY -m wsframe bench capacity --connections 19000 --rate 2000 --hold 240 \
      --server-args "--heartbeat 30 --heartbeat-timeout 5" --server-cpu 0 --load-cpus 1 \
      --processes 2 --json "$OUT/soak.json" --plot "$OUT/soak-rss.png" > "$OUT/soak.txt"
fi
if [[ " $STEPS " == *" plots "* ]]; then
  $PY -m wsframe bench echo --connections 100 --inflight 16 --duration 5 \
      --server-args "--heartbeat 0 --no-compression" --server-cpu 0 --load-cpus 1 \
      --json "$OUT/echo-16.json" --plot "$OUT/echo-latency.png" > "$OUT/echo-16.txt"
  $PY -m wsframe bench broadcast --members 10000 --rate 5 --duration 10 \
      --server-args "--heartbeat 0 --no-compression" --server-cpu 0 --load-cpus 1 \
      --json "$OUT/broadcast-10k.json" --plot "$OUT/broadcast-latency.png" \
      > "$OUT/broadcast-10k.txt"
fi
echo "done: $OUT"
