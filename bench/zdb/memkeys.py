#!/usr/bin/env python3
"""RAM cost per key of a zdb server, and a pipelined bulk loader used by bench.sh.

    bench/zdb/memkeys.py [--build DIR] [--keys N]
        Starts a fresh zdb (user mode, then seq mode) on 127.0.0.1 with a free port and a
        temporary directory, reads VmRSS from /proc/PID/status on the empty server, inserts N
        keys (default 1,000,000; "key:%012d" keys and 16-byte values) with pipelined SETs,
        reads VmRSS again and prints (after - before) / N bytes per key.

    bench/zdb/memkeys.py fill --port P --keys N [--value V]
        Sets key:000000000000 .. key:<N-1> on the server at 127.0.0.1:P (zdb or redis), the
        same key names redis-benchmark generates for -r N. Used by bench.sh so that GETs hit.

Python standard library only; raw RESP over one socket, 1000 requests per batch.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BATCH = 1000
IO_TIMEOUT = 30.0


class RespError(Exception):
    pass


class Conn:
    """A minimal RESP2 client: sends raw requests, counts and checks replies."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def close(self):
        self.sock.close()

    def _more(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise RespError("server closed the connection")
        self.buf = self.buf[self.pos:] + data
        self.pos = 0

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = self.buf[self.pos:end]
                self.pos = end + 2
                return line
            self._more()

    def reply(self):
        """Reads one reply; returns bytes, int, None (nil) or a list. Raises on -ERR."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._more()
            val = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return val
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RespError("unexpected reply line %r" % line[:40])

    def call(self, *args):
        self.sock.sendall(encode(args))
        return self.reply()


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def fill(port, count, value, seq=False):
    """Pipelined SETs of count keys; returns (seconds, replies that were nil)."""
    conn = Conn(port)
    value = value.encode() if isinstance(value, str) else value
    vhead = b"$%d\r\n%s\r\n" % (len(value), value)
    nil = 0
    t0 = time.monotonic()
    try:
        for start in range(0, count, BATCH):
            n = min(BATCH, count - start)
            if seq:
                req = (b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n" + vhead) * n
            else:
                req = b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n" % i + vhead
                               for i in range(start, start + n))
            conn.sock.sendall(req)
            for _ in range(n):
                if conn.reply() is None:
                    nil += 1
    finally:
        conn.close()
    return time.monotonic() - t0, nil


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_status(pid):
    vals = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, kb = line.split()[:2]
                vals[name[:-1]] = int(kb) * 1024
    return vals


def wait_ready(proc, port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("zdb exited with status %d at start" % proc.returncode)
        try:
            conn = Conn(port)
            try:
                if conn.call("PING") == b"PONG":
                    return
            finally:
                conn.close()
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("zdb did not answer PING within 10 s")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def measure(zdb, mode, keys):
    tmp = tempfile.mkdtemp(prefix="qsfs-memkeys-")
    port = free_port()
    cmd = [zdb, "--listen", "127.0.0.1", "--port", str(port), "--data", tmp + "/data",
           "--index", tmp + "/index", "--mode", mode]
    log = open(os.path.join(tmp, "zdb.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, port)
        before = vm_status(proc.pid)
        secs, nil = fill(port, keys, "v" * 16, seq=(mode == "seq"))
        if nil:
            raise RuntimeError("%d SETs answered nil (nothing written)" % nil)
        conn = Conn(port)
        dbsize = conn.call("DBSIZE")
        conn.close()
        after = vm_status(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError("zdb exited with status %d" % proc.returncode)
        disk = sum(os.path.getsize(os.path.join(d, f))
                   for d, _, fs in os.walk(tmp) for f in fs)
        return {"mode": mode, "keys": keys, "dbsize": dbsize, "secs": secs,
                "before": before["VmRSS"], "after": after["VmRSS"], "hwm": after["VmHWM"],
                "disk": disk}
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "fill":
        ap = argparse.ArgumentParser(prog="memkeys.py fill")
        ap.add_argument("--port", type=int, required=True)
        ap.add_argument("--keys", type=int, required=True)
        ap.add_argument("--value", default="y" * 16)
        a = ap.parse_args(sys.argv[2:])
        secs, nil = fill(a.port, a.keys, a.value)
        print("filled %d keys in %.1f s (%d nil)" % (a.keys, secs, nil))
        return 0

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--keys", type=int, default=1000000)
    a = ap.parse_args()
    zdb = os.path.join(a.build, "zdb", "zdb")
    if not os.access(zdb, os.X_OK):
        print("memkeys: %s not found; build it first (ninja -C %s zdb)" % (zdb, a.build),
              file=sys.stderr)
        return 1
    rows = [measure(zdb, "user", a.keys), measure(zdb, "seq", a.keys)]
    print("%-5s %9s %9s %11s %11s %11s %9s %10s %8s" % (
        "mode", "keys", "DBSIZE", "RSS before", "RSS after", "VmHWM", "B/key", "disk B/key",
        "load s"))
    for r in rows:
        print("%-5s %9d %9s %11d %11d %11d %9.1f %10.1f %8.1f" % (
            r["mode"], r["keys"], r["dbsize"], r["before"], r["after"], r["hwm"],
            (r["after"] - r["before"]) / r["keys"], r["disk"] / r["keys"], r["secs"]))
    klen = 16
    print("0-db v2 (documented): %d B/key (64 + key) + 128 MiB table = %.1f B/key at %d keys" % (
        64 + klen, 64 + klen + 128 * 1024 * 1024 / a.keys, a.keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
