#!/usr/bin/env bash
# The main job on an embedded default: the whole QSFS stack on this machine (as root).
# Builds qsfs, starts 10 zdb servers on 127.0.0.1 as the "remote" backends (4 metadata,
# 6 data in 3 failure domains), writes a qsfs config for them, `qsfs up` (zstor daemon,
# local zdb with qsfs-hook, zdbfs mount), copies a tree into the mount, forces rotation and
# eviction, reads everything back byte-identical through the mount, kills a failure domain
# and reads again, then destroys the frontend (kill -9, directory removed) and `qsfs
# restore`s it into a fresh directory, compares again, and shows that no backend holds a
# readable byte. Everything lives in a temporary directory and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it mounts a FUSE filesystem)" >&2; exit 1; }
scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build zdb zstor zdbfs qsfs qsfs-hook >/dev/null
t_start=$(date +%s)

work=$(mktemp -d /tmp/qsfs-demo.XXXXXX)
cfg=$work/qsfs.toml
qsfs() { build/qsfs/qsfs -c "$cfg" "$@"; }
zstor() { build/zstor/zstor -c "$cfg" "$@"; }
cleanup() {
  for c in "$work"/qsfs*.toml; do [ -f "$c" ] && build/qsfs/qsfs -c "$c" down >/dev/null 2>&1 || true; done
  for m in "$work"/mnt*; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u -z "$m" || true; done
  for f in "$work"/*/pid "$work"/state*/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_zdb NAME MODE -> starts a zdb with namespace NAME in MODE (seq|user); prints the port
start_zdb() {
  local name=$1 mode=$2 port
  port=$(free_port)
  mkdir -p "$work/$name"
  build/zdb/zdb --listen 127.0.0.1 --port "$port" --data "$work/$name/data" \
    --index "$work/$name/index" >"$work/$name/log" 2>&1 &
  echo $! >"$work/$name/pid"
  for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" NSNEW "$name" >/dev/null
  redis-cli -p "$port" NSSET "$name" password demo-pass >/dev/null
  redis-cli -p "$port" NSSET "$name" public 0 >/dev/null
  [ "$mode" = seq ] && redis-cli -p "$port" NSSET "$name" mode seq >/dev/null
  echo "$port"
}

hexkey() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

echo "== starting 4 metadata and 6 data zdb servers on 127.0.0.1 (the remote backends, in $work)"
{
  echo 'minimal_shards = 4'
  echo 'expected_shards = 6'
  echo 'redundant_groups = 1'
  echo 'redundant_nodes = 0'
  echo 'health_interval_s = 2'
  echo '[qsfs]'
  echo "dir = \"$work/state\""
  echo "mountpoint = \"$work/mnt\""
  echo '[encryption]'
  echo 'algorithm = "AES"'
  echo "key = \"$(hexkey)\""
  echo '[compression]'
  echo 'algorithm = "snappy"'
  echo '[meta]'
  echo 'type = "zdb"'
  echo '[meta.config]'
  echo 'prefix = "demo"'
  echo '[meta.config.encryption]'
  echo 'algorithm = "AES"'
  echo "key = \"$(hexkey)\""
  for i in 0 1 2 3; do
    port=$(start_zdb "meta$i" user)
    printf '[[meta.config.backends]]\naddress = "127.0.0.1:%s"\nnamespace = "meta%s"\npassword = "demo-pass"\n' "$port" "$i"
  done
  for g in 0 1 2; do
    echo '[[groups]]'
    for j in 0 1; do
      i=$((g * 2 + j))
      port=$(start_zdb "data$i" seq)
      printf '[[groups.backends]]\naddress = "127.0.0.1:%s"\nnamespace = "data%s"\npassword = "demo-pass"\n' "$port" "$i"
    done
  done
} >"$cfg"

echo "== qsfs up"
qsfs up

echo "== copying /usr/include and a 64 MiB file (text and random data, with a marker) into the mount"
src=$work/src
mkdir -p "$src"
cp -a /usr/include "$src/include"
python3 - "$src" <<'PY'
import os, random, sys
rnd = random.Random(7)
words = "quantum safe storage erasure coded encrypted dispersed backend shard".split()
with open(os.path.join(sys.argv[1], "big.bin"), "wb") as f:
    for i in range(64):
        if i % 2:
            f.write(os.urandom(1 << 20))
        else:
            f.write(" ".join(rnd.choice(words) for _ in range(200000)).encode()[: 1 << 20])
    f.write(b"MARKER-THE-BACKENDS-MUST-NEVER-SEE-THIS")
PY
t0=$(date +%s.%N)
cp -a "$src/." "$work/mnt/"
sync -f "$work/mnt"
t1=$(date +%s.%N)
python3 -c "print('   copied %d MB in %.1f s' % ($(du -sm "$src" | cut -f1), $t1 - $t0))"

echo "== forcing rotation (NSJUMP on the local zdb), a checkpoint and the eviction of everything stored"
for ns in zdbfs-meta zdbfs-data; do printf 'SELECT %s\nNSJUMP\n' "$ns" | redis-cli -s "$work/state/zdb.sock" >/dev/null; done
t0=$(date +%s.%N)
zstor checkpoint
t1=$(date +%s.%N)
python3 -c "print('   every local change stored in %.1f s' % ($t1 - $t0))"
zstor evict --all
echo "   local data files now: $(du -sh "$work/state/data/zdbfs-data" | cut -f1)"

compare() {
  echo 3 >/proc/sys/vm/drop_caches
  local t0 t1
  t0=$(date +%s.%N)
  if diff -r --no-dereference "$src" "$1" >/dev/null; then
    t1=$(date +%s.%N)
    python3 -c "print('   $2: every file byte-identical (%.1f s, evicted data retrieved on read)' % ($t1 - $t0))"
  else
    echo "   $2: MISMATCH"; exit 1
  fi
}
echo "== reading everything back through the mount"
compare "$work/mnt" "read back"

echo "== killing a whole failure domain (group 1: data2, data3, kill -9), evicting again, reading again"
for n in data2 data3; do kill -9 "$(cat "$work/$n/pid")"; done
zstor evict --all >/dev/null
compare "$work/mnt" "with group 1 gone"

echo "== the machine dies: zdbfs, zdb and the zstor daemon killed with SIGKILL, the frontend directory removed"
for p in zdbfs zdb zstor; do kill -9 "$(cat "$work/state/$p.pid")" 2>/dev/null || true; done
sleep 0.3
fusermount3 -u -z "$work/mnt" 2>/dev/null || true
rm -rf "$work/state"
echo "   and metadata backend meta0 is gone too (kill -9)"
kill -9 "$(cat "$work/meta0/pid")"

echo "== qsfs restore into a fresh directory, from the backends and the config alone"
sed "s|$work/state|$work/state2|; s|$work/mnt|$work/mnt2|" "$cfg" >"$work/qsfs2.toml"
cfg=$work/qsfs2.toml
qsfs restore | grep -v '^restored '
compare "$work/mnt2" "restored"

echo "== does any backend hold a readable byte? (grep every backend file for the marker)"
fail=0
if grep -rl "MARKER-THE-BACKENDS" "$work"/meta* "$work"/data* 2>/dev/null; then
  echo "   FOUND the marker on a backend"; fail=1
else
  echo "   no backend file contains the marker"
fi

echo "== qsfs status"
qsfs status || true
echo "== qsfs down"
qsfs down || echo "   (uploads wait: meta0 and group 1 are gone, so nothing new can be stored)"
echo "== demo done in $(( $(date +%s) - t_start )) s"
exit $fail
