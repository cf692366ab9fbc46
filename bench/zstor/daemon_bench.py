#!/usr/bin/env python3
"""zstor monitor benchmark (docs/zstor-daemon.md has results): side by side in one run,
on local zdb servers on tmpfs,

  large   store and retrieve of one large file in-process vs through the daemon (ratio);
  forward the cost of forwarding a command that does nothing (a usage error): the raw
          socket round trip, and a whole CLI process with and without the daemon;
  queue   N (default 10,000) `store -n` of 4 KiB files: acknowledgements per second, files
          stored per second until the queue is empty, the daemon's peak RSS;
  backlog the daemon's RSS with M (default 100,000) items queued (meta backends down, so
          nothing drains);
  scrub   background scrub speed at the default rate and unbounded over 1 GiB of 8 MiB
          files, and a store's speed while a full-speed scrub runs vs without one (run it
          alone, --only scrub: after `queue` the pass first meets 10,000 small files).

    bench/zstor/daemon_bench.py --build build [--size 1G] [--files 10000] [--backlog 100000]
        [--only large,forward,queue,backlog,scrub]

Nothing here is a test: numbers are printed.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import zstortest  # noqa: E402

HELLO = b"QSZD\x01\0\0\0"


def raw(sock_path, argv, out_fd, err_fd, cwd="/"):
    """One request over the daemon socket (docs/zstor-daemon.md, Socket protocol)."""
    body = struct.pack("<I", len(argv))
    for a in argv:
        a = a.encode()
        body += struct.pack("<I", len(a)) + a
    body += struct.pack("<I", len(cwd)) + cwd.encode() + b"\0"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    socket.send_fds(s, [HELLO + b"\x01" + struct.pack("<I", len(body)) + body], [out_fd, err_fd])
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("daemon hung up")
        buf += chunk
        if len(buf) >= 8 + 6 and buf[-6] == 4:
            s.close()
            return buf[-1]


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def make_text(path, size):
    import random
    rnd = random.Random(1)
    vocab = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))
             for _ in range(2000)]
    pool = " ".join(rnd.choices(vocab, [1.0 / (i + 1) for i in range(2000)], k=400000)).encode()
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(pool))
            f.write(pool[:n])
            left -= n


class Bench:
    def __init__(self, args):
        self.args = args
        self.cl = zstortest.Cluster(tmp="/dev/shm", extra="")
        self.sock = os.path.join(self.cl.tmp, "zstor.sock")
        self.plain = self.cl.write_config(path=os.path.join(self.cl.tmp, "plain.toml"))
        self.daemon = None
        self.set_extra("")
        self.null = os.open("/dev/null", os.O_WRONLY)

    def set_extra(self, extra):
        self.cl.extra = 'socket = "%s"\nhealth_interval_s = 5\n%s' % (self.sock, extra)
        self.cl.write_config()

    def start(self, extra=""):
        self.stop()
        self.set_extra(extra)
        self.log = open(os.path.join(self.cl.tmp, "daemon.log"), "ab")
        env = dict(os.environ, ZSTOR_QUEUE_NOSYNC="1")
        self.daemon = subprocess.Popen([zstortest.zstor_binary(), "-c", self.cl.config, "monitor"],
                                       stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            assert time.monotonic() < deadline and self.daemon.poll() is None
            time.sleep(0.05)
        time.sleep(0.2)

    def stop(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(60)
            self.log.close()
        self.daemon = None

    def zstor(self, *args, config=None):
        t0 = time.monotonic()
        r = subprocess.run([zstortest.zstor_binary(), "-c", config or self.cl.config] + list(args),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
        if r.returncode not in (0, 2):
            raise RuntimeError("zstor %s: %s" % (args, r.stderr.decode()[-2000:]))
        return time.monotonic() - t0

    def queue_len(self):
        r = subprocess.run([zstortest.zstor_binary(), "-c", self.cl.config, "status", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        return json.loads(r.stdout)["daemon"]["queue_length"]

    # ---- the benchmarks ----

    def large(self):
        size = self.args.size
        src = os.path.join(self.cl.root, "large.txt")
        make_text(src, size)
        out = os.path.join(self.cl.tmp, "large.out")
        self.start()
        res = {"store": {"in-process": [], "daemon": []}, "retrieve": {"in-process": [], "daemon": []}}
        for rnd in range(2):
            for mode in (("in-process", "daemon") if rnd == 0 else ("daemon", "in-process")):
                cfg = self.plain if mode == "in-process" else None
                res["store"][mode].append(size / self.zstor("store", "-f", src, config=cfg))
                res["retrieve"][mode].append(size / self.zstor("retrieve", "-f", src, "-o", out,
                                                               config=cfg))
                os.unlink(out)
                self.zstor("delete", "-f", src, config=self.plain)
        self.stop()
        os.unlink(src)
        for op in ("store", "retrieve"):
            a = statistics.median(res[op]["in-process"])
            b = statistics.median(res[op]["daemon"])
            print("large %s %d MiB: in-process %.0f MB/s, daemon %.0f MB/s, daemon/in-process %.3f"
                  % (op, size >> 20, a / 1e6, b / 1e6, b / a))

    def forward(self):
        self.start()
        t = []
        for _ in range(500):
            t0 = time.perf_counter()
            raw(self.sock, ["nosuch"], self.null, self.null)
            t.append(time.perf_counter() - t0)
        cli_d = [self.zstor("nosuch") for _ in range(30)]
        self.stop()
        cli_p = [self.zstor("nosuch") for _ in range(30)]
        print("forward: socket round trip median %.3f ms (p99 %.3f ms); whole CLI process %.2f ms "
              "with the daemon, %.2f ms in-process"
              % (statistics.median(t) * 1e3, sorted(t)[int(len(t) * 0.99)] * 1e3,
                 statistics.median(cli_d) * 1e3, statistics.median(cli_p) * 1e3))

    def queue(self):
        n = self.args.files
        d = os.path.join(self.cl.root, "q")
        os.makedirs(d)
        paths = []
        for i in range(n):
            p = os.path.join(d, "f%06d" % i)
            with open(p, "wb") as f:
                f.write(os.urandom(4096))
            paths.append(p)
        self.start()
        t0 = time.monotonic()
        for p in paths:
            if raw(self.sock, ["store", "-n", "-f", p], self.null, self.null) != 0:
                raise RuntimeError("store -n failed")
        acked = time.monotonic() - t0
        while self.queue_len():
            time.sleep(0.2)
        drained = time.monotonic() - t0
        hwm = rss_kib(self.daemon.pid, "VmHWM")
        self.stop()
        print("queue %d x 4 KiB: %.0f acks/s (socket), all stored after %.1f s = %.0f files/s; "
              "daemon peak RSS %.1f MiB" % (n, n / acked, drained, n / drained, hwm / 1024))

    def backlog(self):
        m = self.args.backlog
        d = os.path.join(self.cl.root, "b")
        os.makedirs(d)
        for i in range(m):
            with open(os.path.join(d, "f%06d" % i), "wb") as f:
                f.write(b"x")
        for b in self.cl.meta:
            b.kill()
        self.start()
        base = rss_kib(self.daemon.pid)
        t0 = time.monotonic()
        if raw(self.sock, ["store", "-n", "-f", d], self.null, self.null) != 0:
            raise RuntimeError("store -n of the directory failed")
        took = time.monotonic() - t0
        time.sleep(3)
        rss = rss_kib(self.daemon.pid)
        hwm = rss_kib(self.daemon.pid, "VmHWM")
        qlen = os.path.getsize(os.path.join(self.cl.tmp, "zstor.sock.queue"))
        self.stop()
        os.unlink(os.path.join(self.cl.tmp, "zstor.sock.queue"))  # not for the next benchmark
        for b in self.cl.meta:
            b.start()
        print("backlog %d items: queued in %.1f s; daemon RSS %.1f MiB (%.1f MiB before, peak "
              "%.1f MiB), queue file %.1f MiB" % (m, took, rss / 1024, base / 1024, hwm / 1024,
                                                  qlen / 1048576))

    def scrub(self):
        files = [self.cl.write("s/f%03d" % i, os.urandom(8 << 20)) for i in range(128)]
        self.zstor("store", "-f", self.cl.path("s"), config=self.plain)
        big = self.cl.write("s-big", os.urandom(256 << 20))

        def scrub_rate(extra):
            self.start(extra)
            url = None
            for line in open(self.cl.config):
                if line.startswith("prometheus_port"):
                    url = "http://127.0.0.1:%s/metrics" % line.split("=")[1].strip()

            def verified():
                for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
                    if line.startswith("zstor_scrub_bytes_verified "):
                        return int(line.split()[1])
                return 0
            time.sleep(2)
            a, t0 = verified(), time.monotonic()
            time.sleep(8)
            rate = (verified() - a) / (time.monotonic() - t0)
            return rate

        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        p = port.getsockname()[1]
        port.close()
        common = 'prometheus_port = %d\nprometheus_bind = "127.0.0.1"\nscrub_interval_s = 1\n' % p
        r_def = scrub_rate(common)
        store_busy = []
        r_full = scrub_rate(common + "scrub_rate_mib_s = 0\n")
        for _ in range(3):
            deadline = time.monotonic() + 60
            while not json.loads(subprocess.run(
                    [zstortest.zstor_binary(), "-c", self.cl.config, "status", "--json"],
                    stdout=subprocess.PIPE, timeout=60).stdout)["daemon"]["scrubbing"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            store_busy.append((256 << 20) / self.zstor("store", "-f", big))
            self.zstor("delete", "-f", big)
        self.start('scrub_interval_s = 0\n')
        store_idle = []
        for _ in range(3):
            store_idle.append((256 << 20) / self.zstor("store", "-f", big))
            self.zstor("delete", "-f", big)
        self.stop()
        print("scrub: %.1f MiB/s at the default rate (20), %.1f MiB/s unbounded; a 256 MiB store "
              "%.0f MB/s during a full-speed scrub vs %.0f MB/s without (%.2f)"
              % (r_def / 1048576, r_full / 1048576, statistics.median(store_busy) / 1e6,
                 statistics.median(store_idle) / 1e6,
                 statistics.median(store_busy) / statistics.median(store_idle)))
        del files

    def cleanup(self):
        self.stop()
        if os.environ.get("BENCH_LOG"):
            with open(os.path.join(self.cl.tmp, "daemon.log"), "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace")[-6000:])
        os.close(self.null)
        self.cl.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--size", default="1G")
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--backlog", type=int, default=100000)
    ap.add_argument("--only", default="large,forward,queue,backlog,scrub")
    args = ap.parse_args()
    m = {"K": 10, "M": 20, "G": 30}
    args.size = int(args.size[:-1]) << m[args.size[-1].upper()] if args.size[-1].isalpha() \
        else int(args.size)
    os.environ["ZSTOR_BIN"] = os.path.abspath(os.path.join(args.build, "zstor", "zstor"))
    os.environ.setdefault("ZDB_BIN", os.path.abspath(os.path.join(args.build, "zdb", "zdb")))
    print("zstor daemon benchmark, %s, %d CPUs" % (time.strftime("%Y-%m-%d"), os.cpu_count()))
    b = Bench(args)
    try:
        for name in args.only.split(","):
            getattr(b, name)()
            sys.stdout.flush()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
