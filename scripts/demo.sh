#!/usr/bin/env bash
# The main job on an embedded default: builds qsfs, starts a local cluster of 10 zdb servers
# on 127.0.0.1 in a temporary directory (4 metadata backends, 6 data backends in 3 failure
# domains), stores a file and a directory tree with zstor (compressed, encrypted, 4+2
# erasure-coded), kills two data and two metadata backends, retrieves everything
# byte-identical, shows that no backend holds a readable byte, and prints `zstor status`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build zdb zstor >/dev/null

work=$(mktemp -d /tmp/qsfs-demo.XXXXXX)
cleanup() {
  # start_zdb runs in a command substitution (a subshell): the pids are kept in files
  for f in "$work"/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
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

echo "== starting 4 metadata and 6 data zdb servers on 127.0.0.1 (in $work)"
mkdir -p "$work/root"
{
  echo 'minimal_shards = 4'
  echo 'expected_shards = 6'
  echo 'redundant_groups = 1'
  echo 'redundant_nodes = 0'
  echo "root = \"$work/root\""
  echo '[encryption]'
  echo 'algorithm = "AES"'
  echo "key = \"$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')\""
  echo '[compression]'
  echo 'algorithm = "snappy"'
  echo '[meta]'
  echo 'type = "zdb"'
  echo '[meta.config]'
  echo 'prefix = "demo"'
  echo '[meta.config.encryption]'
  echo 'algorithm = "AES"'
  echo "key = \"$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')\""
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
} >"$work/zstor.toml"
zstor() { build/zstor/zstor -c "$work/zstor.toml" "$@"; }

echo "== making a 64 MiB file (text and random data, with a marker) and a small tree"
python3 - "$work/root" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
words = "quantum safe storage erasure coded encrypted dispersed backend shard".split()
with open(os.path.join(root, "big.bin"), "wb") as f:
    for i in range(64):
        if i % 2:
            f.write(os.urandom(1 << 20))
        else:
            text = " ".join(rnd.choice(words) for _ in range(200000)).encode()
            f.write(text[: 1 << 20])
    f.write(b"MARKER-THE-BACKENDS-MUST-NEVER-SEE-THIS")
for d in ("docs", "docs/notes", "photos"):
    os.makedirs(os.path.join(root, "tree", d), exist_ok=True)
for n in range(20):
    d = ("docs", "docs/notes", "photos")[n % 3]
    with open(os.path.join(root, "tree", d, "file%02d.txt" % n), "wb") as f:
        f.write(b"MARKER-THE-BACKENDS-MUST-NEVER-SEE-THIS file %d\n" % n * (n + 1))
open(os.path.join(root, "tree", "empty"), "wb").close()
PY

zstor test
echo "== zstor store"
t0=$(date +%s.%N)
zstor store -f "$work/root/big.bin"
t1=$(date +%s.%N)
zstor store -f "$work/root/tree"
python3 -c "print('   stored 64 MiB in %.2f s (%.0f MB/s)' % ($t1 - $t0, 67108864 / 1e6 / ($t1 - $t0)))"
echo "   BLAKE2b-128 of big.bin: $(zstor check -f "$work/root/big.bin")"
zstor list

echo "== killing a whole failure domain (group 1: data2, data3) and metadata backends meta0, meta3 (kill -9)"
for n in data2 data3 meta0 meta3; do kill -9 "$(cat "$work/$n/pid")"; done
sleep 0.3

echo "== zstor retrieve with 4 backends gone"
t0=$(date +%s.%N)
zstor retrieve -f "$work/root/big.bin" -o "$work/big.out"
t1=$(date +%s.%N)
python3 -c "print('   retrieved 64 MiB in %.2f s (%.0f MB/s)' % ($t1 - $t0, 67108864 / 1e6 / ($t1 - $t0)))"
cmp "$work/root/big.bin" "$work/big.out" && echo "   big.bin: byte-identical"
fail=0
for f in $(cd "$work/root" && find tree -type f | sort); do
  zstor retrieve -f "$work/root/$f" -o "$work/one.out"
  cmp -s "$work/root/$f" "$work/one.out" || { echo "   MISMATCH: $f"; fail=1; }
done
[ $fail = 0 ] && echo "   all $(cd "$work/root" && find tree -type f | wc -l) files of the tree: byte-identical"

echo "== does any backend hold a readable byte? (grep every zdb file for the marker)"
if grep -rl "MARKER-THE-BACKENDS" "$work"/meta* "$work"/data* 2>/dev/null; then
  echo "   FOUND the marker on a backend"; fail=1
else
  echo "   no backend file contains the marker"
fi

echo "== zstor status"
zstor status || true
exit $fail
