#!/usr/bin/env bash
# zdb speed benchmark against redis-server with an append-only file, side by side.
#
#   bench/zdb/bench.sh [build-dir]        (from the repository root; default build dir: build)
#
# Starts, each in its own temporary directory on a free 127.0.0.1 port:
#   zdb        <build>/zdb/zdb --mode user
#   redis      redis-server --appendonly yes --appendfsync everysec --save ""
#   zdb-sync   zdb --mode user --sync          (fsync of every write before the reply)
#   zdb-st1    zdb --mode user --synctime 1    (fsync at most once a second, like redis everysec)
# fills key:000000000000 .. key:<GET_KEYS-1> on zdb and redis so that every GET hits, then runs
# for ROUNDS rounds, rotating the order of the servers from one round to the next:
#   redis-benchmark -c 50 -d 16 -q -t set -r SET_RANGE -n N [-P 16]
#   redis-benchmark -c 50 -d 16 -q -t get -r GET_KEYS  -n N [-P 16]
# and prints the median ops/s per case with the ratio zdb/redis, plus the server's CPU time per
# request (utime+stime from /proc/PID/stat around the run), which is less sensitive to the other
# load on a shared machine than the rate.
#
# SETs draw keys from a range much larger than the number of requests so that almost every SET
# writes a new key: zdb, like 0-db, answers nil and writes nothing when a key is set again to the
# value it already holds, and redis-benchmark always sends the same value.
#
# Tunables (environment): ROUNDS=3 N_PLAIN=200000 N_PIPE=1000000 N_SYNC=5000 GET_KEYS=1000000
# SET_RANGE=100000000 RB_TIMEOUT=120 (seconds per redis-benchmark run). Builds nothing.
set -euo pipefail

BUILD=${1:-build}
ZDB=$BUILD/zdb/zdb
ROUNDS=${ROUNDS:-3}
N_PLAIN=${N_PLAIN:-200000}
N_PIPE=${N_PIPE:-1000000}
N_SYNC=${N_SYNC:-5000}
GET_KEYS=${GET_KEYS:-1000000}
SET_RANGE=${SET_RANGE:-100000000}
RB_TIMEOUT=${RB_TIMEOUT:-120}
HERE=$(cd "$(dirname "$0")" && pwd)

die() {
    echo "bench: $*" >&2
    exit 1
}

[[ -x $ZDB ]] || die "$ZDB not found: build it first (ninja -C $BUILD zdb)"
for tool in redis-server redis-benchmark redis-cli python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh installs redis-server and redis-tools)"
done
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qsfs-bench-zdb.XXXXXX")
declare -A PID PORT
SERVERS=()

# Stops every server started here by its PID (TERM, then KILL after 10 s) and removes TMP.
cleanup() {
    local s p i
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

wait_ready() { # name
    local s=$1 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "${PID[$s]}" 2>/dev/null || die "$s exited at start: $(tail -n 5 "$TMP/$s.log")"
        if [[ $(timeout 2 redis-cli -h 127.0.0.1 -p "${PORT[$s]}" ping 2>/dev/null) == PONG ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$s did not answer PING within 10 s"
}

start_zdb() { # name extra-flags...
    local s=$1
    shift
    PORT[$s]=$(free_port)
    mkdir -p "$TMP/$s"
    "$ZDB" --listen 127.0.0.1 --port "${PORT[$s]}" --data "$TMP/$s/data" --index "$TMP/$s/index" \
        --mode user "$@" >"$TMP/$s.log" 2>&1 &
    PID[$s]=$!
    SERVERS+=("$s")
    wait_ready "$s"
}

start_redis() { # name
    local s=$1
    PORT[$s]=$(free_port)
    mkdir -p "$TMP/$s"
    redis-server --port "${PORT[$s]}" --bind 127.0.0.1 --daemonize no --dir "$TMP/$s" \
        --appendonly yes --appendfsync everysec --save "" >"$TMP/$s.log" 2>&1 &
    PID[$s]=$!
    SERVERS+=("$s")
    wait_ready "$s"
}

cpu_ticks() { # pid -> utime+stime of the whole process (all threads)
    local stat f
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) } # fields after the command name, starting at field 3
    read -r -a f <<<"$stat"
    echo $((f[11] + f[12]))
}

FAILED=0
RESULTS=$TMP/results

# run_case case server test n range [pipeline]: one redis-benchmark run, appends
# "case server round ops cpu_us_per_op" to RESULTS.
run_case() {
    local c=$1 s=$2 t=$3 n=$4 r=$5 p=${6:-1} out rc line ops t0 t1
    out=$TMP/rb.out
    t0=$(cpu_ticks "${PID[$s]}")
    rc=0
    timeout "$RB_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "${PORT[$s]}" -c 50 -n "$n" -t "$t" \
        -d 16 -r "$r" -P "$p" -q </dev/null >"$out" 2>&1 || rc=$?
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
        echo "bench: $s died during $c; its log:" >&2
        tail -n 20 "$TMP/$s.log" >&2
        exit 1
    fi
    t1=$(cpu_ticks "${PID[$s]}")
    line=$(tr '\r' '\n' <"$out" | grep -E "^${t^^}: [0-9.]+ requests per second" | tail -n 1 || true)
    if [[ $rc -ne 0 || -z $line ]]; then
        FAILED=$((FAILED + 1))
        echo "bench: $c on $s failed (exit $rc):" >&2
        tr '\r' '\n' <"$out" | grep -v -e 'rps=' -e '^ *$' | tail -n 5 >&2 || true
        echo "$c $s $round ERR ERR" >>"$RESULTS"
        return 0
    fi
    ops=$(awk '{print $2}' <<<"$line")
    echo "$c $s $round $ops $(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$n" \
        'BEGIN { printf "%.2f", d / hz * 1e6 / n }')" >>"$RESULTS"
    printf '  %-8s %-9s %12.0f ops/s\n' "$c" "$s" "$ops"
}

# rotate k names...: prints the names rotated left by k.
rotate() {
    local k=$1
    shift
    local a=("$@") n=$# i
    for ((i = 0; i < n; i++)); do
        printf '%s ' "${a[$(((i + k) % n))]}"
    done
}

echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
    "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "zdb: $ZDB ($("$ZDB" --version))"
echo "redis: $(redis-server --version | awk '{print $3}')"

start_zdb zdb
start_redis redis
start_zdb zdb-sync --sync
start_zdb zdb-st1 --synctime 1

for s in zdb redis; do
    echo "filling $s with $GET_KEYS keys: $(timeout 300 python3 "$HERE/memkeys.py" fill \
        --port "${PORT[$s]}" --keys "$GET_KEYS")"
done

for ((round = 0; round < ROUNDS; round++)); do
    echo "round $((round + 1))/$ROUNDS"
    for s in $(rotate "$round" zdb redis zdb-sync zdb-st1); do
        case $s in
        zdb-sync) run_case set-P1 "$s" set "$N_SYNC" "$SET_RANGE" ;;
        *) run_case set-P1 "$s" set "$N_PLAIN" "$SET_RANGE" ;;
        esac
    done
    for s in $(rotate "$round" zdb redis); do
        run_case get-P1 "$s" get "$N_PLAIN" "$GET_KEYS"
    done
    for s in $(rotate "$round" zdb redis zdb-st1); do
        run_case set-P16 "$s" set "$N_PIPE" "$SET_RANGE" 16
    done
    for s in $(rotate "$round" zdb redis); do
        run_case get-P16 "$s" get "$N_PIPE" "$GET_KEYS" 16
    done
done

# median of the numbers on stdin; ERR when there is none or one is ERR
median_of() {
    sort -g | awk '/ERR/ { e = 1 } { v[NR] = $1 } END {
        if (e || NR == 0) { print "ERR"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

median() { # case server col
    awk -v c="$1" -v s="$2" -v col="$3" '$1 == c && $2 == s { print $col }' "$RESULTS" | median_of
}

int() { # rounds a number to an integer, passes ERR through
    if [[ $1 == ERR ]]; then echo ERR; else printf '%.0f' "$1"; fi
}

# median over the rounds of (server's ops/s / redis's ops/s in the same round)
paired_ratio() { # case server
    awk -v c="$1" -v s="$2" '$1 == c && $2 == s { a[$3] = $4 } $1 == c && $2 == "redis" { b[$3] = $4 }
        END { for (r in a) print (a[r] == "ERR" || b[r] == "ERR" || b[r] == 0) ? "ERR" : a[r] / b[r] }' \
        "$RESULTS" | median_of
}

echo
echo "median of $ROUNDS rounds; redis-benchmark -c 50 -d 16; P1 = unpipelined, P16 = -P 16;"
echo "SET n=$N_PLAIN (P1) / $N_PIPE (P16) over $SET_RANGE keys, GET over $GET_KEYS filled keys;"
echo "zdb-sync SET n=$N_SYNC; zdb/redis = ratio of the medians, per-round = median of the"
echo "ratios within each round; cpu = server CPU microseconds (user+system) per request"
printf '%-8s %-9s %10s %12s %9s %9s %9s %9s\n' case server ops/s redis-ops/s zdb/redis \
    per-round cpu-us/op redis-cpu
for c in set-P1 get-P1 set-P16 get-P16; do
    rops=$(median "$c" redis 4)
    rcpu=$(median "$c" redis 5)
    for s in zdb zdb-st1 zdb-sync; do
        [[ -n $(awk -v c="$c" -v s="$s" '$1 == c && $2 == s' "$RESULTS") ]] || continue
        ops=$(median "$c" "$s" 4)
        cpu=$(median "$c" "$s" 5)
        pr=$(paired_ratio "$c" "$s")
        [[ $pr == ERR ]] || pr=$(printf '%.2f' "$pr")
        ratio=$(awk -v a="$ops" -v b="$rops" 'BEGIN {
            if (a == "ERR" || b == "ERR" || b == 0) print "-"; else printf "%.2f", a / b }')
        printf '%-8s %-9s %10s %12s %9s %9s %9s %9s\n' "$c" "$s" "$(int "$ops")" "$(int "$rops")" \
            "$ratio" "$pr" "$cpu" "$rcpu"
    done
done
echo
echo "reference, 0-db v2.0.7 on this machine type (issue 2): SET 16 B ~30k ops/s unpipelined,"
echo "~18k ops/s at -P 16"
rewrites=$(grep -c 'Background append only file rewriting started' "$TMP/redis.log" || true)
echo "redis AOF rewrites during the run: $rewrites; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
if ((FAILED > 0)); then
    echo "bench: $FAILED redis-benchmark run(s) failed" >&2
    exit 1
fi
