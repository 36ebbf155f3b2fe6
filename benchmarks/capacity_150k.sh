#!/usr/bin/env bash
# The capacity row for the 2-core / 24 GiB machine: `wsframe serve --workers 8` holds
# 150,000 idle connections for 5 minutes, heartbeats on (30 s / 5 s), every connection in
# a room of 3 (50,000 rooms), RSS summed over the supervisor and its workers. 10 load
# processes x 15,000, each from two 127.0.0.x of its own (7,500 per address). Knobs as in
# million.sh. Smoke test:
#   CONNECTIONS=3000 WORKERS=2 HOLD=10 benchmarks/capacity_150k.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS="${CONNECTIONS:-150000}" WORKERS="${WORKERS:-8}" RATE="${RATE:-5000}" \
HOLD="${HOLD:-300}" ROOM_SIZE="${ROOM_SIZE:-3}" TIME_LIMIT="${TIME_LIMIT:-900}" \
  exec benchmarks/million.sh
