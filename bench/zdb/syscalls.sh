#!/usr/bin/env bash
# System calls per request of zdb and of redis-server (AOF everysec) under a pipelined load.
#
#   bench/zdb/syscalls.sh [build-dir]      (from the repository root; default build dir: build)
#
# Starts both servers on free 127.0.0.1 ports in a temporary directory, fills GET_KEYS keys,
# then for SET and GET at -P 16 attaches `strace -c -f` to the server while redis-benchmark
# runs N requests, and prints the system calls per request by name. strace slows the server
# down a lot: this counts calls, it does not time anything. Needs strace; builds nothing.
# Tunables (environment): N=100000 GET_KEYS=100000 PIPELINE=16.
set -euo pipefail

BUILD=${1:-build}
ZDB=$BUILD/zdb/zdb
N=${N:-100000}
GET_KEYS=${GET_KEYS:-100000}
PIPELINE=${PIPELINE:-16}
HERE=$(cd "$(dirname "$0")" && pwd)

die() {
    echo "syscalls: $*" >&2
    exit 1
}

[[ -x $ZDB ]] || die "$ZDB not found: build it first (ninja -C $BUILD zdb)"
for tool in redis-server redis-benchmark redis-cli python3 strace timeout; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qsfs-syscalls.XXXXXX")
declare -A PID PORT
SERVERS=()
STRACE_PID=

cleanup() {
    local p i
    [[ -n $STRACE_PID ]] && kill -INT "$STRACE_PID" 2>/dev/null && wait "$STRACE_PID" 2>/dev/null
    for s in "${SERVERS[@]}"; do
        p=${PID[$s]}
        kill -TERM "$p" 2>/dev/null || continue
        for ((i = 0; i < 100; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() {
    local s=$1 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "${PID[$s]}" 2>/dev/null || die "$s exited at start"
        [[ $(timeout 2 redis-cli -h 127.0.0.1 -p "${PORT[$s]}" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    die "$s did not answer PING within 10 s"
}

PORT[zdb]=$(free_port)
"$ZDB" --listen 127.0.0.1 --port "${PORT[zdb]}" --data "$TMP/zdb/data" --index "$TMP/zdb/index" \
    --mode user >"$TMP/zdb.log" 2>&1 &
PID[zdb]=$!
SERVERS+=(zdb)
PORT[redis]=$(free_port)
mkdir -p "$TMP/redis"
redis-server --port "${PORT[redis]}" --bind 127.0.0.1 --daemonize no --dir "$TMP/redis" \
    --appendonly yes --appendfsync everysec --save "" >"$TMP/redis.log" 2>&1 &
PID[redis]=$!
SERVERS+=(redis)
for s in zdb redis; do
    wait_ready "$s"
    timeout 300 python3 "$HERE/memkeys.py" fill --port "${PORT[$s]}" --keys "$GET_KEYS" >/dev/null
done

for t in set get; do
    for s in zdb redis; do
        out=$TMP/strace.$s.$t
        strace -c -f -p "${PID[$s]}" -o "$out" 2>/dev/null &
        STRACE_PID=$!
        sleep 1 # let strace attach to every thread
        range=$GET_KEYS
        [[ $t == set ]] && range=100000000
        timeout 300 redis-benchmark -h 127.0.0.1 -p "${PORT[$s]}" -c 50 -n "$N" -t "$t" -d 16 \
            -r "$range" -P "$PIPELINE" -q </dev/null >/dev/null 2>&1 ||
            echo "syscalls: redis-benchmark $t on $s failed" >&2
        kill -INT "$STRACE_PID"
        wait "$STRACE_PID" || true
        STRACE_PID=
        echo "== $s ${t^^} -P $PIPELINE, $N requests: system calls per request"
        awk -v n="$N" '$NF != "total" && $4 ~ /^[0-9]+$/ {
                calls = $4; name = $NF; printf "  %-16s %8.4f\n", name, calls / n; sum += calls }
            END { printf "  %-16s %8.4f\n", "(all)", sum / n }' "$out"
    done
done
