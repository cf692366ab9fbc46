#!/usr/bin/env bash
# zdb compaction benchmark: space reclaimed and throughput of COMPACT.
#
#   bench/zdb/compact.sh [build-dir]      (from the repository root; default build dir: build)
#
# For each case below, starts <build>/zdb/zdb on a free 127.0.0.1 port in its own temporary
# directory (under TMPDIR, default /tmp), with --datasize DATASIZE:
#   1. fills KEYS values of VALUE bytes (pipelined SETs; sequential mode: SET "" v),
#   2. overwrites OVERWRITE % of them and deletes DELETE % of them (chosen at random, seed 1),
#   3. NSJUMP (so that every data file written is closed),
#   4. sends COMPACT and times it (one request: every closed data file, most reclaimable first),
#   5. reads back a sample of 2000 keys and checks them, restarts the server, checks again.
# Prints, per case: data bytes before and after (sum of the d<N> files), % reclaimed, live
# bytes, seconds, and throughput = bytes of the data files read / seconds (MB/s, 10^6 B/s),
# plus the bytes written per second. The page cache is warm (the files were just written).
#
# Cases: user/4K (KEYS=65536, VALUE=4096), user/256B (KEYS=524288, VALUE=256),
#        seq/4K (KEYS=65536, VALUE=4096). Tunables (environment): DATASIZE=32M OVERWRITE=50
# DELETE=25 KEYS_4K=65536 KEYS_SMALL=524288 SYNC= (set to 1 to run zdb with --sync).
# Builds nothing; stops every server it started by PID and removes its directories.
set -euo pipefail

BUILD=${1:-build}
ZDB=$BUILD/zdb/zdb
[[ -x $ZDB ]] || {
    echo "compact.sh: $ZDB not found: build it first (ninja -C $BUILD zdb)" >&2
    exit 1
}
command -v python3 >/dev/null || {
    echo "compact.sh: python3 not found" >&2
    exit 1
}

export ZDB DATASIZE=${DATASIZE:-32M} OVERWRITE=${OVERWRITE:-50} DELETE=${DELETE:-25}
export KEYS_4K=${KEYS_4K:-65536} KEYS_SMALL=${KEYS_SMALL:-524288} SYNC=${SYNC:-}

exec python3 - <<'PY'
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ZDB = os.path.abspath(os.environ["ZDB"])
DATASIZE = os.environ["DATASIZE"]
OVERWRITE = int(os.environ["OVERWRITE"])
DELETE = int(os.environ["DELETE"])
SYNC = ["--sync"] if os.environ.get("SYNC") else []
BATCH = 512


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise RuntimeError("server closed the connection")
        self.buf += data

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b":"):
            return rest.decode()
        if t == b"-":
            raise RuntimeError("error reply: %s" % rest.decode())
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            v = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return v
        raise RuntimeError("unexpected reply %r" % line)

    def send(self, cmds):
        out = []
        for args in cmds:
            out.append(b"*%d\r\n" % len(args))
            for a in args:
                out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def run(self, cmds):
        res = []
        for i in range(0, len(cmds), BATCH):
            part = cmds[i:i + BATCH]
            self.send(part)
            res.extend(self.reply() for _ in part)
        return res


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, tmp, mode):
        self.tmp, self.mode, self.proc = tmp, mode, None

    def start(self):
        self.port = free_port()
        log = open(os.path.join(self.tmp, "zdb.log"), "ab")
        self.proc = subprocess.Popen([ZDB, "--listen", "127.0.0.1", "--port", str(self.port),
                                      "--data", os.path.join(self.tmp, "data"),
                                      "--index", os.path.join(self.tmp, "index"),
                                      "--mode", self.mode, "--datasize", DATASIZE] + SYNC,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        for _ in range(500):
            try:
                c = Conn(self.port)
                c.send([[b"PING"]])
                if c.reply() == "PONG":
                    return c
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("zdb did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def data_bytes(tmp):
    d = os.path.join(tmp, "data", "default")
    return sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if re.fullmatch(r"d[0-9]+", n))


def run_case(name, mode, keys, vsize):
    rnd = random.Random(1)
    tmp = tempfile.mkdtemp(prefix="qsfs-bench-compact-")
    srv = Server(tmp, mode)
    try:
        c = srv.start()
        seq = mode == "seq"
        model = {}

        def val():
            return rnd.randbytes(vsize)

        names = []
        cmds, vals = [], []
        for i in range(keys):
            v = val()
            cmds.append([b"SET", b"" if seq else b"key:%012d" % i, v])
            vals.append(v)
        res = c.run(cmds)
        for i, (r, v) in enumerate(zip(res, vals)):
            k = r if seq else b"key:%012d" % i
            names.append(k)
            model[k] = v
        ow = rnd.sample(names, keys * OVERWRITE // 100)
        cmds = []
        for k in ow:
            model[k] = val()
            cmds.append([b"SET", k, model[k]])
        c.run(cmds)
        dl = rnd.sample(names, keys * DELETE // 100)
        c.run([[b"DEL", k] for k in dl])
        for k in dl:
            model[k] = None
        c.run([[b"NSJUMP"]])
        before = data_bytes(tmp)
        live_bytes = sum(len(v) for v in model.values() if v is not None)
        t0 = time.monotonic()
        st = c.run([[b"COMPACT"]])[0]
        secs = time.monotonic() - t0
        after = data_bytes(tmp)
        m = re.fullmatch(r"OK files=(\d+) before=(\d+) after=(\d+) reclaimed=(\d+)", st)
        assert m, st
        files, fb, fa = int(m.group(1)), int(m.group(2)), int(m.group(3))
        sample = rnd.sample(names, min(2000, len(names)))
        for attempt in range(2):
            got = c.run([[b"GET", k] for k in sample])
            bad = sum(1 for k, g in zip(sample, got) if g != model[k])
            assert bad == 0, "%d wrong values after compaction" % bad
            if attempt == 0:
                c.sock.close()
                srv.stop()
                c = srv.start()
        c.sock.close()
        print("| %s | %d x %d B | %d | %.1f | %.1f | %.1f %% | %.1f | %.3f | %.0f | %.0f |" % (
            name, keys, vsize, files, before / 1e6, after / 1e6, 100.0 * (before - after) / before,
            live_bytes / 1e6, secs, fb / 1e6 / secs, fa / 1e6 / secs), flush=True)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


print("zdb %s, --datasize %s, %d %% overwritten, %d %% deleted%s" % (
    ZDB, DATASIZE, OVERWRITE, DELETE, ", --sync" if SYNC else ""))
print("| case | values | files | data MB before | after | reclaimed | live payload MB | COMPACT s | read MB/s | written MB/s |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
run_case("user/4K", "user", int(os.environ["KEYS_4K"]), 4096)
run_case("user/256B", "user", int(os.environ["KEYS_SMALL"]), 256)
run_case("seq/4K", "seq", int(os.environ["KEYS_4K"]), 4096)
PY
