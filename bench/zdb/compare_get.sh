#!/usr/bin/env bash
# GET (or SET) speed of two zdb binaries side by side (an A/B of one change), alternating
# rounds.
#
#   bench/zdb/compare_get.sh ZDB_A ZDB_B [ROUNDS]     (SIZE=4096 value bytes, OP=get|set)
#
# Each round starts each binary in its own temporary directory on a free 127.0.0.1 port
# (stopped by PID), fills 100000 keys of SIZE bytes, then runs
#   redis-benchmark -c 50 -d SIZE -q -t get -r 100000 -n 1000000 -P 16
# (OP=set: redis-benchmark -t set -r 100000000, new keys) and prints the rate and the
# server's CPU time (utime+stime from /proc/PID/stat) per million requests, which is
# steadier than the rate on a shared machine. Builds nothing.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3} SIZE=${SIZE:-4096} OP=${OP:-get}
RANGE=100000
[ "$OP" = set ] && RANGE=100000000
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (redis-tools)" >&2; exit 1; }
run() {
  local bin=$1 d port pid t0 t1 r
  d=$(mktemp -d)
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$bin" --mode user --port "$port" --listen 127.0.0.1 --data "$d/data" --index "$d/index" \
    >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p "$port" -c 50 -d "$SIZE" -q -t set -r 100000 -n 100000 -P 16 >/dev/null 2>&1
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  r=$(timeout 300 redis-benchmark -p "$port" -c 50 -d "$SIZE" -q -t "$OP" -r "$RANGE" \
        -n 1000000 -P 16 2>/dev/null | grep -o '[0-9.]* requests per second' | head -1)
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$d"
  echo "$bin: $OP ${SIZE} B -P16: $r, server CPU $(((t1 - t0) * 1000 / $(getconf CLK_TCK))) ms per 1M"
}
for _ in $(seq "$ROUNDS"); do
  run "$A"
  run "$B"
done
