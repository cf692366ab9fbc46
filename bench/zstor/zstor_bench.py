#!/usr/bin/env python3
"""End-to-end zstor benchmark: store and retrieve of one large file over local zdb
servers (or dir:// share directories) on tmpfs, healthy and with the most backends down
that the parity allows; throughput and peak RSS (docs/zstor.md has results).

Each run also measures, right before the store and on the same machine, the two halves a
store is made of: the codec alone in memory (codec_bench, same layout and data kind, a
null sink) and the backends alone (zdb_ingest: the same number of shard bytes sent to
fresh zdb servers on the same tmpfs, no codec). A store needs the CPU of both on the same
two cores, so "bound" = input / (input / codec + stored / ingest) is the best a store can
reach there; the script prints store / codec and store / bound.

    bench/zstor/zstor_bench.py --build build --size 1G --layout 4+2 --data text
    bench/zstor/zstor_bench.py --build build --size 1G --layout 10+4 --data random

The input is generated on tmpfs before the clock starts (text-like: words of a 2000-word
vocabulary, as the codec benchmark; random: os.urandom). Every command runs under
/usr/bin/time -v for its peak RSS. Nothing here is a test: numbers are printed.
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import zdbtest  # noqa: E402
import zstortest  # noqa: E402


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s.upper())
    if not m:
        raise SystemExit("bad size %r" % s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def make_input(path, size, kind):
    rnd = random.Random(1)
    with open(path, "wb") as f:
        if kind == "random":
            left = size
            while left:
                n = min(left, 1 << 24)
                f.write(os.urandom(n))
                left -= n
            return
        vocab = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))
                 for _ in range(2000)]
        weights = [1.0 / (i + 1) for i in range(2000)]
        pool = " ".join(rnd.choices(vocab, weights, k=400000)).encode()  # about 2.7 MB
        left = size
        while left:
            n = min(left, len(pool))
            off = rnd.randrange(0, len(pool) - n + 1)
            f.write(pool[off:off + n])
            left -= n


def timed(cluster, *args):
    argv = ["/usr/bin/time", "-v", zstortest.zstor_binary(), "-c", cluster.config] + list(args)
    t = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
    dt = time.monotonic() - t
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0:
        raise SystemExit("zstor %s failed:\n%s" % (" ".join(args), err[-3000:]))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", err))
    return dt, rss / 1024.0, cpu


def codec_rate(build, size, kind, k, m):
    out = subprocess.run([os.path.join(build, "bench", "codec", "codec_bench"), "--size", str(size),
                          "--data", kind, "--k", str(k), "--m", str(m), "--what", "encode",
                          "--sink", "null"], check=True, stdout=subprocess.PIPE, timeout=3600).stdout
    line = [x for x in out.decode().splitlines() if "encode:" in x][-1]
    rate = float(re.search(r"encode: ([\d.]+) MB/s", line).group(1))
    stored = float(re.search(r"stored \d+ MiB \(([\d.]+) of input\)", line).group(1))
    return rate, stored


def ingest_rate(build, tmp, k, m, total, chunk=1 << 20):
    """Shard bytes per second that k+m fresh zdb servers absorb from zdb_ingest."""
    top = tempfile.mkdtemp(prefix="zstor-ingest-", dir=tmp)
    bs = [zstortest.Backend("data", i, tmp=top, token="ing") for i in range(k + m)]
    try:
        for b in bs:
            b.start()
        argv = [os.path.join(build, "bench", "zstor", "zdb_ingest"), "--shard",
                str(-(-chunk // k) + 64), "--total", str(total)]
        argv += ["%s/%s" % (b.address, b.ns) for b in bs]
        out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, timeout=3600).stdout.decode()
        return float(re.search(r"= ([\d.]+) MB/s", out).group(1))
    finally:
        for b in bs:
            b.cleanup()
        shutil.rmtree(top, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--size", default="1G")
    ap.add_argument("--layout", default="4+2")
    ap.add_argument("--data", choices=("text", "random"), default="text")
    ap.add_argument("--kind", choices=("zdb", "dir"), default="zdb")
    ap.add_argument("--tmp", default="/dev/shm")
    ap.add_argument("--runs", type=int, default=1)
    opts = ap.parse_args()
    build = zdbtest.BUILD_DIR = os.path.abspath(opts.build)
    k, m = (int(x) for x in opts.layout.split("+"))
    size = parse_size(opts.size)
    # one group per backend, no group constraint: the layout alone decides
    c = zstortest.Cluster(meta=4, groups=(1,) * (k + m), k=k, n=k + m, rg=0, rn=0,
                          kind=opts.kind, tmp=opts.tmp)
    try:
        src = c.path("input.bin")
        make_input(src, size, opts.data)
        out = c.path("output.bin")
        mb = size / 1e6
        print("zstor %s %s, %s, %s backends on %s" % (opts.layout, opts.size, opts.data, opts.kind, opts.tmp))
        for run in range(opts.runs):
            if run:
                subprocess.run([zstortest.zstor_binary(), "-c", c.config, "delete", "-f", src],
                               check=True, stdout=subprocess.DEVNULL)
            codec, stored = codec_rate(build, size, opts.data, k, m)
            line = "run %d: codec in memory %.0f MB/s" % (run, codec)
            bound = None
            if opts.kind == "zdb":
                ingest = ingest_rate(build, opts.tmp, k, m, int(size * stored))
                bound = mb / (mb / codec + mb * stored / ingest)
                line += ", backends alone ingest %.0f MB/s of shards, bound %.0f MB/s" % (ingest, bound)
            print(line)
            st = timed(c, "store", "-f", src)
            # untimed: a file of this size on tmpfs after the store (whose shards took the
            # free pages) pays for fresh pages, 4-7x the system time of a retrieve on this
            # VM, whichever retrieve comes first
            timed(c, "retrieve", "-f", src, "-o", out)
            os.unlink(out)
            rt = timed(c, "retrieve", "-f", src, "-o", out)
            os.unlink(out)
            ratios = "store/codec %.2f" % (mb / st[0] / codec)
            if bound:
                ratios += ", store/bound %.2f" % (mb / st[0] / bound)
            print("run %d: store %.0f MB/s (%.2fs, %.1f MiB RSS, %.2f cpu-s), retrieve %.0f MB/s "
                  "(%.2fs, %.1f MiB RSS); %s" % (run, mb / st[0], st[0], st[1], st[2], mb / rt[0], rt[0],
                                                rt[1], ratios))
        for b in c.data[:m]:
            b.kill()
        for run in range(opts.runs):
            dt = timed(c, "retrieve", "-f", src, "-o", out)
            os.unlink(out)
            print("run %d: retrieve with %d data backends down %.0f MB/s (%.2fs, %.1f MiB RSS)"
                  % (run, m, mb / dt[0], dt[0], dt[1]))
        if opts.kind == "zdb":  # the same backends back: healthy again, measured after
            for b in c.data[:m]:
                b.zdb.start()
                b.alive = True
            for run in range(opts.runs):
                ht = timed(c, "retrieve", "-f", src, "-o", out)
                os.unlink(out)
                print("run %d: retrieve healthy again %.0f MB/s (%.2fs, %.1f MiB RSS)"
                      % (run, mb / ht[0], ht[0], ht[1]))
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
